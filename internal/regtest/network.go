// Package regtest runs a real Lightning network on one machine, without
// Docker, for tests, demos and users: a btcd on regtest and two lnd nodes,
// alice (the node behind Caddy) and bob (a customer), with a funded channel
// in each direction. The pinned lnd and btcd are built from the Go module
// proxy into a per-user cache on first use (see EnsureBinaries). Start
// starts a network, RunTests shares one among a test package's tests, and
// cmd/regtest runs one in the foreground. Linux only (it relies on
// Pdeathsig and flock).
package regtest

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
)

// Channel and funding amounts of the network, in satoshis.
const (
	ChannelCapacity = 1_000_000 // each of the two channels
	ChannelPush     = 250_000   // pushed to the other side when opening
	bobFunding      = 10_000_000
	feeRate         = 5 // sat/vbyte for on-chain transactions
)

// Timeouts of the network setup (not counting the binary build) and of Mine.
const (
	setupTimeout = 3 * time.Minute
	mineTimeout  = time.Minute
)

// segwitHeight is how many blocks btcd regtest needs before segwit is active.
const segwitHeight = 432

// Options configures Start.
type Options struct {
	// Dir holds the daemons' data and logs. Start resets the network state
	// in it (a regtest chain does not survive a btcd restart anyway). If
	// empty, Start uses a new temporary directory that Stop removes.
	Dir string
	// Log receives progress messages, notably of the first binary build,
	// which takes several minutes. Nil means os.Stderr.
	Log io.Writer
}

// Network is a running regtest network: a btcd and two lnd nodes with a
// channel in each direction between them, and carol once StartCarol ran.
type Network struct {
	// Alice is the node behind Caddy; Bob is a customer.
	Alice, Bob *Node
	// Carol is nil until StartCarol: a node whose only channel is a
	// private one from bob, her LSP.
	Carol *Node
	// Dir holds the daemons' data and logs.
	Dir string
	// Bin holds the paths of lnd, lncli, btcd and btcctl.
	Bin Binaries
	// BtcctlConfig is a btcctl config file for the network's btcd:
	// `btcctl -C <BtcctlConfig> getblockcount`.
	BtcctlConfig string

	backend *btcd
	miner   *btcd // only during setup
	tempDir bool

	stopOnce sync.Once
	stopErr  error
}

// Start builds the binaries if needed and starts a network: a btcd backend
// mined past segwit activation, and lnd nodes alice and bob, both funded,
// peered, with a ChannelCapacity channel opened by each (pushing ChannelPush
// to the other). It returns once a payment has routed both ways. On error,
// everything started is stopped again and the logs stay in the directory.
func Start(ctx context.Context, opts Options) (*Network, error) {
	log := opts.Log
	if log == nil {
		log = os.Stderr
	}
	bin, err := EnsureBinaries(ctx, log)
	if err != nil {
		return nil, fmt.Errorf("start network: %w", err)
	}
	n := &Network{Dir: opts.Dir, Bin: *bin}
	if n.Dir == "" {
		if n.Dir, err = os.MkdirTemp("", "regtest-"); err != nil {
			return nil, fmt.Errorf("start network: %w", err)
		}
		n.tempDir = true
	} else if err := resetDir(n.Dir); err != nil {
		return nil, fmt.Errorf("start network: %w", err)
	}
	n.BtcctlConfig = filepath.Join(n.Dir, "btcctl.conf")

	began := time.Now()
	fmt.Fprintf(log, "regtest: starting btcd and lnd nodes alice and bob in %s\n", n.Dir)
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	if err := n.setup(ctx); err != nil {
		n.tempDir = false // keep the logs for a post-mortem
		return nil, fmt.Errorf("start network (logs in %s): %w", n.Dir, errors.Join(err, n.Stop()))
	}
	fmt.Fprintf(log, "regtest: network ready in %s\n", time.Since(began).Round(100*time.Millisecond))
	return n, nil
}

// resetDir creates dir, removing the state a previous network left there.
func resetDir(dir string) error {
	for _, name := range []string{"btcd", "miner", "alice", "bob", "carol", "btcctl.conf", "network.json"} {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return os.MkdirAll(dir, 0o755)
}

func (n *Network) setup(ctx context.Context) error {
	burn, err := burnAddress()
	if err != nil {
		return err
	}
	if n.backend, err = startBtcd(ctx, n.Bin.Btcd, "btcd", filepath.Join(n.Dir, "btcd"), burn, ""); err != nil {
		return err
	}
	if err := n.backend.btcctlConfig(n.BtcctlConfig); err != nil {
		return err
	}
	height, err := n.backend.generate(segwitHeight)
	if err != nil {
		return err
	}
	if err := n.startNodes(ctx); err != nil {
		return err
	}
	if err := n.fund(ctx, height); err != nil {
		return err
	}
	if err := n.openChannels(ctx); err != nil {
		return err
	}
	return n.probe(ctx)
}

// startNodes starts alice and bob concurrently.
func (n *Network) startNodes(ctx context.Context) error {
	var wg sync.WaitGroup
	var aliceErr, bobErr error
	wg.Go(func() {
		n.Alice, aliceErr = startLnd(ctx, &n.Bin, "alice", filepath.Join(n.Dir, "alice"), n.backend)
	})
	wg.Go(func() {
		n.Bob, bobErr = startLnd(ctx, &n.Bin, "bob", filepath.Join(n.Dir, "bob"), n.backend)
	})
	wg.Wait()
	return errors.Join(aliceErr, bobErr)
}

// fund mines coinbases to alice with a temporary second btcd (the backend's
// mining address is fixed at its start, before alice exists), then sends
// bobFunding to bob on chain.
func (n *Network) fund(ctx context.Context, height int64) error {
	aliceAddr, err := n.Alice.newAddress(ctx)
	if err != nil {
		return err
	}
	n.miner, err = startBtcd(ctx, n.Bin.Btcd, "miner", filepath.Join(n.Dir, "miner"), aliceAddr, n.backend.p2pAddr)
	if err != nil {
		return err
	}
	if err := n.miner.waitHeight(ctx, height); err != nil {
		return err
	}
	// 100 blocks for coinbase maturity, plus ten mature coinbases.
	if height, err = n.miner.generate(110); err != nil {
		return err
	}
	if err := n.backend.waitHeight(ctx, height); err != nil {
		return err
	}
	if err := n.miner.stop(); err != nil {
		return err
	}
	n.miner = nil
	if err := n.Alice.waitSynced(ctx, height); err != nil {
		return err
	}
	if err := n.Alice.waitBalance(ctx, bobFunding+2*ChannelCapacity); err != nil {
		return err
	}

	bobAddr, err := n.Bob.newAddress(ctx)
	if err != nil {
		return err
	}
	_, err = n.Alice.ln.SendCoins(ctx, &lnrpc.SendCoinsRequest{Addr: bobAddr, Amount: bobFunding, SatPerVbyte: feeRate})
	if err != nil {
		return fmt.Errorf("alice: send coins to bob: %w", err)
	}
	if err := n.mine(ctx, 1); err != nil {
		return err
	}
	return n.Bob.waitBalance(ctx, bobFunding)
}

// openChannels peers alice with bob and opens one channel from each side.
func (n *Network) openChannels(ctx context.Context) error {
	_, err := n.Alice.ln.ConnectPeer(ctx, &lnrpc.ConnectPeerRequest{
		Addr: &lnrpc.LightningAddress{Pubkey: n.Bob.Pubkey, Host: n.Bob.P2PAddr},
	})
	if err != nil {
		return fmt.Errorf("alice: connect to bob: %w", err)
	}
	for _, pair := range [][2]*Node{{n.Alice, n.Bob}, {n.Bob, n.Alice}} {
		from, to := pair[0], pair[1]
		pub, err := hex.DecodeString(to.Pubkey)
		if err != nil {
			return fmt.Errorf("%s pubkey: %w", to.Name, err)
		}
		_, err = from.ln.OpenChannelSync(ctx, &lnrpc.OpenChannelRequest{
			NodePubkey:         pub,
			LocalFundingAmount: ChannelCapacity,
			PushSat:            ChannelPush,
			SatPerVbyte:        feeRate,
		})
		if err != nil {
			return fmt.Errorf("%s: open channel to %s: %w", from.Name, to.Name, err)
		}
	}
	// One confirmation activates the channels (--bitcoin.defaultchanconfs=1);
	// six also announce them.
	if err := n.mine(ctx, 6); err != nil {
		return err
	}
	for _, node := range []*Node{n.Alice, n.Bob} {
		err := waitFor(ctx, 30*time.Second, node.Name+" channels active", []*process{node.proc},
			func(ctx context.Context) error {
				resp, err := node.ln.ListChannels(ctx, &lnrpc.ListChannelsRequest{ActiveOnly: true})
				if err == nil && len(resp.Channels) < 2 {
					err = fmt.Errorf("%d active channels", len(resp.Channels))
				}
				return err
			})
		if err != nil {
			return err
		}
	}
	return nil
}

// probe pays 1000 sat each way. Payments fail for about a second after the
// channels become active, so each direction is retried until it succeeds.
func (n *Network) probe(ctx context.Context) error {
	for _, pair := range [][2]*Node{{n.Bob, n.Alice}, {n.Alice, n.Bob}} {
		from, to := pair[0], pair[1]
		err := waitFor(ctx, 30*time.Second, fmt.Sprintf("payment %s -> %s", from.Name, to.Name),
			[]*process{from.proc, to.proc}, func(ctx context.Context) error {
				invoice, err := to.addInvoice(ctx, 1000, "regtest probe")
				if err != nil {
					return err
				}
				_, err = from.PayInvoice(ctx, invoice)
				return err
			})
		if err != nil {
			return err
		}
	}
	return nil
}

// Mine mines n blocks on the backend (including pending transactions) and
// waits until both nodes have synced to them.
func (n *Network) Mine(blocks int) error {
	ctx, cancel := context.WithTimeout(context.Background(), mineTimeout)
	defer cancel()
	return n.mine(ctx, blocks)
}

func (n *Network) mine(ctx context.Context, blocks int) error {
	height, err := n.backend.generate(blocks)
	if err != nil {
		return err
	}
	for _, node := range n.nodes() {
		if err := node.waitSynced(ctx, height); err != nil {
			return err
		}
	}
	return nil
}

// nodes returns the nodes started so far.
func (n *Network) nodes() []*Node {
	nodes := []*Node{n.Alice, n.Bob}
	if n.Carol != nil {
		nodes = append(nodes, n.Carol)
	}
	return nodes
}

// Stop stops the nodes, then btcd (the other order makes lnd stall on
// reconnects), and removes the directory if Start created it. It is safe to
// call more than once and from several goroutines.
func (n *Network) Stop() error {
	n.stopOnce.Do(func() {
		var errs []error
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, node := range []*Node{n.Alice, n.Bob, n.Carol} {
			if node != nil {
				wg.Go(func() {
					err := node.stop()
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				})
			}
		}
		wg.Wait()
		for _, b := range []*btcd{n.miner, n.backend} {
			if b != nil {
				errs = append(errs, b.stop())
			}
		}
		if n.tempDir {
			errs = append(errs, os.RemoveAll(n.Dir))
		}
		n.stopErr = errors.Join(errs...)
	})
	return n.stopErr
}

// nodeJSON is a node's entry in network.json.
type nodeJSON struct {
	GRPC     string `json:"grpc"`
	REST     string `json:"rest"`
	P2P      string `json:"p2p"`
	TLSCert  string `json:"tls_cert"`
	Macaroon string `json:"macaroon"`
	Pubkey   string `json:"pubkey"`
	LndDir   string `json:"lnddir"`
}

// networkJSON is the content of network.json.
type networkJSON struct {
	Alice        nodeJSON          `json:"alice"`
	Bob          nodeJSON          `json:"bob"`
	Bin          map[string]string `json:"bin"`
	BtcctlConfig string            `json:"btcctl_config"`
	Network      string            `json:"network"`
}

func nodeInfo(n *Node) nodeJSON {
	return nodeJSON{
		GRPC: n.GRPCAddr, REST: n.RESTAddr, P2P: n.P2PAddr, TLSCert: n.TLSCertPath,
		Macaroon: n.MacaroonPath, Pubkey: n.Pubkey, LndDir: n.LndDir,
	}
}

// WriteJSON writes the connection details of the network to path, replacing
// the file atomically:
//
//	{"alice": {"grpc", "rest", "p2p", "tls_cert", "macaroon", "pubkey", "lnddir"},
//	 "bob": {...}, "bin": {"lncli", "btcctl"}, "btcctl_config": "...", "network": "regtest"}
//
// macaroon is the admin macaroon's path.
func (n *Network) WriteJSON(path string) error {
	b, err := json.MarshalIndent(networkJSON{
		Alice:        nodeInfo(n.Alice),
		Bob:          nodeInfo(n.Bob),
		Bin:          map[string]string{"lncli": n.Bin.Lncli, "btcctl": n.Bin.Btcctl},
		BtcctlConfig: n.BtcctlConfig,
		Network:      "regtest",
	}, "", "  ")
	if err != nil {
		return fmt.Errorf("write network json: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write network json: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write network json: %w", err)
	}
	return nil
}

// waitFor calls check every 100 ms until it returns nil, timeout passes or
// ctx ends. It fails early, with the log tail, if one of procs exits; on
// timeout the error carries check's last error and the tails of procs' logs.
func waitFor(ctx context.Context, timeout time.Duration, what string, procs []*process, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		for _, p := range procs {
			if exitErr := p.exited(); exitErr != nil {
				return fmt.Errorf("wait for %s: %w", what, exitErr)
			}
		}
		select {
		case <-ctx.Done():
			errs := []error{fmt.Errorf("wait for %s: %w (last error: %v)", what, ctx.Err(), err)}
			for _, p := range procs {
				errs = append(errs, p.errorf("still running"))
			}
			return errors.Join(errs...)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
