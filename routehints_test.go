package lightning

import (
	"strings"
	"testing"
)

func TestRouteHintsOption(t *testing.T) {
	cfg, _, err := adaptCaddyfile("{\n\tlightning {\n\t\troute_hints never\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cfg), `"route_hints":"never"`) {
		t.Errorf("adapted to %s", cfg)
	}
	for input, want := range map[string]string{
		"{\n\tlightning {\n\t\troute_hints sometimes\n\t}\n}\n":                   `"sometimes" is not auto, always or never`,
		"{\n\tlightning {\n\t\troute_hints\n\t}\n}\n":                             "wrong argument count",
		"{\n\tlightning {\n\t\troute_hints auto\n\t\troute_hints never\n\t}\n}\n": "route_hints may be given only once",
	} {
		if _, _, err := adaptCaddyfile(input); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", input, err, want)
		}
	}
}
