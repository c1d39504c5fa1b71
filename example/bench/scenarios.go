package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"

	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
	"github.com/lightningcaddy/caddy-lightning/l402"
)

// maxBody bounds what the benchmark reads of an answer it decodes.
const maxBody = 1 << 20

// bench is the running benchmark: the network, Caddy and what the
// scenarios share.
type bench struct {
	opts    options
	base    string       // http://127.0.0.1:<port>
	client  *http.Client // the load's client: keep-alive, one shared transport
	metrics *scraper
	network *regtest.Network
	alice   *alice
	keys    *l402.Keyring // the paywall's root key
	memo    string        // the memo the paywall writes on its invoices
	log     io.Writer     // progress messages

	// config is Caddy's configuration with a ledger block ("" for the
	// embedded default); the rest is what it is made of, for the
	// instances the redis scenario starts.
	config   func(ledger string) string
	upstream string
	rootKey  []byte
	dir      string

	// prepaid are invoices made on alice and paid by bob before Caddy
	// started, so Caddy learns their settlement only by asking the node.
	prepaid []payment
	// invoices are BOLT 11 strings of invoices the benchmark made on
	// alice; invoiceCount is the highest add index seen, i.e. how many
	// invoices alice has.
	invoices     []invoiceRef
	mu           sync.Mutex // guards invoiceCount
	invoiceCount uint64

	res results
}

// invoiceRef is an invoice on alice: its BOLT 11 string and payment hash.
type invoiceRef struct {
	bolt11 string
	hash   []byte
}

// payment is a paid invoice: its hash and preimage.
type payment struct {
	hash, preimage [32]byte
}

// credential is what a client sends: a token and, unless in token-only
// mode, its preimage.
type credential struct {
	token    string
	preimage string // hex, or empty
}

// authorization is the Authorization header value.
func (c credential) authorization() string {
	if c.preimage == "" {
		return "L402 " + c.token
	}
	return "L402 " + c.token + ":" + c.preimage
}

// progress prints a progress message.
func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.log, "bench: "+format+"\n", args...)
}

// get sends GET path with an optional Authorization header, reads the
// whole answer and checks its status (and, if wantLen >= 0, its length).
func (b *bench) get(ctx context.Context, path, authz string, accept string, want, wantLen int) error {
	return b.getWith(ctx, path, "Authorization", authz, accept, want, wantLen)
}

// getWith is get with the credential in header name.
func (b *bench) getWith(ctx context.Context, path, name, authz string, accept string, want, wantLen int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+path, nil)
	if err != nil {
		return err
	}
	if authz != "" {
		req.Header[name] = []string{authz}
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: read answer: %w", path, err)
	case resp.StatusCode != want:
		return fmt.Errorf("GET %s: HTTP %d, want %d", path, resp.StatusCode, want)
	case wantLen >= 0 && n != int64(wantLen):
		return fmt.Errorf("GET %s: %d bytes, want %d", path, n, wantLen)
	}
	return nil
}

// prepay makes n invoices on alice and has bob pay them, before Caddy
// starts.
func (b *bench) prepay(ctx context.Context, n int) error {
	b.prepaid = make([]payment, n)
	return forEach(ctx, n, 4, func(ctx context.Context, i int) error {
		inv, err := b.alice.addInvoice(ctx, b.memo)
		if err != nil {
			return err
		}
		b.noteInvoice(inv.AddIndex)
		preimage, err := b.network.Bob.PayInvoice(ctx, inv.PaymentRequest)
		if err != nil {
			return err
		}
		if len(preimage) != 32 {
			return fmt.Errorf("bob: %d-byte preimage", len(preimage))
		}
		copy(b.prepaid[i].preimage[:], preimage)
		copy(b.prepaid[i].hash[:], inv.RHash)
		if sha256.Sum256(preimage) != b.prepaid[i].hash {
			return errors.New("bob: the preimage does not match the payment hash")
		}
		return nil
	})
}

// mint makes a token for a payment with the caveats the paywall writes
// (see challenge.go): services=<service>:0, <service>_valid_until and
// <service>_price. Every token has a new random token id.
func (b *bench) mint(p payment, withPreimage bool) (credential, error) {
	token, _, err := b.keys.Mint(p.hash,
		l402.ServicesCaveat(l402.Service{Name: paywallService}),
		l402.ValidUntilCaveat(paywallService, time.Now().Add(time.Hour)),
		l402.PriceCaveat(paywallService, paywallPrice))
	if err != nil {
		return credential{}, fmt.Errorf("mint token: %w", err)
	}
	c := credential{token: token}
	if withPreimage {
		c.preimage = hex.EncodeToString(p.preimage[:])
	}
	return c, nil
}

// headerValues returns the Authorization values of creds.
func headerValues(creds []credential) []string {
	v := make([]string, len(creds))
	for i, c := range creds {
		v[i] = c.authorization()
	}
	return v
}

// challengeAnswer is the part of a 402's JSON body the benchmark uses.
type challengeAnswer struct {
	Token   string `json:"token"`
	Invoice string `json:"invoice"`
}

// buyTokens buys n tokens the way a client does: a 402 from Caddy, bob
// pays its invoice, and the token with the preimage opens /paid/.
func (b *bench) buyTokens(ctx context.Context, n int) ([]credential, error) {
	creds := make([]credential, n)
	err := forEach(ctx, n, 4, func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+"/paid/buy", nil)
		if err != nil {
			return err
		}
		resp, err := b.client.Do(req)
		if err != nil {
			return fmt.Errorf("challenge: %w", err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("challenge: %w", err)
		}
		if resp.StatusCode != http.StatusPaymentRequired {
			return fmt.Errorf("challenge: HTTP %d, want 402: %s", resp.StatusCode, bytes.TrimSpace(body))
		}
		var c challengeAnswer
		if err := json.Unmarshal(body, &c); err != nil {
			return fmt.Errorf("challenge: %w", err)
		}
		preimage, err := b.network.Bob.PayInvoice(ctx, c.Invoice)
		if err != nil {
			return err
		}
		creds[i] = credential{token: c.Token, preimage: hex.EncodeToString(preimage)}
		return b.get(ctx, "/paid/check", creds[i].authorization(), "", http.StatusOK, upstreamBodySize)
	})
	return creds, err
}

// scenario is one kind of request in an interleaved comparison.
type scenario struct {
	name   string
	do     requestFunc
	result *loadResult
	rpc    nodeStats // Caddy's node calls during its rounds
}

// interleave runs rounds of every scenario in turn, rotating which goes
// first, so that machine noise hits them alike. Each round is bounded by
// roundTime and roundRequests. Node calls are attributed to the scenario
// whose round saw them.
func (b *bench) interleave(ctx context.Context, workers, rounds int, roundTime time.Duration, roundRequests int64, scenarios []*scenario) error {
	l := load{workers: workers, maxRequests: roundRequests, maxTime: roundTime}
	for _, s := range scenarios {
		s.result, s.rpc = new(loadResult), nodeStats{calls: rpcCounts{}, seconds: rpcCounts{}}
	}
	for r := range rounds {
		for j := range scenarios {
			s := scenarios[(r+j)%len(scenarios)]
			before, err := b.metrics.nodeCalls(ctx)
			if err != nil {
				return err
			}
			res := l.run(ctx, s.do)
			after, err := b.metrics.nodeCalls(ctx)
			if err != nil {
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			s.result.add(res)
			s.rpc.add(after.sub(before))
		}
		b.progress("  round %d/%d: %s", r+1, rounds, roundSummary(scenarios))
	}
	return nil
}

// roundSummary is the last round's rate of each scenario.
func roundSummary(scenarios []*scenario) string {
	parts := make([]string, len(scenarios))
	for i, s := range scenarios {
		rate := 0.0
		if n := len(s.result.rounds); n > 0 {
			rate = s.result.rounds[n-1]
		}
		parts[i] = fmt.Sprintf("%s %s/s", s.name, formatCount(rate))
	}
	return strings.Join(parts, ", ")
}

// throughput compares /plain/ with /paid/ (token and preimage) and with
// /paid/ in token-only (cookie) mode, and counts the node calls of each.
func (b *bench) throughput(ctx context.Context) error {
	o := b.opts
	b.progress("throughput: buying %d tokens (402, bob pays, 200)", o.tokens)
	withPreimage, err := b.buyTokens(ctx, o.tokens)
	if err != nil {
		return fmt.Errorf("buy tokens: %w", err)
	}
	tokenOnly := make([]credential, len(b.prepaid))
	for i, p := range b.prepaid {
		if tokenOnly[i], err = b.mint(p, false); err != nil {
			return err
		}
	}
	// Header values are made once: the load measures Caddy, not the client.
	paidAuthz, tokenAuthz := headerValues(withPreimage), headerValues(tokenOnly)
	plain := &scenario{name: "plain", do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/plain/item", "", "", http.StatusOK, upstreamBodySize)
	}}
	paid := &scenario{name: "preimage", do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/paid/item", paidAuthz[w%len(paidAuthz)], "", http.StatusOK, upstreamBodySize)
	}}
	token := &scenario{name: "token-only", do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/paid/item", tokenAuthz[w%len(tokenAuthz)], "", http.StatusOK, upstreamBodySize)
	}}
	// The control: /plain/ carrying the same credential bytes in a
	// hop-by-hop header that Caddy reads and drops without forwarding, so
	// it costs what carrying a credential costs, without the paywall.
	control := &scenario{name: "plain+header", do: func(ctx context.Context, w int, _ int64) error {
		return b.getWith(ctx, "/plain/item", "Proxy-Authorization", paidAuthz[w%len(paidAuthz)], "", http.StatusOK, upstreamBodySize)
	}}

	// The first request of each token-only credential: Caddy has not seen
	// these invoices settle, so it may ask the node once per token.
	before, err := b.metrics.nodeCalls(ctx)
	if err != nil {
		return err
	}
	for _, c := range tokenOnly {
		if err := b.get(ctx, "/paid/first", c.authorization(), "", http.StatusOK, upstreamBodySize); err != nil {
			return fmt.Errorf("first token-only request: %w", err)
		}
	}
	after, err := b.metrics.nodeCalls(ctx)
	if err != nil {
		return err
	}
	b.res.tokenFirstRPC = after.sub(before).calls
	b.res.tokenCount = len(tokenOnly)

	b.progress("throughput: warming up, then %d interleaved rounds of up to %s each (plain, preimage, token-only, plain+header)", o.rounds, o.roundTime)
	scenarios := []*scenario{plain, paid, token, control}
	if err := b.interleave(ctx, o.concurrency, 1, o.warmup, 0, scenarios); err != nil {
		return err
	}
	if err := b.interleave(ctx, o.concurrency, o.rounds, o.roundTime, o.roundRequests, scenarios); err != nil {
		return err
	}
	b.res.plain, b.res.preimage, b.res.token, b.res.control = plain.result, paid.result, token.result, control.result
	b.res.preimageRPC, b.res.tokenRPC = paid.rpc.calls, token.rpc.calls
	b.res.ran["throughput"] = true
	return nil
}

// challenges compares 402 challenges through Caddy with AddInvoice calls
// made straight to alice, at the same concurrency.
func (b *bench) challenges(ctx context.Context) error {
	o := b.opts
	challenge := &scenario{name: "402", do: func(ctx context.Context, w int, _ int64) error {
		return b.get(ctx, "/paid/item", "", "application/json", http.StatusPaymentRequired, -1)
	}}
	direct := &scenario{name: "AddInvoice", do: func(ctx context.Context, w int, _ int64) error {
		inv, err := b.alice.addInvoice(ctx, b.memo)
		if err != nil {
			return err
		}
		b.noteInvoice(inv.AddIndex)
		return nil
	}}
	// /once/ sells per request, so its 402 offers L402, the Payment charge
	// and x402, all on one invoice.
	every := &scenario{name: "402 every offer", do: func(ctx context.Context, w int, _ int64) error {
		return b.getWith(ctx, "/once/item", "402 every offer", "", "application/json", http.StatusPaymentRequired, -1)
	}}
	b.progress("challenges: %d interleaved rounds of up to %s or %d requests each (402 via Caddy, 402 with every offer, AddInvoice direct)",
		o.invoiceRounds, o.invoiceRoundTime, o.invoiceRoundRequests)
	scenarios := []*scenario{challenge, every, direct}
	if err := b.interleave(ctx, o.concurrency, 1, o.warmup, o.invoiceRoundRequests/4, scenarios); err != nil {
		return err
	}
	if err := b.interleave(ctx, o.concurrency, o.invoiceRounds, o.invoiceRoundTime, o.invoiceRoundRequests, scenarios); err != nil {
		return err
	}
	b.res.challenge, b.res.addInvoice = challenge.result, direct.result
	b.res.challengeRPC, b.res.challengeAddInvoice = challenge.rpc.calls, challenge.rpc.mean("AddInvoice")
	b.res.challengeEvery, b.res.challengeEveryRPC = every.result, every.rpc.calls
	b.res.ran["challenges"] = true
	return nil
}

// noteInvoice records an add index seen: alice has at least that many
// invoices.
func (b *bench) noteInvoice(addIndex uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.invoiceCount = max(b.invoiceCount, addIndex)
}

// fillInvoices makes invoices on alice, concurrently, until she has at
// least target, and keeps them for checkinvoice.
func (b *bench) fillInvoices(ctx context.Context, target int) error {
	// One invoice first, to learn how many exist (Caddy's 402s made some).
	inv, err := b.alice.addInvoice(ctx, b.memo)
	if err != nil {
		return err
	}
	b.noteInvoice(inv.AddIndex)
	b.invoices = append(b.invoices, invoiceRef{inv.PaymentRequest, inv.RHash})
	need := int64(target) - int64(b.invoiceCount)
	if need <= 0 {
		return nil
	}
	b.progress("invoices: making %d on alice to reach %d", need, target)
	began := time.Now()
	made := make([][]invoiceRef, b.opts.concurrency)
	indexes := make([]uint64, b.opts.concurrency)
	res := load{workers: b.opts.concurrency, maxRequests: need}.run(ctx, func(ctx context.Context, w int, _ int64) error {
		inv, err := b.alice.addInvoice(ctx, b.memo)
		if err != nil {
			return err
		}
		made[w] = append(made[w], invoiceRef{inv.PaymentRequest, inv.RHash})
		indexes[w] = max(indexes[w], inv.AddIndex)
		return nil
	})
	for w := range made {
		b.invoices = append(b.invoices, made[w]...)
		b.noteInvoice(indexes[w])
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if res.failures > 0 {
		return fmt.Errorf("make invoices: %d of %d failed: %w", res.failures, res.requests, res.firstErr)
	}
	b.progress("invoices: alice has %d (%s/s, %s)", b.invoiceCount, formatCount(res.rate()), time.Since(began).Round(100*time.Millisecond))
	return nil
}

// checkInvoices measures POST /v1/lightning/checkinvoice through Caddy on
// random invoices the benchmark made, and the node calls it causes,
// interleaved with the same lookups made straight to alice (LookupInvoice)
// as a control: what the node's lookup costs, and the machine's noise.
func (b *bench) checkInvoices(ctx context.Context) (caddy, direct *loadResult, rpc rpcCounts, err error) {
	if len(b.invoices) == 0 {
		return nil, nil, nil, errors.New("checkinvoice: no invoices to check")
	}
	bodies := make([][]byte, len(b.invoices))
	for i, inv := range b.invoices {
		bodies[i] = []byte(`{"invoice":"` + inv.bolt11 + `"}`)
	}
	check := &scenario{name: "checkinvoice", do: func(ctx context.Context, w int, _ int64) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.base+"/v1/lightning/checkinvoice",
			bytes.NewReader(bodies[rand.IntN(len(bodies))]))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := b.client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		switch {
		case err != nil:
			return fmt.Errorf("checkinvoice: %w", err)
		case resp.StatusCode != http.StatusOK:
			return fmt.Errorf("checkinvoice: HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(body))
		case !bytes.Contains(body, []byte(`"paid"`)):
			return fmt.Errorf("checkinvoice: unexpected answer %s", bytes.TrimSpace(body))
		}
		return nil
	}}
	lookup := &scenario{name: "LookupInvoice", do: func(ctx context.Context, w int, _ int64) error {
		_, err := b.alice.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: b.invoices[rand.IntN(len(b.invoices))].hash})
		if err != nil {
			return fmt.Errorf("alice: lookup invoice: %w", err)
		}
		return nil
	}}
	// A few unmeasured checks first: the first one makes Caddy learn the
	// node's network (GetInfo).
	scenarios := []*scenario{check, lookup}
	if err := b.interleave(ctx, 1, 1, b.opts.checkTime, 10, scenarios); err != nil {
		return nil, nil, nil, err
	}
	const rounds = 5
	perRound := int64(max(b.opts.checks/rounds, 1))
	err = b.interleave(ctx, b.opts.checkConcurrency, rounds, b.opts.checkTime/rounds, perRound, scenarios)
	return check.result, lookup.result, check.rpc.calls, err
}

// checkSmall measures checkinvoice with the small number of invoices.
func (b *bench) checkSmall(ctx context.Context) error {
	if err := b.fillInvoices(ctx, b.opts.smallInvoices); err != nil {
		return err
	}
	b.progress("checkinvoice: %d checks with %d invoices on alice", b.opts.checks, b.invoiceCount)
	res, direct, rpc, err := b.checkInvoices(ctx)
	if err != nil {
		return err
	}
	b.res.checkSmall, b.res.lookupSmall, b.res.checkSmallRPC, b.res.checkSmallN = res, direct, rpc, b.invoiceCount
	return nil
}

// checkLarge measures checkinvoice with the large number of invoices.
func (b *bench) checkLarge(ctx context.Context) error {
	if err := b.fillInvoices(ctx, b.opts.largeInvoices); err != nil {
		return err
	}
	b.progress("checkinvoice: %d checks with %d invoices on alice", b.opts.checks, b.invoiceCount)
	res, direct, rpc, err := b.checkInvoices(ctx)
	if err != nil {
		return err
	}
	b.res.checkLarge, b.res.lookupLarge, b.res.checkLargeRPC, b.res.checkLargeN = res, direct, rpc, b.invoiceCount
	b.res.ran["checkinvoice"] = b.res.checkSmall != nil
	return nil
}

// heapInuse returns the process's HeapInuse after full collections. Caddy
// runs in this process, so this is Caddy's heap plus the benchmark's small,
// constant share.
func heapInuse() uint64 {
	runtime.GC()
	runtime.GC() // the second also frees what sync.Pools held
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// memory measures the heap after memSmall and after memLarge paid requests,
// each with a distinct token: all minted for one paid invoice with the
// paywall's root key, each with its own token id.
func (b *bench) memory(ctx context.Context) error {
	o := b.opts
	if len(b.prepaid) == 0 {
		return errors.New("memory: no paid invoice")
	}
	p := b.prepaid[0]
	do := func(ctx context.Context, w int, _ int64) error {
		c, err := b.mint(p, true)
		if err != nil {
			return err
		}
		return b.get(ctx, "/paid/item", c.authorization(), "", http.StatusOK, upstreamBodySize)
	}
	b.invoices = nil // the benchmark's own data out of the heap
	before, err := b.metrics.nodeCalls(ctx)
	if err != nil {
		return err
	}
	b.res.heapBase = heapInuse()
	began := time.Now()
	deadline := began.Add(o.memTime)
	small := load{workers: o.concurrency, maxRequests: o.memSmall, maxTime: o.memTime}.run(ctx, do)
	if err := ctx.Err(); err != nil {
		return err
	}
	b.res.heapSmall = heapInuse()
	if small.failures > 0 {
		return fmt.Errorf("memory: %d of %d paid requests failed: %w", small.failures, small.requests, small.firstErr)
	}
	if small.requests >= o.memLarge {
		return fmt.Errorf("memory: --mem-large (%d) must exceed the %d requests already sent", o.memLarge, small.requests)
	}
	b.progress("memory: HeapInuse %s after %d distinct tokens; sending %d more", formatBytes(b.res.heapSmall), small.requests, o.memLarge-small.requests)
	large := load{workers: o.concurrency, maxRequests: o.memLarge - small.requests, maxTime: max(time.Until(deadline), time.Second)}.run(ctx, do)
	if err := ctx.Err(); err != nil {
		return err
	}
	b.res.heapLarge = heapInuse()
	after, err := b.metrics.nodeCalls(ctx)
	if err != nil {
		return err
	}
	large.add(small)
	b.res.memSmall, b.res.memLarge = small, large
	b.res.memRPC = after.sub(before).calls
	b.res.ran["memory"] = true
	b.progress("memory: HeapInuse %s after %d distinct tokens (%s)", formatBytes(b.res.heapLarge), large.requests, time.Since(began).Round(100*time.Millisecond))
	return nil
}

// forEach runs fn for 0..n-1 with at most workers at a time and returns
// the first error.
func forEach(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		sem   = make(chan struct{}, workers)
	)
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := fn(ctx, i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
