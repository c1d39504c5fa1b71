package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/lightningcaddy/caddy-lightning/lightningpb"
)

// Amounts of the walk-through, in satoshis (the Caddyfile's max_payment is
// 10000).
const (
	coffeeSat  = 1000
	bobSat     = 500
	keysendSat = 21
)

// Requests of the Lightning API, fields in the documented order.
type (
	generateRequest struct {
		Amount int64  `json:"amount"`
		Memo   string `json:"memo"`
	}
	invoiceRequest struct {
		Invoice string `json:"invoice"`
	}
	keysendRequest struct {
		Pubkey string `json:"pubkey"`
		Amount int64  `json:"amount"`
	}
	preimageResponse struct {
		Preimage string `json:"preimage"`
	}
)

// askUnpaid is step a: a request without credentials gets the challenge.
func (w *walkthrough) askUnpaid(ctx context.Context) (string, error) {
	ex, err := w.call(ctx, http.MethodGet, "/premium/article", nil, nil)
	if err != nil {
		return "", err
	}
	if ex.status != http.StatusPaymentRequired {
		return "", fmt.Errorf("want 402 Payment Required, got %d", ex.status)
	}
	c := &w.challenge
	if err := json.Unmarshal(ex.body, c); err != nil {
		return "", fmt.Errorf("decode the challenge: %w", err)
	}
	if c.Token == "" || c.Invoice == "" || c.PaymentHash == "" {
		return "", errors.New("the challenge lacks a token, an invoice or a payment hash")
	}
	found := false
	for _, v := range ex.header.Values("WWW-Authenticate") {
		if strings.HasPrefix(v, "L402 ") && strings.Contains(v, `token="`+c.Token+`"`) &&
			strings.Contains(v, `invoice="`+c.Invoice+`"`) {
			found = true
		}
	}
	if !found {
		return "", errors.New("no WWW-Authenticate: L402 header with the body's token and invoice")
	}
	return fmt.Sprintf("402 with an L402 challenge: a token and an invoice for %d sat", c.PriceSat), nil
}

// payChallenge is step b: bob pays the paywall's invoice.
func (w *walkthrough) payChallenge(ctx context.Context) (string, error) {
	w.p.note("bob's lnd pays %s", short(w.challenge.Invoice))
	began := time.Now()
	preimage, err := w.network.Bob.PayInvoice(ctx, w.challenge.Invoice)
	if err != nil {
		return "", err
	}
	w.preimage = hex.EncodeToString(preimage)
	w.p.note("paid in %s: preimage = %s", w.p.duration(time.Since(began)), w.preimage)
	if err := w.checkPreimage(w.preimage, w.challenge.PaymentHash, "payment_hash"); err != nil {
		return "", err
	}
	return fmt.Sprintf("bob paid %d sat and holds the preimage", w.challenge.PriceSat), nil
}

// askPaid is step c: the token and preimage open the route.
func (w *walkthrough) askPaid(ctx context.Context) (string, error) {
	header := http.Header{"Authorization": {"L402 " + w.challenge.Token + ":" + w.preimage}}
	ex, err := w.call(ctx, http.MethodGet, "/premium/article", header, nil)
	if err != nil {
		return "", err
	}
	if ex.status != http.StatusOK {
		return "", fmt.Errorf("want 200 OK, got %d", ex.status)
	}
	if !strings.Contains(string(ex.body), "Premium article") {
		return "", fmt.Errorf("the body is not the upstream's article: %q", ex.body)
	}
	w.paidAccess = true
	return "200 OK with the upstream's premium content", nil
}

// invoiceRoundTrip is step d: generateinvoice, checkinvoice false, bob
// pays, checkinvoice true.
func (w *walkthrough) invoiceRoundTrip(ctx context.Context) (string, error) {
	var gen invoiceRequest
	if err := w.api(ctx, "generateinvoice", generateRequest{Amount: coffeeSat, Memo: "demo: a coffee"}, &gen); err != nil {
		return "", err
	}
	ex, paid, err := w.checkInvoice(ctx, gen.Invoice)
	if ex != nil {
		w.show(ex)
	}
	if err != nil {
		return "", err
	}
	if paid {
		return "", errors.New("checkinvoice: paid before anyone paid")
	}

	w.p.note("bob's lnd pays %s", short(gen.Invoice))
	if _, err := w.network.Bob.PayInvoice(ctx, gen.Invoice); err != nil {
		return "", err
	}
	// Alice settles before bob learns the preimage, so one call should
	// do; a few are allowed anyway, and only the last is shown.
	tries := 0
	err = eventually(ctx, settleWait, func(ctx context.Context) (bool, error) {
		tries++
		ex, paid, err = w.checkInvoice(ctx, gen.Invoice)
		return paid, err
	})
	if ex != nil {
		w.show(ex)
	}
	if err != nil {
		return "", fmt.Errorf("checkinvoice after the payment (%d calls): %w", tries, err)
	}
	w.apiInvoice = gen.Invoice
	return `checkinvoice said "paid": false, then true once bob paid`, nil
}

// checkInvoice calls checkinvoice without printing the exchange.
func (w *walkthrough) checkInvoice(ctx context.Context, invoice string) (*exchange, bool, error) {
	path, header, body, err := apiRequest("checkinvoice", invoiceRequest{Invoice: invoice})
	if err != nil {
		return nil, false, err
	}
	ex, err := w.send(ctx, http.MethodPost, path, header, body)
	if err != nil {
		return nil, false, err
	}
	var out struct {
		Paid bool `json:"paid"`
	}
	err = decodeAPI("checkinvoice", ex, &out)
	return ex, out.Paid, err
}

// payBob is step e: payinvoice pays bob's invoice, and paying it again
// returns the same preimage without a second payment.
func (w *walkthrough) payBob(ctx context.Context) (string, error) {
	inv, err := w.bob.AddInvoice(ctx, &lnrpc.Invoice{Value: bobSat, Memo: "demo: bob's invoice"})
	if err != nil {
		return "", fmt.Errorf("bob: add invoice: %w", err)
	}
	hash := hex.EncodeToString(inv.RHash)
	w.p.note("bob's lnd: AddInvoice(%d sat) = %s", bobSat, short(inv.PaymentRequest))

	var first, second preimageResponse
	if err := w.api(ctx, "payinvoice", invoiceRequest{Invoice: inv.PaymentRequest}, &first); err != nil {
		return "", err
	}
	if err := w.checkPreimage(first.Preimage, hash, "payment_hash"); err != nil {
		return "", err
	}
	w.p.note("once more, the same invoice:")
	if err := w.api(ctx, "payinvoice", invoiceRequest{Invoice: inv.PaymentRequest}, &second); err != nil {
		return "", err
	}
	if second.Preimage != first.Preimage {
		return "", fmt.Errorf("the second payinvoice returned preimage %s, the first %s", second.Preimage, first.Preimage)
	}

	payments, err := w.alicePayments(ctx, hash)
	if err != nil {
		return "", err
	}
	received, err := w.bob.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: inv.RHash})
	if err != nil {
		return "", fmt.Errorf("bob: look up invoice: %w", err)
	}
	w.p.note("same preimage; alice's node made %d payment for this hash and bob received %d sat", payments, received.AmtPaidSat)
	if payments != 1 || received.AmtPaidSat != bobSat {
		return "", errors.New("the second payinvoice paid again")
	}
	return fmt.Sprintf("alice paid bob %d sat once; paying again returned the same preimage", bobSat), nil
}

// alicePayments counts alice's payments (of any status) for a payment hash.
func (w *walkthrough) alicePayments(ctx context.Context, hash string) (int, error) {
	resp, err := w.alice.ListPayments(ctx, &lnrpc.ListPaymentsRequest{IncludeIncomplete: true, MaxPayments: 10000})
	if err != nil {
		return 0, fmt.Errorf("alice: list payments: %w", err)
	}
	n := 0
	for _, p := range resp.Payments {
		if p.PaymentHash == hash {
			n++
		}
	}
	return n, nil
}

// keysend is step f: a push payment to bob's public key.
func (w *walkthrough) keysend(ctx context.Context) (string, error) {
	var out preimageResponse
	if err := w.api(ctx, "keysend", keysendRequest{Pubkey: w.network.Bob.Pubkey, Amount: keysendSat}, &out); err != nil {
		return "", err
	}
	preimage, err := hex.DecodeString(out.Preimage)
	if err != nil || len(preimage) != 32 {
		return "", fmt.Errorf("keysend: preimage %q is not 32 bytes of hex", out.Preimage)
	}
	hash := sha256.Sum256(preimage)
	var inv *lnrpc.Invoice
	var lastErr error
	err = eventually(ctx, settleWait, func(ctx context.Context) (bool, error) {
		inv, lastErr = w.bob.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: hash[:]})
		return lastErr == nil && inv.State == lnrpc.Invoice_SETTLED, nil
	})
	if err != nil {
		return "", fmt.Errorf("bob: no settled payment for sha256(preimage) %x: %w (last error: %v)", hash, err, lastErr)
	}
	w.p.note("bob's lnd: a settled keysend payment of %d sat under sha256(preimage) = %s", inv.AmtPaidSat, short(hex.EncodeToString(hash[:])))
	if !inv.IsKeysend || inv.AmtPaidSat != keysendSat {
		return "", fmt.Errorf("bob's payment: keysend %t, %d sat; want a keysend of %d sat", inv.IsKeysend, inv.AmtPaidSat, keysendSat)
	}
	return fmt.Sprintf("alice pushed %d sat to bob; his node received them under sha256(preimage)", keysendSat), nil
}

// grpcCheck is step g: CheckInvoice over gRPC (h2c) on Caddy's port.
func (w *walkthrough) grpcCheck(ctx context.Context) (string, error) {
	target := strings.TrimPrefix(w.base, "http://")
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", fmt.Errorf("gRPC client for %s: %w", target, err)
	}
	defer conn.Close()
	req := &lightningpb.CheckInvoiceRequest{Invoice: w.apiInvoice}
	reqJSON, err := protojson.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	w.p.grpcCall(target, lightningpb.Lightning_CheckInvoice_FullMethodName, reqJSON)
	began := time.Now()
	resp, err := lightningpb.NewLightningClient(conn).CheckInvoice(ctx, req)
	if err != nil {
		return "", fmt.Errorf("CheckInvoice: %w", err)
	}
	respJSON, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
	if err != nil {
		return "", fmt.Errorf("encode response: %w", err)
	}
	w.p.grpcReply("OK", respJSON, time.Since(began))
	if !resp.Paid {
		return "", errors.New("CheckInvoice: paid is false for the invoice bob paid in step d")
	}
	return "CheckInvoice over gRPC: paid = true", nil
}

// metrics is step i: the lightning metrics after the walk-through.
func (w *walkthrough) metrics(ctx context.Context) (string, error) {
	ex, err := w.send(ctx, http.MethodGet, "/metrics", nil, nil)
	if err != nil {
		return "", err
	}
	if ex.status != http.StatusOK {
		return "", fmt.Errorf("GET /metrics: %d", ex.status)
	}
	w.p.request(ex.method, ex.url, nil, nil)
	var lines []string
	for _, line := range strings.Split(string(ex.body), "\n") {
		if strings.HasPrefix(line, "caddy_lightning_") && !strings.Contains(line, "_bucket{") {
			lines = append(lines, line)
		}
	}
	w.p.note("%d ms, %d lightning samples (histogram buckets left out):", ex.took.Milliseconds(), len(lines))
	for _, line := range lines {
		w.p.note("%s", line)
	}
	for _, want := range []string{
		`caddy_lightning_invoices_issued_total{service="premium"}`,
		`caddy_lightning_paywall_verifications_total{result="preimage",service="premium"}`,
		`caddy_lightning_payments_total{kind="invoice",result="succeeded"}`,
		`caddy_lightning_paywall_dialect_total{dialect="charge",result="admitted",service="api"}`,
	} {
		if !strings.Contains(string(ex.body), want) {
			return "", fmt.Errorf("the metrics lack %s", want)
		}
	}
	return fmt.Sprintf("%d lightning samples: invoices, settlements, verifications, payments, node calls", len(lines)), nil
}
