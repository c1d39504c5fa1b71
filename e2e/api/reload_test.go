package api_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/lightningpb"
)

// TestReloadUnderLoad reloads Caddy three times, with a changed Caddyfile,
// while four clients (REST over HTTP/1.1, REST over h2c, two gRPC) send 200
// calls: none may fail, the new config must take effect, and the node
// connection must be the one from before the reloads.
func TestReloadUnderLoad(t *testing.T) {
	a := startAPI(t)
	t.Cleanup(func() {
		if err := caddyrun.Load(a.caddyfile(baseOptions)); err != nil {
			t.Errorf("restore the base config: %v", err)
		}
		// The replaced server closes its idle keep-alive connections;
		// don't let the next test's POST race with that.
		httpClient.CloseIdleConnections()
	})
	ctx := testContext(t)

	// An invoice from before the reloads, and Caddy's connection to alice.
	old := post(t, a.rest("generateinvoice"), map[string]any{"amount": 5, "memo": "before reloads"}).field(t, "invoice")
	connsBefore := stableNodeConnections(t, network.Alice.GRPCAddr)
	t.Logf("connections of this process to alice before the reloads: %d", len(connsBefore))

	// An HTTP/1.1 client reusing a keep-alive connection can race with the
	// replaced server closing it as idle; Go's client resends such a
	// request (which the server never read) only when it is marked
	// idempotent, as clients that retry do.
	h1 := &http.Client{Timeout: 30 * time.Second, Transport: idempotencyKeys{&http.Transport{}}}
	h2c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Protocols: unencryptedHTTP2()}}
	defer h1.CloseIdleConnections()
	defer h2c.CloseIdleConnections()
	restClients := []*http.Client{h1, h2c}
	rpc := []lightningpb.LightningClient{grpcClient(t, a.grpcAddr), grpcClient(t, a.grpcAddr)}

	clientKinds := []string{"REST over HTTP/1.1", "REST over h2c", "gRPC client 1 (h2c)", "gRPC client 2 (h2c)"}
	const workers, perWorker = 4, 50
	const total = workers * perWorker
	var (
		done     atomic.Int64
		mu       sync.Mutex
		failures []string
		slowest  [workers]time.Duration
	)
	fail := func(worker, i int, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		failures = append(failures, fmt.Sprintf("worker %d call %d (after %d calls in all): %s", worker, i, done.Load(), fmt.Sprintf(format, args...)))
	}
	// call makes the i-th call of worker w: generateinvoice, then
	// checkinvoice of the invoice from before the reloads, alternately.
	call := func(w, i int) {
		body := map[string]any{"amount": 1 + i, "memo": fmt.Sprintf("reload worker %d call %d", w, i)}
		method := "generateinvoice"
		if i%2 == 1 {
			body, method = map[string]any{"invoice": old}, "checkinvoice"
		}
		began := time.Now()
		defer func() {
			if d := time.Since(began); d > slowest[w] {
				slowest[w] = d
			}
		}()
		switch w {
		case 0, 1:
			resp, err := postJSON(restClients[w], a.rest(method), body)
			if err != nil {
				fail(w, i, "%s: %v", method, err)
			} else if resp.Status != http.StatusOK || (method == "checkinvoice" && resp.Raw != `{"paid":false}`) {
				fail(w, i, "%s: %d %s", method, resp.Status, resp.Raw)
			}
		default:
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			defer cancel()
			var err error
			if method == "generateinvoice" {
				var gen *lightningpb.GenerateInvoiceResponse
				gen, err = rpc[w-2].GenerateInvoice(cctx, &lightningpb.GenerateInvoiceRequest{Amount: int64(1 + i), Memo: "reload"})
				if err == nil && gen.Invoice == "" {
					err = fmt.Errorf("no invoice")
				}
			} else {
				var check *lightningpb.CheckInvoiceResponse
				check, err = rpc[w-2].CheckInvoice(cctx, &lightningpb.CheckInvoiceRequest{Invoice: old})
				if err == nil && check.Paid {
					err = fmt.Errorf("paid: true")
				}
			}
			if err != nil {
				fail(w, i, "gRPC %s: %v", method, err)
			}
		}
	}

	variants := []siteOptions{
		{invoiceExpiry: 2 * time.Hour, marker: "reload-1"},
		{invoiceExpiry: 3 * time.Hour, marker: "reload-2"},
		{invoiceExpiry: 4 * time.Hour, marker: "reload-3"},
	}
	type reload struct {
		doneBefore, doneAfter int64
		took                  time.Duration
		err                   error
	}
	reloads := make([]reload, len(variants))

	began := time.Now()
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				call(w, i)
				done.Add(1)
			}
		})
	}
	wg.Go(func() {
		// Reload after a quarter, a half and three quarters of the calls.
		deadline := time.Now().Add(time.Minute)
		for r, v := range variants {
			for done.Load() < int64(r+1)*total/int64(len(variants)+1) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			start := time.Now()
			reloads[r].doneBefore = done.Load()
			reloads[r].err = caddyrun.Load(a.caddyfile(v))
			reloads[r].took = time.Since(start)
			reloads[r].doneAfter = done.Load()
		}
	})
	wg.Wait()
	t.Logf("%d calls by %d clients during %d reloads in %v; slowest call per client: %v",
		total, workers, len(variants), time.Since(began).Round(time.Millisecond), slowest)

	for r, rl := range reloads {
		t.Logf("reload %d: %v, with %d of %d calls done before and %d after", r+1, rl.took.Round(time.Millisecond), rl.doneBefore, total, rl.doneAfter)
		if rl.err != nil {
			t.Errorf("reload %d: %v", r+1, rl.err)
		}
		if rl.doneBefore >= total {
			t.Errorf("reload %d started after all calls were done: no call was in flight", r+1)
		}
	}
	// Failures per client, so that a broken protocol shows as such.
	for w, kind := range clientKinds {
		prefix := fmt.Sprintf("worker %d ", w)
		var mine []string
		for _, f := range failures {
			if strings.HasPrefix(f, prefix) {
				mine = append(mine, f)
			}
		}
		if len(mine) > 0 {
			t.Errorf("%s: %d of %d calls failed during the reloads, want 0:\n%s", kind, len(mine), perWorker, strings.Join(mine, "\n"))
		} else {
			t.Logf("%s: %d calls, none failed", kind, perWorker)
		}
	}

	// The last config serves: its marker and its invoice_expiry.
	if got := get(t, a.base+"/marker"); got != "reload-3" {
		t.Errorf("GET /marker = %q after the reloads, want reload-3", got)
	}
	inv := decodeRegtest(t, post(t, a.rest("generateinvoice"), map[string]any{"amount": 7}).field(t, "invoice"))
	if inv.Expiry() != 4*time.Hour {
		t.Errorf("invoice expiry %v after the reloads, want the new config's 4h", inv.Expiry())
	}
	// Alice still answers, through the same connection as before.
	if resp := post(t, a.rest("checkinvoice"), map[string]any{"invoice": old}); resp.Raw != `{"paid":false}` {
		t.Errorf("checkinvoice after the reloads: %d %s", resp.Status, resp.Raw)
	}
	connsAfter := nodeConnections(t, network.Alice.GRPCAddr)
	if !sameSet(connsBefore, connsAfter) {
		t.Errorf("connections to alice changed across reloads: before %v, after %v; want the node connection shared", keys(connsBefore), keys(connsAfter))
	}
}

// idempotencyKeys gives each request an Idempotency-Key header, which lets
// Go's transport resend a request that a closing keep-alive connection
// lost before the server read it.
type idempotencyKeys struct{ *http.Transport }

func (t idempotencyKeys) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Idempotency-Key", strconv.FormatInt(time.Now().UnixNano(), 36))
	return t.Transport.RoundTrip(r)
}

// unencryptedHTTP2 selects HTTP/2 with prior knowledge over cleartext (h2c).
func unencryptedHTTP2() *http.Protocols {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return p
}

// get returns the body of a GET of url.
func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := httpClient.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// nodeConnections returns the socket inodes of this process's established
// TCP connections to addr (host:port), from /proc.
func nodeConnections(t *testing.T, addr string) map[uint64]bool {
	t.Helper()
	_, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		t.Fatal(err)
	}
	own := map[uint64]bool{}
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err != nil || !strings.HasPrefix(target, "socket:[") {
			continue
		}
		if inode, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]"), 10, 64); err == nil {
			own[inode] = true
		}
	}
	conns := map[uint64]bool{}
	wantRemote := fmt.Sprintf(":%04X", port)
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		f, err := os.Open(table)
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			// sl local_address rem_address st ... uid timeout inode
			if len(fields) < 10 || fields[3] != "01" || !strings.HasSuffix(fields[2], wantRemote) {
				continue
			}
			if inode, err := strconv.ParseUint(fields[9], 10, 64); err == nil && own[inode] {
				conns[inode] = true
			}
		}
		f.Close()
	}
	return conns
}

// stableNodeConnections is nodeConnections once it has not changed for
// 200 ms (at most 3 s), so that connections other tests are closing are
// gone.
func stableNodeConnections(t *testing.T, addr string) map[uint64]bool {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	last := nodeConnections(t, addr)
	for time.Now().Before(deadline) {
		time.Sleep(200 * time.Millisecond)
		now := nodeConnections(t, addr)
		if sameSet(now, last) {
			break
		}
		last = now
	}
	if len(last) == 0 {
		t.Fatalf("this process has no connection to alice at %s", addr)
	}
	return last
}

func sameSet(a, b map[uint64]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func keys(m map[uint64]bool) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestReloadDuringPayments reloads Caddy while a keysend over REST and one
// over gRPC are on their way: both callers must get their preimage, since
// the money moves either way (a caller told "failed" may pay again).
func TestReloadDuringPayments(t *testing.T) {
	a := startAPI(t)
	t.Cleanup(func() {
		if err := caddyrun.Load(a.caddyfile(baseOptions)); err != nil {
			t.Errorf("restore the base config: %v", err)
		}
		httpClient.CloseIdleConnections()
	})
	ctx := testContext(t)
	began := time.Now().Truncate(time.Second)
	bob := nodeClient(t, network.Bob)
	client := grpcClient(t, a.grpcAddr)
	// Connect the gRPC client and Caddy's node connection first.
	if _, err := client.GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: 1}); err != nil {
		t.Fatal(err)
	}
	const restAmount, grpcAmount = 4321, 4322

	var wg sync.WaitGroup
	var restResp apiResponse
	var restErr, grpcErr error
	var grpcResp *lightningpb.KeysendResponse
	var grpcTook time.Duration
	wg.Go(func() {
		restResp, restErr = postJSON(httpClient, a.rest("keysend"), map[string]any{"pubkey": network.Bob.Pubkey, "amount": restAmount})
	})
	wg.Go(func() {
		start := time.Now()
		grpcResp, grpcErr = client.Keysend(ctx, &lightningpb.KeysendRequest{Pubkey: network.Bob.Pubkey, Amount: grpcAmount})
		grpcTook = time.Since(start)
	})
	time.Sleep(40 * time.Millisecond) // a keysend takes over 100 ms
	reloadBegan := time.Now()
	if err := caddyrun.Load(a.caddyfile(siteOptions{invoiceExpiry: 2 * time.Hour, marker: "payments"})); err != nil {
		t.Fatalf("reload: %v", err)
	}
	t.Logf("reload during the keysends: %v", time.Since(reloadBegan).Round(time.Millisecond))
	wg.Wait()

	// settledTo checks that bob got amount by the keysend with preimage.
	settledTo := func(what string, amount int64, preimageHex string) {
		t.Helper()
		raw, err := hex.DecodeString(preimageHex)
		if err != nil || len(raw) != 32 {
			t.Errorf("%s keysend: preimage %q is not 32 bytes of hex", what, preimageHex)
			return
		}
		if inv := bobKeysendInvoice(t, bob, sha256Sum(raw)); inv.State != lnrpc.Invoice_SETTLED || inv.Value != amount {
			t.Errorf("%s keysend: bob's invoice %s for %d sat, want SETTLED for %d", what, inv.State, inv.Value, amount)
		}
	}
	// failed reports a caller told "failed", and whether the money moved.
	failed := func(what string, amount int64, err error) {
		t.Helper()
		t.Errorf("%s keysend of %d sat in flight during a reload failed: %v", what, amount, err)
		if paid := bobKeysendsOf(t, bob, amount, began); paid > 0 {
			t.Errorf("... yet bob received %d settled keysend(s) of %d sat: the caller was told the payment failed after it succeeded", paid, amount)
		}
	}

	switch {
	case restErr != nil:
		failed("REST", restAmount, restErr)
	case restResp.Status != http.StatusOK:
		failed("REST", restAmount, fmt.Errorf("%d %s", restResp.Status, restResp.Raw))
	default:
		t.Logf("REST keysend during the reload: 200 in %v", restResp.Latency.Round(time.Millisecond))
		p, _ := restResp.Body["preimage"].(string)
		settledTo("REST", restAmount, p)
	}
	if grpcErr != nil {
		failed("gRPC", grpcAmount, grpcErr)
	} else {
		t.Logf("gRPC keysend during the reload: OK in %v", grpcTook.Round(time.Millisecond))
		settledTo("gRPC", grpcAmount, grpcResp.Preimage)
	}
}

// bobKeysendsOf counts bob's settled keysend invoices of amount sat created
// since then (among his latest 100), waiting 2 s for in-flight ones to
// settle.
func bobKeysendsOf(t *testing.T, bob lnrpc.LightningClient, amount int64, since time.Time) int {
	t.Helper()
	time.Sleep(2 * time.Second)
	resp, err := bob.ListInvoices(testContext(t), &lnrpc.ListInvoiceRequest{Reversed: true, NumMaxInvoices: 100})
	if err != nil {
		t.Fatalf("bob: list invoices: %v", err)
	}
	n := 0
	for _, inv := range resp.Invoices {
		if inv.IsKeysend && inv.Value == amount && inv.State == lnrpc.Invoice_SETTLED && inv.CreationDate >= since.Unix() {
			n++
		}
	}
	return n
}
