// Command demo runs a local Lightning network and Caddy with
// example/Caddyfile in front of a small upstream, then walks through real
// payments step by step: the L402 paywall, and the Lightning API over REST
// and gRPC.
//
//	go run ./example/demo                 # walk through, then run until Ctrl-C
//	go run ./example/demo --once          # walk through and exit; non-zero on failure (CI)
//	go run ./example/demo --dir D --port P
//
// The network is internal/regtest's: btcd and two lnd nodes, alice (behind
// Caddy) and bob (the customer), with a channel each way.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// options are the command-line flags.
type options struct {
	once      bool
	dir       string
	port      int
	caddyfile string
}

func main() {
	var opts options
	flag.BoolVar(&opts.once, "once", false, "run the walk-through, then stop and exit (non-zero if a step failed)")
	flag.StringVar(&opts.dir, "dir", "", "directory for the network's data, Caddy's log and network.json (default: a new temporary directory, removed on exit)")
	flag.IntVar(&opts.port, "port", 0, "Caddy's HTTP port on localhost (default: a free port)")
	flag.StringVar(&opts.caddyfile, "caddyfile", "", "the Caddyfile to run (default: example/Caddyfile)")
	flag.Parse()
	err := run(opts)
	switch {
	case errors.Is(err, errInterrupted):
		fmt.Fprintln(os.Stderr, "demo: interrupted")
		os.Exit(130)
	case err != nil:
		fmt.Fprintf(os.Stderr, "demo: %v\n", err)
		os.Exit(1)
	}
}

// errInterrupted ends a run stopped by SIGINT or SIGTERM before the
// walk-through finished.
var errInterrupted = errors.New("interrupted")

// run starts everything, walks through the payments and, unless opts.once,
// waits for SIGINT or SIGTERM; then it stops Caddy, the upstream and the
// network.
func run(opts options) (err error) {
	began := time.Now()
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	p := newPrinter(os.Stdout)

	dir, removeDir, err := demoDir(opts.dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && !errors.Is(err, errInterrupted) {
			fmt.Fprintf(os.Stderr, "demo: logs kept in %s\n", dir)
			return
		}
		err = errors.Join(err, removeDir())
	}()
	caddyfile, err := findCaddyfile(opts.caddyfile)
	if err != nil {
		return err
	}
	port := opts.port
	if port == 0 {
		if port, err = caddyrun.FreePort(); err != nil {
			return err
		}
	}

	p.title("caddy-lightning demo")
	p.line("Starting a regtest Lightning network (btcd, lnd nodes alice and bob) in %s", dir)
	network, err := regtest.Start(ctx, regtest.Options{Dir: dir, Log: os.Stdout})
	if err != nil {
		if ctx.Err() != nil {
			return errInterrupted // the error would end with pages of lnd's log
		}
		return err
	}
	defer func() { err = errors.Join(err, stopNetwork(p, network)) }()
	p.line("Network ready %s after start.", p.duration(time.Since(began)))
	jsonPath := filepath.Join(dir, "network.json")
	if err := network.WriteJSON(jsonPath); err != nil {
		return err
	}

	up, err := startUpstream()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, up.stop()) }()

	caddyStart := time.Now()
	site, err := startCaddy(caddyfile, dir, port, network.Alice, up.addr)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, stopCaddy(p)) }()
	p.line("Caddy serves %s with %s, ready in %s (its log: %s).",
		site.url, site.caddyfile, p.duration(time.Since(caddyStart)), site.logPath)

	w, err := newWalkthrough(ctx, p, network, site.url)
	if err != nil {
		return err
	}
	defer w.close()
	passed := w.run(ctx)
	if ctx.Err() != nil {
		return errInterrupted
	}
	if opts.once {
		if !passed {
			return errors.New("the walk-through failed")
		}
		return nil
	}

	printTryIt(p, network, site, up.addr, jsonPath, w.paywallCredentials())
	<-ctx.Done()
	stopSignals() // a second Ctrl-C kills the demo at once; the daemons die with it
	p.line("\nStopping Caddy and the network (Ctrl-C again to kill)...")
	if !passed {
		return errors.New("the walk-through failed")
	}
	return nil
}

// demoDir returns the demo's directory, creating a temporary one if dir is
// empty, and a function that removes it if it was created here.
func demoDir(dir string) (string, func() error, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "caddy-lightning-demo-")
		if err != nil {
			return "", nil, fmt.Errorf("create demo directory: %w", err)
		}
		return tmp, func() error { return os.RemoveAll(tmp) }, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("demo directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", nil, fmt.Errorf("create demo directory: %w", err)
	}
	return abs, func() error { return nil }, nil
}

// stopNetwork stops lnd, then btcd (Network.Stop's order), and reports how
// long it took.
func stopNetwork(p *printer, n *regtest.Network) error {
	began := time.Now()
	if err := n.Stop(); err != nil {
		return fmt.Errorf("stop network: %w", err)
	}
	p.line("Network stopped in %s.", p.duration(time.Since(began)))
	return nil
}
