package example

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/lightningcaddy/caddy-lightning"
)

// TestCaddyfilesAdapt checks that every example Caddyfile adapts without
// errors or warnings.
func TestCaddyfilesAdapt(t *testing.T) {
	names, err := filepath.Glob("*Caddyfile")
	if err != nil || len(names) < 6 {
		t.Fatalf("example Caddyfiles: %v %v", names, err)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			_, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": name})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w.String())
			}
		})
	}
}
