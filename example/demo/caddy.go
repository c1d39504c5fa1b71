package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// site is the running Caddy as the demo sees it.
type site struct {
	url       string // http://localhost:<port>
	caddyfile string // the Caddyfile it runs
	logPath   string // Caddy's log file
}

// findCaddyfile returns path if set, else example/Caddyfile: under the
// working directory (go run ./example/demo from the repository root), else
// next to this source file (go run from elsewhere in the module).
func findCaddyfile(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	candidates := []string{filepath.Join("example", "Caddyfile")}
	if _, src, _, ok := runtime.Caller(0); ok {
		candidates = append(candidates, filepath.Join(filepath.Dir(src), "..", "Caddyfile"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return filepath.Clean(c), nil
		}
	}
	return "", fmt.Errorf("example/Caddyfile not found (run from the repository root, or pass --caddyfile): looked at %s",
		strings.Join(candidates, ", "))
}

// startCaddy runs the Caddyfile in this process, with alice as the node,
// upstream behind the paywall and the site on localhost:port.
//
// The Caddyfile reads its settings from the environment, so they are set
// here. Demo-only global options are added to it (see demoOptions), and
// Caddy's default logger buffers until the config has opened its log file,
// so none of Caddy's JSON logs reach the terminal; if loading fails, the
// buffered logs go to stderr instead.
func startCaddy(caddyfile, dir string, port int, alice *regtest.Node, upstream string) (*site, error) {
	body, err := os.ReadFile(caddyfile)
	if err != nil {
		return nil, fmt.Errorf("read Caddyfile: %w", err)
	}
	env := map[string]string{
		"LND_ADDRESS":    alice.GRPCAddr,
		"LND_TLS_CERT":   alice.TLSCertPath,
		"LND_MACAROON":   alice.MacaroonPath,
		"DEMO_HTTP_PORT": strconv.Itoa(port),
		"DEMO_UPSTREAM":  upstream,
	}
	for k, v := range env {
		if err := os.Setenv(k, v); err != nil {
			return nil, fmt.Errorf("set %s: %w", k, err)
		}
	}
	logPath := filepath.Join(dir, "caddy.log")
	if err := os.Remove(logPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove old Caddy log: %w", err)
	}

	_, stderrLogger, _ := caddy.BufferedLog()
	if err := caddyrun.Load(withDemoOptions(string(body), demoOptions(dir, logPath))); err != nil {
		caddy.UnbufferDefaultLogger(stderrLogger)
		return nil, fmt.Errorf("start Caddy with %s: %w", caddyfile, err)
	}
	return &site{url: fmt.Sprintf("http://localhost:%d", port), caddyfile: caddyfile, logPath: logPath}, nil
}

// stopCaddy stops the running config; the grace period in demoOptions
// bounds how long open requests may take.
func stopCaddy(p *printer) error {
	began := time.Now()
	if err := caddyrun.Stop(); err != nil {
		return fmt.Errorf("stop Caddy: %w", err)
	}
	p.line("Caddy stopped in %s.", p.duration(time.Since(began)))
	return nil
}

// demoOptions are global options the demo adds to example/Caddyfile. They
// concern this process only, not what the example shows: no admin endpoint
// (port 2019 may be taken, e.g. by a Caddy you run) and no autosaved config
// in ~/.config; storage (the paywall's root key) and the log in the demo's
// directory; listening on loopback only, since the API can pay; and a
// bounded shutdown.
func demoOptions(dir, logPath string) string {
	return fmt.Sprintf(`	# Added by example/demo for this process only:
	admin off
	persist_config off
	default_bind 127.0.0.1
	grace_period 5s
	storage file_system %s
	log default {
		output file %s
		format json
	}
`, quote(filepath.Join(dir, "caddy")), quote(logPath))
}

// withDemoOptions inserts options at the start of the Caddyfile's global
// options block, or adds such a block if it has none.
func withDemoOptions(caddyfile, options string) string {
	lines := strings.SplitAfter(caddyfile, "\n")
	for i, line := range lines {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if t == "{" {
			return strings.Join(lines[:i+1], "") + options + strings.Join(lines[i+1:], "")
		}
		break
	}
	return "{\n" + options + "}\n\n" + caddyfile
}

// quote makes s one Caddyfile token (inside quotes, only \" is an escape).
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}
