package regtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
)

// RunTests runs a test package's tests against one network shared by all of
// them, and returns the exit code for os.Exit. Call it from TestMain:
//
//	var network *regtest.Network // nil under -short
//
//	func TestMain(m *testing.M) {
//		os.Exit(regtest.RunTests(m, func(n *regtest.Network) { network = n }))
//	}
//
//	func TestPay(t *testing.T) {
//		if network == nil {
//			t.Skip("needs the regtest network; not started under -short")
//		}
//		...
//	}
//
// Under -short no network is started and setup is not called. Otherwise the
// network is started (building the binaries first if needed), setup
// receives it, the tests run, and the network is stopped. If the network
// does not start, no test runs and the exit code is 1. SIGINT or SIGTERM
// stops the network and exits with code 1; if the test binary dies otherwise
// (a panic, the -timeout of go test) the kernel kills the daemons, but the
// temporary directory stays behind.
func RunTests(m *testing.M, setup func(*Network)) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	n, err := Start(ctx, Options{})
	if err != nil {
		fmt.Fprintf(os.Stderr, "regtest: %v\n", err)
		return 1
	}
	finished := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done(): // a signal: cancel is deferred until after finished
			fmt.Fprintln(os.Stderr, "regtest: interrupted, stopping the network")
			if err := n.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "regtest: %v\n", err)
			}
			os.Exit(1)
		case <-finished:
		}
	}()
	setup(n)
	code := m.Run()
	close(finished)
	if err := n.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "regtest: stop network: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
