// Package caddyrun runs Caddy inside this process from a Caddyfile, for the
// tests and the demo. Caddy is a process-wide singleton: one config runs at
// a time, and loading another replaces it.
package caddyrun

import (
	"fmt"
	"net"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the Caddyfile adapter
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/lightningcaddy/caddy-lightning" // the lightning app, handler and paywall
)

// Load adapts a Caddyfile and runs it, replacing the running config.
// Warnings are returned as an error: the project's Caddyfiles have none.
func Load(caddyfile string) error {
	cfg, warnings, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(caddyfile), map[string]any{"filename": "Caddyfile"})
	if err != nil {
		return fmt.Errorf("adapt Caddyfile: %w", err)
	}
	if len(warnings) > 0 {
		return fmt.Errorf("adapt Caddyfile: %s", warnings[0].String())
	}
	if err := caddy.Load(cfg, true); err != nil {
		return fmt.Errorf("load config: %w", err)
	}
	return nil
}

// Stop stops the running config.
func Stop() error {
	return caddy.Stop()
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
