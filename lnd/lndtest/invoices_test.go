package lndtest

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc/codes"
)

func TestAddInvoice(t *testing.T) {
	n, c := startWithClients(t)
	ctx := ctxT(t)
	resp, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1500, Memo: "coffee", Expiry: 600})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.RHash) != 32 || len(resp.PaymentAddr) != 32 || resp.AddIndex != 1 {
		t.Fatalf("response %v", resp)
	}
	dec, err := zpay32.Decode(resp.PaymentRequest, n.params)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if got := hex.EncodeToString(dec.Destination.SerializeCompressed()); got != n.Pubkey() {
		t.Fatalf("destination %s, want node pubkey %s", got, n.Pubkey())
	}
	if *dec.MilliSat != 1_500_000 || *dec.Description != "coffee" || dec.Expiry() != 10*time.Minute ||
		hex.EncodeToString(dec.PaymentHash[:]) != hex.EncodeToString(resp.RHash) {
		t.Fatalf("decoded %+v", dec)
	}
	addr, _ := dec.PaymentAddr.UnwrapOrErr(nil)
	if hex.EncodeToString(addr[:]) != hex.EncodeToString(resp.PaymentAddr) {
		t.Fatal("payment_addr differs from the invoice's")
	}

	inv, err := c.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: resp.RHash})
	if err != nil {
		t.Fatal(err)
	}
	if sha(inv.RPreimage) != [32]byte(resp.RHash) {
		t.Fatal("r_hash is not sha256(r_preimage)")
	}
	if inv.State != lnrpc.Invoice_OPEN || inv.Value != 1500 || inv.ValueMsat != 1_500_000 ||
		inv.Memo != "coffee" || inv.Expiry != 600 || inv.AddIndex != 1 || inv.SettleIndex != 0 ||
		inv.PaymentRequest != resp.PaymentRequest {
		t.Fatalf("lookup %v", inv)
	}

	// Defaults: 24h expiry; zero-amount invoices have no amount.
	resp2, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{})
	if err != nil {
		t.Fatal(err)
	}
	dec2, err := zpay32.Decode(resp2.PaymentRequest, n.params)
	if err != nil || dec2.MilliSat != nil || dec2.Expiry() != 24*time.Hour || resp2.AddIndex != 2 {
		t.Fatalf("zero invoice %+v %v", dec2, err)
	}

	// Caller-chosen preimage.
	var pre [32]byte
	pre[0] = 7
	resp3, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1, RPreimage: pre[:]})
	if err != nil || [32]byte(resp3.RHash) != sha(pre[:]) {
		t.Fatalf("preimage invoice %v %v", resp3, err)
	}
	_, err = c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1, RPreimage: pre[:]})
	wantStatus(t, err, codes.Unknown, "invoice with payment hash already exists")

	// description_hash (LNURL-pay) replaces the memo in the invoice.
	dh := sha([]byte(`[["text/plain","hi"]]`))
	resp4, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1, Memo: "kept", DescriptionHash: dh[:]})
	if err != nil {
		t.Fatal(err)
	}
	dec4, err := zpay32.Decode(resp4.PaymentRequest, n.params)
	if err != nil || dec4.DescriptionHash == nil || *dec4.DescriptionHash != dh || dec4.Description != nil {
		t.Fatalf("description hash invoice %+v %v", dec4, err)
	}
	_, err = c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1, DescriptionHash: []byte{1}})
	wantStatus(t, err, codes.Unknown, "description hash is 1 bytes, must be 32")

	// DecodePayReq agrees.
	pr, err := c.ln.DecodePayReq(ctx, &lnrpc.PayReqString{PayReq: resp.PaymentRequest})
	if err != nil || pr.Destination != n.Pubkey() || pr.NumSatoshis != 1500 || pr.Description != "coffee" ||
		pr.PaymentHash != hex.EncodeToString(resp.RHash) || pr.Expiry != 600 {
		t.Fatalf("DecodePayReq %v %v", pr, err)
	}
}

func TestAddInvoiceRejects(t *testing.T) {
	_, c := startWithClients(t)
	ctx := ctxT(t)
	cases := []struct {
		req  *lnrpc.Invoice
		want string
	}{
		{&lnrpc.Invoice{Value: 1, Memo: strings.Repeat("m", 1025)}, "memo too large: 1025 bytes (maxsize=1024)"},
		{&lnrpc.Invoice{Value: -1}, "amount cannot be negative"},
		{&lnrpc.Invoice{Value: 1, ValueMsat: 1000}, "sat and msat arguments are mutually exclusive"},
		{&lnrpc.Invoice{Value: 1, Expiry: 400 * 24 * 3600}, "greater than max expiry"},
		{&lnrpc.Invoice{Value: 1, RPreimage: []byte{1}}, "invalid preimage length of 1, want 32"},
	}
	for _, tc := range cases {
		_, err := c.ln.AddInvoice(ctx, tc.req)
		wantStatus(t, err, codes.Unknown, tc.want)
	}
	// As in lnd, memos up to 1024 bytes pass the memo check but BOLT11
	// cannot encode a description over 639 bytes.
	_, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1, Memo: strings.Repeat("m", 1024)})
	wantStatus(t, err, codes.Unknown, "data length too big to fit within 10 bits")
	_, err = c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1, Memo: strings.Repeat("m", 640)})
	wantStatus(t, err, codes.Unknown, "data length too big to fit within 10 bits")
	if _, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 1, Memo: strings.Repeat("m", 639)}); err != nil {
		t.Fatal(err)
	}
}

func TestLookupInvoice(t *testing.T) {
	clock := newFakeClock()
	n, c := startWithClients(t, WithClock(clock.Now))
	ctx := ctxT(t)
	var unknown [32]byte
	unknown[0] = 1

	_, err := c.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: unknown[:]})
	wantStatus(t, err, codes.NotFound, "there are no existing invoices")

	_, hash := addInvoice(t, c, 10, "a")
	_, err = c.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: unknown[:]})
	wantStatus(t, err, codes.NotFound, "unable to locate invoice")
	_, err = c.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: []byte{1, 2}})
	wantStatus(t, err, codes.Unknown, "payment hash must be exactly 32 bytes, is instead 2")

	// Settle: SETTLED, settle_index, amt_paid.
	if err := n.Settle(hash); err != nil {
		t.Fatal(err)
	}
	inv, err := c.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHashStr: hex.EncodeToString(hash[:])})
	if err != nil {
		t.Fatal(err)
	}
	if inv.State != lnrpc.Invoice_SETTLED || !inv.Settled || inv.SettleIndex != 1 || inv.AmtPaidSat != 10 ||
		inv.AmtPaidMsat != 10_000 || inv.SettleDate == 0 {
		t.Fatalf("settled invoice %v", inv)
	}
	if err := n.Settle(hash); err == nil || !strings.Contains(err.Error(), "already settled") {
		t.Fatalf("second Settle: %v", err)
	}
	if err := n.Settle(unknown); err == nil || !strings.Contains(err.Error(), "unable to locate invoice") {
		t.Fatalf("Settle unknown: %v", err)
	}

	// Expiry: an OPEN invoice past its expiry reports CANCELED and cannot
	// be settled; a settled one stays SETTLED.
	resp, err := c.ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 5, Expiry: 60})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(61 * time.Second)
	inv, err = c.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: resp.RHash})
	if err != nil || inv.State != lnrpc.Invoice_CANCELED {
		t.Fatalf("expired invoice %v %v", inv, err)
	}
	if err := n.Settle([32]byte(resp.RHash)); err == nil || !strings.Contains(err.Error(), "already canceled") {
		t.Fatalf("Settle expired: %v", err)
	}
	inv, err = c.ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: hash[:]})
	if err != nil || inv.State != lnrpc.Invoice_SETTLED {
		t.Fatalf("settled invoice after time passes %v %v", inv, err)
	}
}

func TestSubscribeInvoices(t *testing.T) {
	n, c := startWithClients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	_, h1 := addInvoice(t, c, 1, "one")
	_, h2 := addInvoice(t, c, 2, "two")
	if err := n.Settle(h1); err != nil {
		t.Fatal(err)
	}

	// 0/0: only new events.
	live, err := c.ln.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{})
	if err != nil {
		t.Fatal(err)
	}
	// settle_index 1: replays settlements after 1 (none yet), then live.
	replay, err := c.ln.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{SettleIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	// add_index 1: replays invoice 2, then live.
	adds, err := c.ln.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{AddIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	first, err := adds.Recv()
	if err != nil || first.AddIndex != 2 || first.Memo != "two" {
		t.Fatalf("add replay %v %v", first, err)
	}

	waitSubscribers(t, n, 3)

	resp3, _ := addInvoice(t, c, 3, "three")
	if err := n.Settle(h2); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]lnrpc.Lightning_SubscribeInvoicesClient{"live": live, "replay": replay, "adds": adds} {
		u, err := s.Recv()
		if err != nil || u.State != lnrpc.Invoice_OPEN || u.AddIndex != 3 || u.PaymentRequest != resp3.PaymentRequest {
			t.Fatalf("%s: add event %v %v", name, u, err)
		}
		u, err = s.Recv()
		if err != nil || u.State != lnrpc.Invoice_SETTLED || u.SettleIndex != 2 || [32]byte(u.RHash) != h2 ||
			u.AmtPaidSat != 2 {
			t.Fatalf("%s: settle event %v %v", name, u, err)
		}
	}

	// A stream opened with settle_index 1 after the fact replays settle 2.
	late, err := c.ln.SubscribeInvoices(ctx, &lnrpc.InvoiceSubscription{SettleIndex: 1})
	if err != nil {
		t.Fatal(err)
	}
	u, err := late.Recv()
	if err != nil || u.State != lnrpc.Invoice_SETTLED || u.SettleIndex != 2 || len(u.RPreimage) != 32 {
		t.Fatalf("late replay %v %v", u, err)
	}
}

// waitSubscribers waits until want SubscribeInvoices streams are open.
func waitSubscribers(t *testing.T, n *Node, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for n.InvoiceSubscribers() != want {
		if time.Now().After(deadline) {
			t.Fatalf("%d invoice subscribers, want %d", n.InvoiceSubscribers(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestListInvoices(t *testing.T) {
	n, c := startWithClients(t)
	resp, err := c.ln.ListInvoices(ctxT(t), &lnrpc.ListInvoiceRequest{Reversed: true})
	if err != nil || len(resp.Invoices) != 0 || resp.LastIndexOffset != 0 {
		t.Fatalf("no invoices: %v %v", resp, err)
	}
	var hashes [][32]byte
	for i := range 5 {
		_, h := addInvoice(t, c, int64(i+1), "")
		hashes = append(hashes, h)
	}
	if err := n.Settle(hashes[1]); err != nil {
		t.Fatal(err)
	}
	resp, err = c.ln.ListInvoices(ctxT(t), &lnrpc.ListInvoiceRequest{Reversed: true, NumMaxInvoices: 2})
	if err != nil || len(resp.Invoices) != 2 || resp.Invoices[0].AddIndex != 4 || resp.Invoices[1].AddIndex != 5 ||
		resp.FirstIndexOffset != 4 || resp.LastIndexOffset != 5 {
		t.Fatalf("latest two: %v %v", resp, err)
	}
	resp, err = c.ln.ListInvoices(ctxT(t), &lnrpc.ListInvoiceRequest{IndexOffset: 1, NumMaxInvoices: 2})
	if err != nil || len(resp.Invoices) != 2 || resp.Invoices[0].AddIndex != 2 || resp.Invoices[0].SettleIndex != 1 {
		t.Fatalf("two after 1: %v %v", resp, err)
	}
	resp, err = c.ln.ListInvoices(ctxT(t), &lnrpc.ListInvoiceRequest{PendingOnly: true, Reversed: true, IndexOffset: 3})
	if err != nil || len(resp.Invoices) != 1 || resp.Invoices[0].AddIndex != 1 {
		t.Fatalf("pending before 3: %v %v", resp, err)
	}
}
