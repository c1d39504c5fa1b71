// Command regtest runs a local Lightning regtest network (btcd and two lnd
// nodes, alice and bob, with channels both ways) without Docker.
//
//	go run ./cmd/regtest up [--dir DIR]   # run until Ctrl-C; writes DIR/network.json when ready
//	go run ./cmd/regtest build            # only build the binaries into the cache
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

const usage = `usage:
  regtest up [--dir DIR]   start the network and run until SIGINT/SIGTERM;
                           DIR/network.json is written once it is ready
  regtest build            build lnd and btcd into the binary cache only
`

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "regtest: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return errors.New("missing command")
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	switch args[0] {
	case "up":
		return up(ctx, args[1:])
	case "build":
		bin, err := regtest.EnsureBinaries(ctx, os.Stderr)
		if err != nil {
			return err
		}
		fmt.Printf("lnd:    %s\nlncli:  %s\nbtcd:   %s\nbtcctl: %s\n", bin.Lnd, bin.Lncli, bin.Btcd, bin.Btcctl)
		return nil
	default:
		fmt.Fprint(os.Stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}

func up(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	dir := fs.String("dir", filepath.Join(os.TempDir(), "caddy-lightning-regtest"), "directory for data, logs and network.json")
	if err := fs.Parse(args); err != nil {
		return err
	}
	absDir, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	network, err := regtest.Start(ctx, regtest.Options{Dir: absDir})
	if err != nil {
		return err
	}
	jsonPath := filepath.Join(absDir, "network.json")
	if err := network.WriteJSON(jsonPath); err != nil {
		return errors.Join(err, network.Stop())
	}
	printHelp(network, jsonPath)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "regtest: stopping")
	// network.json describes a running network only.
	return errors.Join(os.Remove(jsonPath), network.Stop())
}

func printHelp(n *regtest.Network, jsonPath string) {
	fmt.Printf("\nregtest network ready; connection details in %s\n\n", jsonPath)
	for _, node := range []*regtest.Node{n.Alice, n.Bob} {
		fmt.Printf("%s (%s, grpc %s):\n  %s getinfo\n", node.Name, node.Pubkey, node.GRPCAddr,
			strings.Join(node.LncliArgs(), " "))
	}
	fmt.Printf("btcd:\n  %s -C %s getblockcount\n\nPress Ctrl-C to stop.\n", n.Bin.Btcctl, n.BtcctlConfig)
}
