package regtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/rpcclient"
)

// RPC credentials of every btcd in the network (loopback only).
const (
	btcdRPCUser = "regtest"
	btcdRPCPass = "regtest"
)

// btcd is a running btcd on regtest with an RPC client.
type btcd struct {
	proc     *process
	p2pAddr  string
	rpcAddr  string
	certPath string
	client   *rpcclient.Client
}

// burnAddress is a valid regtest address nobody can spend from, used as the
// mining address of the backend btcd (which has no wallet).
func burnAddress() (string, error) {
	addr, err := btcutil.NewAddressPubKeyHash(make([]byte, 20), &chaincfg.RegressionNetParams)
	if err != nil {
		return "", fmt.Errorf("burn address: %w", err)
	}
	return addr.EncodeAddress(), nil
}

// startBtcd starts a regtest btcd in dir whose blocks pay miningAddr. If
// connect is set, it peers only with that address and does not listen.
// It returns once the RPC server answers.
func startBtcd(ctx context.Context, bin, name, dir, miningAddr, connect string) (*btcd, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	ports, err := freePorts(2)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	b := &btcd{
		p2pAddr:  hostPort(ports[0]),
		rpcAddr:  hostPort(ports[1]),
		certPath: filepath.Join(dir, "rpc.cert"),
	}
	args := []string{
		"--regtest",
		"--datadir=" + filepath.Join(dir, "data"),
		"--logdir=" + filepath.Join(dir, "logs"),
		"--rpclisten=" + b.rpcAddr,
		"--rpcuser=" + btcdRPCUser,
		"--rpcpass=" + btcdRPCPass,
		"--rpccert=" + b.certPath,
		"--rpckey=" + filepath.Join(dir, "rpc.key"),
		"--miningaddr=" + miningAddr,
		"--txindex",
		"--debuglevel=info",
	}
	if connect != "" {
		args = append(args, "--connect="+connect)
		b.p2pAddr = ""
	} else {
		args = append(args, "--listen="+b.p2pAddr)
	}
	b.proc, err = startProcess(name, filepath.Join(dir, name+".log"), bin, args...)
	if err != nil {
		return nil, err
	}
	err = waitFor(ctx, 30*time.Second, name+" RPC", []*process{b.proc}, func(context.Context) error {
		if b.client == nil {
			cert, err := os.ReadFile(b.certPath) // written by btcd at startup
			if err != nil {
				return err
			}
			b.client, err = rpcclient.New(&rpcclient.ConnConfig{
				Host: b.rpcAddr, User: btcdRPCUser, Pass: btcdRPCPass,
				Certificates: cert, HTTPPostMode: true,
			}, nil)
			if err != nil {
				return err
			}
		}
		if _, err := b.client.GetBlockCount(); err != nil {
			// Retry with a new client: the certificate may have been read
			// while btcd was still writing it.
			b.client.Shutdown()
			b.client = nil
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, errors.Join(err, b.stop()))
	}
	return b, nil
}

// generate mines n blocks and returns the new height.
func (b *btcd) generate(n int) (int64, error) {
	if _, err := b.client.Generate(uint32(n)); err != nil {
		return 0, fmt.Errorf("%s: generate %d: %w", b.proc.name, n, err)
	}
	h, err := b.client.GetBlockCount()
	if err != nil {
		return 0, fmt.Errorf("%s: block count: %w", b.proc.name, err)
	}
	return h, nil
}

// waitHeight waits until the chain is at least h blocks high.
func (b *btcd) waitHeight(ctx context.Context, h int64) error {
	return waitFor(ctx, 30*time.Second, fmt.Sprintf("%s at height %d", b.proc.name, h), []*process{b.proc},
		func(context.Context) error {
			got, err := b.client.GetBlockCount()
			if err == nil && got < h {
				err = fmt.Errorf("height %d", got)
			}
			return err
		})
}

// stop shuts btcd down; it is safe to call more than once.
func (b *btcd) stop() error {
	if b.client != nil {
		b.client.Shutdown()
		b.client = nil
	}
	return b.proc.stop()
}

// btcctlConfig writes a btcctl config file for b so that
// `btcctl -C path <command>` talks to it.
func (b *btcd) btcctlConfig(path string) error {
	conf := fmt.Sprintf("regtest=1\nrpcserver=%s\nrpcuser=%s\nrpcpass=%s\nrpccert=%s\n",
		b.rpcAddr, btcdRPCUser, btcdRPCPass, b.certPath)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("write btcctl config: %w", err)
	}
	return nil
}
