package example

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/lightningcaddy/caddy-lightning"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// TestCaddyfiles checks that every example Caddyfile adapts without errors
// or warnings and passes `caddy validate` (with its node replaced by a fake
// one and its storage by a temporary directory), so none holds a
// combination the plugin refuses, such as one that would break what a
// payment buys.
func TestCaddyfiles(t *testing.T) {
	node := lndtest.Start(t)
	t.Setenv("LIGHTNING_API_KEY", "example-key")
	t.Setenv("LND_MACAROON_HEX", node.MacaroonHex())
	t.Setenv("LND_INVOICE_MACAROON_HEX", node.MacaroonHex())
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
			adapted, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt(body, map[string]any{"filename": name})
			if err != nil {
				t.Fatalf("adapt: %v", err)
			}
			for _, w := range warnings {
				t.Errorf("warning: %s", w.String())
			}
			var cfg map[string]any
			if err := json.Unmarshal(adapted, &cfg); err != nil {
				t.Fatal(err)
			}
			apps, _ := cfg["apps"].(map[string]any)
			app, _ := apps["lightning"].(map[string]any)
			if app == nil {
				t.Fatal("no lightning app")
			}
			app["lnd"] = map[string]any{"address": node.Addr(), "tls_cert": node.TLSCertPath(), "macaroon": node.MacaroonPath()}
			cfg["storage"] = map[string]any{"module": "file_system", "root": t.TempDir()}
			raw, _ := json.Marshal(cfg)
			var c caddy.Config
			if err := json.Unmarshal(raw, &c); err != nil {
				t.Fatal(err)
			}
			if err := caddy.Validate(&c); err != nil {
				t.Errorf("caddy validate: %v", err)
			}
		})
	}
}
