package lightning

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/certmagic"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

func init() {
	caddy.RegisterModule(recordingStorage{})
}

// recordingStorage is a storage module for the tests: Caddy's file system
// storage that counts what is done with it, by path.
type recordingStorage struct {
	Path string `json:"path"`
}

// storageOps counts the reads and writes of each recordingStorage path.
var storageOps sync.Map // path -> *storageCounts

type storageCounts struct{ reads, writes atomic.Int64 }

func countsFor(path string) *storageCounts {
	c, _ := storageOps.LoadOrStore(path, new(storageCounts))
	return c.(*storageCounts)
}

func (recordingStorage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{ID: "caddy.storage.lightning_test_recording", New: func() caddy.Module { return new(recordingStorage) }}
}

func (s *recordingStorage) CertMagicStorage() (certmagic.Storage, error) {
	return &recordingFS{FileStorage: &certmagic.FileStorage{Path: s.Path}, counts: countsFor(s.Path)}, nil
}

type recordingFS struct {
	*certmagic.FileStorage
	counts *storageCounts
}

func (s *recordingFS) Lock(ctx context.Context, name string) error {
	s.counts.writes.Add(1)
	return s.FileStorage.Lock(ctx, name)
}

func (s *recordingFS) Store(ctx context.Context, key string, value []byte) error {
	s.counts.writes.Add(1)
	return s.FileStorage.Store(ctx, key, value)
}

func (s *recordingFS) Delete(ctx context.Context, key string) error {
	s.counts.writes.Add(1)
	return s.FileStorage.Delete(ctx, key)
}

func (s *recordingFS) Load(ctx context.Context, key string) ([]byte, error) {
	s.counts.reads.Add(1)
	return s.FileStorage.Load(ctx, key)
}

func (s *recordingFS) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	s.counts.reads.Add(1)
	return s.FileStorage.Stat(ctx, key)
}

// nodeCalls sums the calls of every method the plugin uses.
func nodeCalls(node *lndtest.Node) int {
	n := 0
	for _, m := range []string{"GetInfo", "GetState", "AddInvoice", "LookupInvoice", "ListInvoices", "SubscribeInvoices", "DecodePayReq",
		"ListChannels", "CheckMacaroonPermissions", "SendPaymentV2", "TrackPaymentV2"} {
		n += node.Calls(m)
	}
	return n
}

// TestValidateDoesNoIO: `caddy validate` (and a reload that fails
// validation) provisions and validates the config without a call to the
// node and without touching storage; only Start does that.
func TestValidateDoesNoIO(t *testing.T) {
	node := lndtest.Start(t)
	path := t.TempDir()
	cfgJSON, _, err := adaptCaddyfile(testCaddyfile("off", path, lndOption(node), freePort(t), `	route /paid/* {
		paywall 100
		respond "x"
	}
	route /balance/* {
		paywall 1 {
			mode prepaid
		}
		respond "x"
	}
	route /api/* {
		lightning
	}`))
	if err != nil {
		t.Fatal(err)
	}
	var cfg caddy.Config
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.StorageRaw = json.RawMessage(fmt.Sprintf(`{"module": "lightning_test_recording", "path": %q}`, path))
	raw, _ := json.Marshal(&cfg)
	var validated caddy.Config
	_ = json.Unmarshal(raw, &validated)
	if err := caddy.Validate(&validated); err != nil {
		t.Fatal(err)
	}
	counts := countsFor(path)
	if w, r, n := counts.writes.Load(), counts.reads.Load(), nodeCalls(node); w != 0 || r != 0 || n != 0 {
		t.Errorf("validate: %d storage writes, %d reads, %d node calls; want none", w, r, n)
	}

	// Start does the work: the root key is created, the stream followed.
	if err := caddy.Load(raw, true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = caddy.Stop() })
	if counts.writes.Load() == 0 {
		t.Error("Start did not create the shared token state")
	}
	if !runningLedger(t).loaded.Load() {
		t.Error("Start did not load the embedded ledger")
	}
	waitFor(t, "the invoice stream to start", func() bool { return node.InvoiceSubscribers() == 1 })
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the invoice stream to stop", func() bool { return node.InvoiceSubscribers() == 0 })
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReloadDuringAPayment: a payment page's long poll is held by the old
// config when a reload replaces it, and the payment lands after: the poll
// is still answered paid, and the new config knows the payment without a
// lookup, because the invoice stream goes on across reloads.
func TestReloadDuringAPayment(t *testing.T) {
	node := lndtest.Start(t)
	storage, port := t.TempDir(), freePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	site := func(body string) string {
		return fmt.Sprintf("\troute /paid/* {\n\t\tpaywall 100 {\n\t\t\tservice api\n\t\t}\n\t\trespond %q\n\t}", body)
	}
	loadCaddyfile(t, testCaddyfile("off", storage, lndOption(node), port, site("before")))
	t.Cleanup(func() { _ = caddy.Stop() })
	c, binding := pageChallenge(t, base+"/paid/", nil)

	lookups := node.Calls("LookupInvoice")
	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		resp, body, err := waitRequest(base+"/paid/", "L402 "+c.Body.Token, binding)
		if err != nil {
			answered <- answer{err: err}
			return
		}
		answered <- answer{resp.StatusCode, body, nil}
	}()
	waitFor(t, "the long poll to ask the node", func() bool { return node.Calls("LookupInvoice") > lookups })

	reloadCaddyfile(t, testCaddyfile("off", storage, lndOption(node), port, site("after")), port)
	if _, body := get(t, base+"/paid/", auth(l402Auth(c.Body.Token, [32]byte{}))); body == "before" {
		t.Fatal("the reload did not take effect")
	}
	select {
	case a := <-answered:
		t.Fatalf("the long poll was answered before the payment: %+v", a)
	default:
	}
	settleAndProve(t, node, c) // looks the invoice up itself
	a := <-answered
	if a.err != nil || a.status != http.StatusOK || a.body != `{"paid":true}` {
		t.Fatalf("the poll held across the reload: %+v", a)
	}
	lookups = node.Calls("LookupInvoice")
	if resp, body := get(t, base+"/paid/", auth("L402 "+c.Body.Token)); resp.StatusCode != http.StatusOK || body != "after" {
		t.Errorf("the token alone on the new config: %d %s", resp.StatusCode, body)
	}
	if n := node.Calls("LookupInvoice") - lookups; n != 0 {
		t.Errorf("the new config looked the paid invoice up %d times: it missed the stream's news", n)
	}
}

// sameTickStorage reports one modification time for every key, like a
// storage whose timestamps are coarser than the writes.
type sameTickStorage struct{ *certmagic.FileStorage }

func (s sameTickStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	info, err := s.FileStorage.Stat(ctx, key)
	info.Modified = time.Unix(1_700_000_000, 0)
	return info, err
}

// TestFollowerSeesEveryWrite: two changes to the shared state within one
// timestamp tick both reach the other instance.
func TestFollowerSeesEveryWrite(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	storage := sameTickStorage{&certmagic.FileStorage{Path: t.TempDir()}}
	a := openTestTokenStore(t, storage)
	b := openTestTokenStore(t, storage)
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.follow(ctx, 10*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	for i := range 2 {
		token, id, err := keyring(t, a).Mint([32]byte{byte(i)}, l402.ServicesCaveat(l402.Service{Name: "s"}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.revoke(ctx, token, ""); err != nil {
			t.Fatal(err)
		}
		waitFor(t, fmt.Sprintf("revocation %d to reach the other instance", i+1), func() bool { return b.isRevoked(id) })
	}
}
