package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"

	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// Timeouts of the walk-through.
const (
	dialTimeout = 30 * time.Second
	stepTimeout = 2 * time.Minute // a payment may search for a route for 60s
	settleWait  = 10 * time.Second
)

// step is one stage of the walk-through.
type step struct {
	id, title string
	about     string // what happens, shown before the step runs
	needs     string // id of a step that must have passed first
	run       func(ctx context.Context) (summary string, err error)
}

// walkthrough holds the connections and what the steps learn from each
// other.
type walkthrough struct {
	p       *printer
	network *regtest.Network
	base    string // Caddy's URL
	client  *http.Client

	aliceConn, bobConn *grpc.ClientConn
	alice, bob         lnrpc.LightningClient // direct to the nodes, for checks

	challenge  challengeBody // from step a
	preimage   string        // the paywall invoice's, hex, from step b
	paidAccess bool          // step c passed
	apiInvoice string        // alice's invoice paid in step d
}

// challengeBody is the JSON body of the paywall's 402.
type challengeBody struct {
	Message     string `json:"message"`
	Invoice     string `json:"invoice"`
	Token       string `json:"token"`
	PaymentHash string `json:"payment_hash"`
	PriceSat    int64  `json:"price_sat"`
	ExpiresAt   string `json:"expires_at"`
}

// newWalkthrough connects to both nodes directly, for the checks the demo
// makes beside Caddy.
func newWalkthrough(ctx context.Context, p *printer, n *regtest.Network, base string) (*walkthrough, error) {
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	w := &walkthrough{p: p, network: n, base: base, client: &http.Client{Timeout: stepTimeout}}
	var err error
	if w.aliceConn, err = n.Alice.Dial(ctx); err != nil {
		return nil, err
	}
	if w.bobConn, err = n.Bob.Dial(ctx); err != nil {
		w.aliceConn.Close()
		return nil, err
	}
	w.alice, w.bob = lnrpc.NewLightningClient(w.aliceConn), lnrpc.NewLightningClient(w.bobConn)
	return w, nil
}

func (w *walkthrough) close() {
	w.aliceConn.Close()
	w.bobConn.Close()
	w.client.CloseIdleConnections()
}

// steps lists the walk-through in order.
func (w *walkthrough) steps() []*step {
	return []*step{
		{id: "a", title: "Ask for premium content without paying", run: w.askUnpaid,
			about: "GET /premium/article has no credentials: the paywall answers 402 Payment Required\n" +
				"with an L402 challenge, a token and an invoice for 100 sat from alice's node."},
		{id: "b", title: "Bob pays the invoice with his own node", needs: "a", run: w.payChallenge,
			about: "Paying reveals the preimage, the proof of payment: only the payer learns it,\n" +
				"and its SHA-256 is the payment hash that the invoice and the token carry."},
		{id: "c", title: "Ask again with the token and the preimage", needs: "b", run: w.askPaid,
			about: "Authorization: L402 <token>:<preimage>. The paywall checks the token's signature\n" +
				"and sha256(preimage) in memory, without asking the node, then proxies upstream."},
		{id: "d", title: "The API: alice makes an invoice, bob pays it, the API sees it", run: w.invoiceRoundTrip,
			about: "POST /v1/lightning/generateinvoice asks alice's node for an invoice;\n" +
				"checkinvoice reports it unpaid, then paid once bob has paid it."},
		{id: "e", title: "The API pays bob's invoice (payinvoice), twice", run: w.payBob,
			about: "Bob's node makes an invoice; alice pays it through POST /v1/lightning/payinvoice.\n" +
				"Paying it again returns the same preimage and moves no money."},
		{id: "f", title: "The API pushes sats to bob without an invoice (keysend)", run: w.keysend,
			about: "POST /v1/lightning/keysend sends 21 sat to bob's public key; alice picks the\n" +
				"preimage, bob's node reveals it back on receipt."},
		{id: "g", title: "The same API over gRPC", needs: "d", run: w.grpcCheck,
			about: "lightning.Lightning/CheckInvoice with the generated client in lightningpb,\n" +
				"over HTTP/2 without TLS (h2c), to the same Caddy port."},
		{id: "h", title: "One 402, every dialect: L402, Payment charge and x402", run: w.dialects,
			about: "GET /api/quote sells one request for 10 sat. Its 402 offers L402, the Payment scheme's\n" +
				"charge and x402 on one invoice; bob pays a new one for each dialect, and a payment\n" +
				"presented again, in any dialect, gets 402."},
		{id: "i", title: "What the operator sees: the metrics", run: w.metrics,
			about: "GET /metrics is Caddy's Prometheus exposition; the lightning app adds what it\n" +
				"sold, what it paid and how the node answered."},
	}
}

// run runs every step, skipping those whose prerequisite failed, and
// reports whether all passed.
func (w *walkthrough) run(ctx context.Context) bool {
	w.p.title("Walk-through: real Lightning payments through Caddy")
	began := time.Now()
	passed := map[string]bool{}
	failed := 0
	steps := w.steps()
	for _, s := range steps {
		switch {
		case ctx.Err() != nil:
			w.p.stepSkipped(s, "interrupted")
			failed++
			continue
		case s.needs != "" && !passed[s.needs]:
			w.p.stepSkipped(s, "step "+s.needs+" did not pass")
			failed++
			continue
		}
		w.p.stepStart(s)
		stepCtx, cancel := context.WithTimeout(ctx, stepTimeout)
		t := time.Now()
		summary, err := s.run(stepCtx)
		cancel()
		w.p.stepEnd(s, summary, err, time.Since(t))
		if err != nil {
			failed++
			continue
		}
		passed[s.id] = true
	}
	took := w.p.duration(time.Since(began))
	if failed > 0 {
		w.p.line("\n%s %d of %d steps failed or were skipped (%s).", w.p.paint(red, "✗"), failed, len(steps), took)
		return false
	}
	w.p.line("\n%s All %d steps passed in %s.", w.p.paint(green, "✓"), len(steps), took)
	return true
}

// paywallCredentials returns the token and preimage that opened the
// paywall (ok if step c passed).
func (w *walkthrough) paywallCredentials() credentials {
	return credentials{token: w.challenge.Token, preimage: w.preimage, ok: w.paidAccess}
}

// checkPreimage checks that sha256(preimage) is hash (both hex) and notes
// the comparison.
func (w *walkthrough) checkPreimage(preimageHex, hashHex, what string) error {
	preimage, err := hex.DecodeString(preimageHex)
	if err != nil || len(preimage) != 32 {
		return fmt.Errorf("preimage %q is not 32 bytes of hex", preimageHex)
	}
	sum := sha256.Sum256(preimage)
	got := hex.EncodeToString(sum[:])
	w.p.note("sha256(preimage) = %s", got)
	w.p.note("%-16s = %s", what, hashHex)
	if got != hashHex {
		return errors.New("sha256(preimage) differs from " + what)
	}
	w.p.note("they match: the preimage proves the payment")
	return nil
}

// eventually calls check until it reports done, for at most timeout.
func eventually(ctx context.Context, timeout time.Duration, check func(context.Context) (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		done, err := check(ctx)
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}
