package regtest

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
)

// maxMsgSize is the largest gRPC message accepted from lnd, as in lncli.
const maxMsgSize = 200 << 20

// Node is one running lnd.
type Node struct {
	Name         string // "alice", "bob" or "carol"
	GRPCAddr     string // host:port of the gRPC server
	RESTAddr     string // host:port of the REST server
	P2PAddr      string // host:port of the peer-to-peer listener
	LndDir       string // the node's --lnddir
	TLSCertPath  string // lnd's self-signed TLS certificate
	MacaroonPath string // admin macaroon
	Pubkey       string // identity public key, hex

	lncli   string
	lnd     string   // lnd binary
	lndArgs []string // its flags, kept for Start
	proc    *process
	conn    *grpc.ClientConn
	ln      lnrpc.LightningClient
	router  routerrpc.RouterClient
}

// CaddyLND is the Caddyfile block that connects the lightning app to n
// with its admin macaroon, with lines (such as "timeout 2s") added inside,
// indented for its place in the global lightning option (caddyrun refuses
// unformatted Caddyfiles).
func (n *Node) CaddyLND(lines ...string) string {
	b := fmt.Sprintf("lnd {\n\t\t\taddress %s\n\t\t\ttls_cert %s\n\t\t\tmacaroon %s\n", n.GRPCAddr, n.TLSCertPath, n.MacaroonPath)
	for _, l := range lines {
		b += "\t\t\t" + l + "\n"
	}
	return b + "\t\t}"
}

// startLnd starts lnd in dir on top of backend and returns once its RPC
// server is active and its wallet exists.
func startLnd(ctx context.Context, bin *Binaries, name, dir string, backend *btcd) (*Node, error) {
	ports, err := freePorts(3)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	n := &Node{
		Name:         name,
		GRPCAddr:     hostPort(ports[0]),
		RESTAddr:     hostPort(ports[1]),
		P2PAddr:      hostPort(ports[2]),
		LndDir:       dir,
		TLSCertPath:  filepath.Join(dir, "tls.cert"),
		MacaroonPath: filepath.Join(dir, "data", "chain", "bitcoin", "regtest", "admin.macaroon"),
		lncli:        bin.Lncli,
		lnd:          bin.Lnd,
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	n.lndArgs = []string{
		"--lnddir=" + dir,
		"--alias=" + name,
		"--bitcoin.regtest",
		"--bitcoin.node=btcd",
		"--btcd.rpchost=" + backend.rpcAddr,
		"--btcd.rpcuser=" + btcdRPCUser,
		"--btcd.rpcpass=" + btcdRPCPass,
		"--btcd.rpccert=" + backend.certPath,
		"--noseedbackup",
		"--nobootstrap",
		"--rpclisten=" + n.GRPCAddr,
		"--restlisten=" + n.RESTAddr,
		"--listen=" + n.P2PAddr,
		"--externalip=" + n.P2PAddr,
		"--bitcoin.defaultchanconfs=1",
		"--maxpendingchannels=2", // alice and bob each open one
		"--accept-keysend",
		"--trickledelay=50",
		"--gossip.sub-batch-delay=5ms",
		"--db.batch-commit-interval=10ms",
		"--debuglevel=info",
	}
	if err := n.launch(ctx); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	return n, nil
}

// launch runs lnd with the node's flags and waits until it is active.
func (n *Node) launch(ctx context.Context) error {
	proc, err := startProcess(n.Name, filepath.Join(n.LndDir, n.Name+".log"), n.lnd, n.lndArgs...)
	if err != nil {
		return err
	}
	n.proc = proc
	if err := n.waitActive(ctx); err != nil {
		return errors.Join(err, n.stop())
	}
	return nil
}

// Stop stops the node's lnd and keeps its data, so tests can see an
// unavailable node; Start brings it back. Network.Stop stops it for good.
func (n *Node) Stop() error {
	return n.stop()
}

// Start restarts a stopped node with the same ports, keys and channels, and
// returns once its RPC server is active again.
func (n *Node) Start(ctx context.Context) error {
	if n.proc.exited() == nil {
		return fmt.Errorf("start %s: already running", n.Name)
	}
	if err := n.launch(ctx); err != nil {
		return fmt.Errorf("start %s: %w", n.Name, err)
	}
	return nil
}

// Freeze suspends the node's lnd (SIGSTOP): it keeps its connections open
// but answers nothing, like a stuck node. Thaw resumes it.
func (n *Node) Freeze() error {
	return n.proc.signal(syscall.SIGSTOP)
}

// Thaw resumes a frozen node (SIGCONT).
func (n *Node) Thaw() error {
	return n.proc.signal(syscall.SIGCONT)
}

// waitActive waits for SERVER_ACTIVE, then opens the admin connection and
// learns the node's public key.
func (n *Node) waitActive(ctx context.Context) error {
	var conn *grpc.ClientConn
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	err := waitFor(ctx, 60*time.Second, n.Name+" RPC server", []*process{n.proc}, func(ctx context.Context) error {
		if conn == nil {
			c, err := dial(n.GRPCAddr, n.TLSCertPath, "") // tls.cert appears at startup
			if err != nil {
				return err
			}
			conn = c
		}
		resp, err := lnrpc.NewStateClient(conn).GetState(ctx, &lnrpc.GetStateRequest{})
		if err == nil && resp.State != lnrpc.WalletState_SERVER_ACTIVE {
			err = fmt.Errorf("state %s", resp.State)
		}
		return err
	})
	if err != nil {
		return err
	}
	mac, err := os.ReadFile(n.MacaroonPath)
	if err != nil {
		return fmt.Errorf("read macaroon: %w", err)
	}
	n.conn, err = dial(n.GRPCAddr, n.TLSCertPath, hex.EncodeToString(mac))
	if err != nil {
		return err
	}
	n.ln = lnrpc.NewLightningClient(n.conn)
	n.router = routerrpc.NewRouterClient(n.conn)
	info, err := n.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
	if err != nil {
		return fmt.Errorf("getinfo: %w", err)
	}
	n.Pubkey = info.IdentityPubkey
	return nil
}

// dial returns a (lazily connecting) gRPC client for lnd at addr. An empty
// macaroon gives a connection for the macaroon-free State service only.
func dial(addr, certPath, macaroonHex string) (*grpc.ClientConn, error) {
	tlsCreds, err := credentials.NewClientTLSFromFile(certPath, "")
	if err != nil {
		return nil, fmt.Errorf("load lnd TLS cert: %w", err)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(tlsCreds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize)),
	}
	if macaroonHex != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(macaroonCreds(macaroonHex)))
	}
	conn, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("dial lnd %s: %w", addr, err)
	}
	return conn, nil
}

// macaroonCreds sends a hex-encoded macaroon with every call.
type macaroonCreds string

func (m macaroonCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}

func (macaroonCreds) RequireTransportSecurity() bool { return true }

// Dial returns a gRPC connection to the node authenticated with the admin
// macaroon, once it is connected. The caller closes it.
func (n *Node) Dial(ctx context.Context) (*grpc.ClientConn, error) {
	mac, err := os.ReadFile(n.MacaroonPath)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", n.Name, err)
	}
	conn, err := dial(n.GRPCAddr, n.TLSCertPath, hex.EncodeToString(mac))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", n.Name, err)
	}
	conn.Connect()
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		if !conn.WaitForStateChange(ctx, s) {
			conn.Close()
			return nil, fmt.Errorf("dial %s: %w", n.Name, ctx.Err())
		}
	}
	return conn, nil
}

// MacaroonPathFor returns the path of one of the macaroons lnd bakes at
// startup: "admin", "readonly", "invoice" or "router".
func (n *Node) MacaroonPathFor(kind string) string {
	return filepath.Join(filepath.Dir(n.MacaroonPath), kind+".macaroon")
}

// LncliArgs returns the lncli command line (binary and flags) that talks to
// the node; append a command such as "getinfo".
func (n *Node) LncliArgs() []string {
	return []string{
		n.lncli,
		"--network=regtest",
		"--lnddir=" + n.LndDir,
		"--rpcserver=" + n.GRPCAddr,
		"--tlscertpath=" + n.TLSCertPath,
		"--macaroonpath=" + n.MacaroonPath,
	}
}

// Lncli runs lncli against the node with the admin macaroon and returns its
// standard output, e.g. n.Lncli(ctx, "getinfo").
func (n *Node) Lncli(ctx context.Context, args ...string) ([]byte, error) {
	cmdline := append(n.LncliArgs(), args...)
	cmd := exec.CommandContext(ctx, cmdline[0], cmdline[1:]...)
	cmd.SysProcAttr = childAttr()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: lncli %v: %w: %s", n.Name, args, err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out, nil
}

// PayInvoice pays a BOLT 11 invoice from this node and returns the preimage.
// Fees are capped at 1000 sat; the payment times out after 30 seconds.
func (n *Node) PayInvoice(ctx context.Context, invoice string) ([]byte, error) {
	stream, err := n.router.SendPaymentV2(ctx, &routerrpc.SendPaymentRequest{
		PaymentRequest: invoice,
		TimeoutSeconds: 30,
		FeeLimitSat:    1000,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: pay: %w", n.Name, err)
	}
	for {
		p, err := stream.Recv()
		if err != nil {
			return nil, fmt.Errorf("%s: pay: %w", n.Name, err)
		}
		switch p.Status {
		case lnrpc.Payment_SUCCEEDED:
			preimage, err := hex.DecodeString(p.PaymentPreimage)
			if err != nil {
				return nil, fmt.Errorf("%s: pay: preimage: %w", n.Name, err)
			}
			return preimage, nil
		case lnrpc.Payment_FAILED:
			return nil, fmt.Errorf("%s: pay: %s", n.Name, p.FailureReason)
		}
	}
}

// addInvoice creates an invoice for sat satoshis and returns its BOLT 11
// payment request.
func (n *Node) addInvoice(ctx context.Context, sat int64, memo string) (string, error) {
	inv, err := n.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: sat, Memo: memo})
	if err != nil {
		return "", fmt.Errorf("%s: add invoice: %w", n.Name, err)
	}
	return inv.PaymentRequest, nil
}

// waitSynced waits until the node is synced to a chain at least h blocks high.
func (n *Node) waitSynced(ctx context.Context, h int64) error {
	return waitFor(ctx, 60*time.Second, fmt.Sprintf("%s synced to height %d", n.Name, h), []*process{n.proc},
		func(ctx context.Context) error {
			info, err := n.ln.GetInfo(ctx, &lnrpc.GetInfoRequest{})
			if err == nil && (!info.SyncedToChain || int64(info.BlockHeight) < h) {
				err = fmt.Errorf("height %d, synced %t", info.BlockHeight, info.SyncedToChain)
			}
			return err
		})
}

// waitBalance waits until the node's confirmed on-chain balance is at least
// sat.
func (n *Node) waitBalance(ctx context.Context, sat int64) error {
	return waitFor(ctx, 30*time.Second, fmt.Sprintf("%s confirmed balance %d sat", n.Name, sat), []*process{n.proc},
		func(ctx context.Context) error {
			bal, err := n.ln.WalletBalance(ctx, &lnrpc.WalletBalanceRequest{})
			if err == nil && bal.ConfirmedBalance < sat {
				err = fmt.Errorf("confirmed balance %d sat", bal.ConfirmedBalance)
			}
			return err
		})
}

// newAddress returns a fresh P2WKH address of the node's wallet.
func (n *Node) newAddress(ctx context.Context) (string, error) {
	resp, err := n.ln.NewAddress(ctx, &lnrpc.NewAddressRequest{Type: lnrpc.AddressType_WITNESS_PUBKEY_HASH})
	if err != nil {
		return "", fmt.Errorf("%s: new address: %w", n.Name, err)
	}
	return resp.Address, nil
}

// stop shuts lnd down; it is safe to call more than once.
func (n *Node) stop() error {
	if n.conn != nil {
		n.conn.Close()
	}
	return n.proc.stop()
}
