// Package lndtest serves a fake LND node over real gRPC (TLS + macaroon) for
// unit tests. It answers the subset of lnrpc.Lightning, lnrpc.State and
// routerrpc.Router that caddy-lightning uses, with the status codes and error
// texts of lnd v0.21; every other RPC answers codes.Unimplemented.
package lndtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
)

// Option configures a Node at Start.
type Option func(*config)

type config struct {
	network      string
	alias        string
	now          func() time.Time
	routeFeeMsat int64
}

// WithNetwork sets the node's network: "mainnet", "testnet", "testnet4",
// "signet", "regtest" (the default) or "simnet". It decides GetInfo.chains,
// the invoice prefix (lnbc, lntb, lntbs, lnbcrt, lnsb) and which payment
// requests SendPaymentV2 and DecodePayReq accept.
func WithNetwork(network string) Option { return func(c *config) { c.network = network } }

// WithAlias sets the alias GetInfo reports (default "lndtest").
func WithAlias(alias string) Option { return func(c *config) { c.alias = alias } }

// WithClock replaces time.Now for invoice timestamps, expiry and macaroon
// time-before caveats, so tests can expire invoices without sleeping.
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithRouteFee sets the routing fee, in millisatoshis, of every successful
// payment (default 1000). A payment whose fee limit (fee_limit_sat or
// fee_limit_msat; 0 means zero-fee routes only, as in lnd) is below it fails
// with FAILURE_REASON_NO_ROUTE.
func WithRouteFee(msat int64) Option { return func(c *config) { c.routeFeeMsat = msat } }

// Node is a fake LND node serving lnrpc.Lightning, lnrpc.State and
// routerrpc.Router on 127.0.0.1. All methods are safe for concurrent use.
type Node struct {
	t       testing.TB
	cfg     config
	params  *chaincfg.Params
	key     *btcec.PrivateKey // identity key, signs AddInvoice invoices
	peerKey *btcec.PrivateKey // the other node, signs NewPayableInvoice invoices
	rootKey []byte
	macs    map[string]string // kind -> hex macaroon
	certPEM []byte            // guarded by srvMu: RotateTLSCert replaces it
	keyPEM  []byte            // guarded by srvMu
	dir     string
	addr    string

	srvMu    sync.Mutex // guards srv, stopping and addr
	srv      *grpc.Server
	stopping chan struct{} // closed when Stop begins: streams end as lnd's do

	closed    chan struct{} // closed at cleanup; ends payment resolvers
	closeOnce sync.Once
	wg        sync.WaitGroup // payment resolvers

	mu       sync.Mutex
	calls    map[string]int
	errs     map[string]error
	onceErrs map[string][]error
	delays   map[string]time.Duration
	state    lnrpc.WalletState
	stateCh  chan struct{} // closed and replaced when state changes
	synced   bool

	channels []Channel

	invoices map[[32]byte]*invoice
	byAdd    []*invoice // index i holds add_index i+1
	bySettle []*invoice // index i holds settle_index i+1
	events   []*lnrpc.Invoice
	eventsCh chan struct{} // closed and replaced when events grows
	invSubs  int           // open SubscribeInvoices streams
	payable  map[[32]byte]*payableInvoice
	payments map[[32]byte]*payment
	attempts map[[32]byte]int // SendPaymentV2 calls that started a payment, per hash
	paySeq   uint64
	payFail  lnrpc.PaymentFailureReason
	payDelay time.Duration
}

// Start serves a fake node on 127.0.0.1:0 with TLS (a self-signed
// certificate for 127.0.0.1, ::1 and localhost) and a random macaroon, and
// stops it at t.Cleanup. Setup failures end the test with t.Fatal.
func Start(t testing.TB, opts ...Option) *Node {
	t.Helper()
	n, err := newNode(t, opts)
	if err != nil {
		t.Fatalf("lndtest: %v", err)
	}
	t.Cleanup(n.close)
	if err := n.serve("127.0.0.1:0"); err != nil {
		t.Fatalf("lndtest: %v", err)
	}
	return n
}

func newNode(t testing.TB, opts []Option) (*Node, error) {
	cfg := config{network: "regtest", alias: "lndtest", now: time.Now, routeFeeMsat: 1000}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	if cfg.routeFeeMsat < 0 {
		return nil, fmt.Errorf("negative route fee %d msat", cfg.routeFeeMsat)
	}
	params, err := networkParams(cfg.network)
	if err != nil {
		return nil, err
	}
	key, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("identity key: %w", err)
	}
	peerKey, err := btcec.NewPrivateKey()
	if err != nil {
		return nil, fmt.Errorf("peer key: %w", err)
	}
	rootKey := make([]byte, 32)
	if _, err := rand.Read(rootKey); err != nil {
		return nil, fmt.Errorf("macaroon root key: %w", err)
	}
	macs := make(map[string]string, len(macaroonKinds))
	files := make(map[string][]byte)
	for kind, perms := range macaroonKinds {
		mac, err := newMacaroon(rootKey, perms)
		if err != nil {
			return nil, err
		}
		macs[kind] = hex.EncodeToString(mac)
		files[kind+".macaroon"] = mac
	}
	certPEM, keyPEM, err := selfSignedCert(time.Now())
	if err != nil {
		return nil, err
	}
	n := &Node{
		t: t, cfg: cfg, params: params, key: key, peerKey: peerKey,
		rootKey: rootKey, macs: macs,
		certPEM: certPEM, keyPEM: keyPEM, dir: t.TempDir(),
		closed:   make(chan struct{}),
		calls:    make(map[string]int),
		errs:     make(map[string]error),
		onceErrs: make(map[string][]error),
		delays:   make(map[string]time.Duration),
		state:    lnrpc.WalletState_SERVER_ACTIVE,
		stateCh:  make(chan struct{}),
		synced:   true,
		channels: append([]Channel(nil), defaultChannels...),
		invoices: make(map[[32]byte]*invoice),
		eventsCh: make(chan struct{}),
		payable:  make(map[[32]byte]*payableInvoice),
		payments: make(map[[32]byte]*payment),
		attempts: make(map[[32]byte]int),
	}
	files["tls.cert"], files["tls.key"] = certPEM, keyPEM
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(n.dir, name), data, 0o600); err != nil {
			return nil, fmt.Errorf("write %s: %w", name, err)
		}
	}
	return n, nil
}

// Addr is the host:port the node listens on (it keeps it across Restart).
func (n *Node) Addr() string {
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	return n.addr
}

// TLSCertPEM is the node's self-signed certificate, like lnd's tls.cert.
func (n *Node) TLSCertPEM() []byte {
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	return append([]byte(nil), n.certPEM...)
}

// RotateTLSCert renews the node's certificate as lnd does when tls.cert
// expires or is deleted: a new self-signed certificate and key, written to
// TLSCertPath and tls.key. A running node keeps serving with the old one;
// it serves the new one from its next Restart, as lnd from its next start.
func (n *Node) RotateTLSCert() error {
	certPEM, keyPEM, err := selfSignedCert(time.Now())
	if err != nil {
		return fmt.Errorf("lndtest: rotate tls cert: %w", err)
	}
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	for name, data := range map[string][]byte{"tls.cert": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(n.dir, name), data, 0o600); err != nil {
			return fmt.Errorf("lndtest: rotate tls cert: %w", err)
		}
	}
	n.certPEM, n.keyPEM = certPEM, keyPEM
	return nil
}

// TLSCertPath is a file holding TLSCertPEM, like lnd's tls.cert.
func (n *Node) TLSCertPath() string { return filepath.Join(n.dir, "tls.cert") }

// MacaroonHex is the hex admin macaroon clients must send in metadata key
// "macaroon". It grants every RPC.
func (n *Node) MacaroonHex() string { return n.macs["admin"] }

// MacaroonPath is a file holding the binary admin macaroon, like lnd's
// admin.macaroon.
func (n *Node) MacaroonPath() string { return filepath.Join(n.dir, "admin.macaroon") }

// MacaroonHexFor is the hex of one of the other macaroons lnd bakes:
// "admin", "readonly", "invoice" (AddInvoice, LookupInvoice,
// SubscribeInvoices only) or "router" (SendPaymentV2, TrackPaymentV2,
// DecodePayReq only). A call it does not grant fails like lnd's:
// codes.Unknown "permission denied". It returns "" for other kinds.
func (n *Node) MacaroonHexFor(kind string) string { return n.macs[kind] }

// MacaroonPathFor is the file holding the binary macaroon of kind (see
// MacaroonHexFor), e.g. <dir>/invoice.macaroon, or "" for other kinds.
func (n *Node) MacaroonPathFor(kind string) string {
	if _, ok := n.macs[kind]; !ok {
		return ""
	}
	return filepath.Join(n.dir, kind+".macaroon")
}

// Pubkey is the hex compressed identity pubkey (GetInfo.identity_pubkey and
// the destination of AddInvoice invoices).
func (n *Node) Pubkey() string { return hex.EncodeToString(n.key.PubKey().SerializeCompressed()) }

// PeerPubkey is the hex pubkey of the one other node this node can pay: the
// destination of NewPayableInvoice invoices and the keysend destination
// that succeeds.
func (n *Node) PeerPubkey() string {
	return hex.EncodeToString(n.peerKey.PubKey().SerializeCompressed())
}

// Network is the network name reported in GetInfo.chains, e.g. "regtest".
func (n *Node) Network() string { return n.cfg.network }

func (n *Node) serve(addr string) error {
	n.srvMu.Lock()
	certPEM, keyPEM := n.certPEM, n.keyPEM
	n.srvMu.Unlock()
	cert, err := tlsKeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	srv := grpc.NewServer(
		grpc.Creds(cert),
		grpc.WaitForHandlers(true),
		grpc.ChainUnaryInterceptor(n.unaryInterceptor),
		grpc.ChainStreamInterceptor(n.streamInterceptor),
	)
	lnrpc.RegisterLightningServer(srv, lightningService{n: n})
	lnrpc.RegisterStateServer(srv, stateService{n: n})
	registerRouter(srv, n)
	n.srvMu.Lock()
	n.addr = lis.Addr().String()
	n.srv = srv
	n.stopping = make(chan struct{})
	n.srvMu.Unlock()
	go func() { _ = srv.Serve(lis) }()
	return nil
}

// Stop shuts the node down as lnd does on SIGINT or SIGTERM: open
// SendPaymentV2 and TrackPaymentV2 streams end with lnd's plain error
// "routerrpc server shutting down" (codes.Unknown), whatever became of the
// payment; SubscribeInvoices streams end without an error; then new calls
// and connections are refused (codes.Unavailable). Payments in flight stay
// in flight and complete as they would have (see Restart). State
// (invoices, payments, counters) is kept for Restart. Stop is idempotent.
func (n *Node) Stop() {
	n.srvMu.Lock()
	srv, stopping := n.srv, n.stopping
	n.srv = nil
	n.srvMu.Unlock()
	if srv != nil {
		close(stopping)
		srv.GracefulStop() // every open call ends on stopping
	}
}

// stoppingCh is closed when the serving node begins to stop.
func (n *Node) stoppingCh() <-chan struct{} {
	n.srvMu.Lock()
	defer n.srvMu.Unlock()
	if n.stopping == nil {
		return make(chan struct{})
	}
	return n.stopping
}

// Restart serves again on the same address after Stop, with the same
// certificate, macaroon, keys, invoices and payments (like an lnd restart).
func (n *Node) Restart() error {
	n.srvMu.Lock()
	running, addr := n.srv != nil, n.addr
	n.srvMu.Unlock()
	if running {
		return fmt.Errorf("lndtest: restart: node is already serving on %s", addr)
	}
	select {
	case <-n.closed:
		return fmt.Errorf("lndtest: restart: node was cleaned up")
	default:
	}
	if err := n.serve(addr); err != nil {
		return fmt.Errorf("lndtest: restart: %w", err)
	}
	return nil
}

// close stops the node for good; payment resolvers end too.
func (n *Node) close() {
	n.Stop()
	n.mu.Lock() // startPayment checks closed and adds to wg under n.mu
	n.closeOnce.Do(func() { close(n.closed) })
	n.mu.Unlock()
	n.wg.Wait()
}
