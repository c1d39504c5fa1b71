package lnd

import (
	"context"
	"fmt"
	"time"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
)

// Settlement is an invoice of the node that was paid.
type Settlement struct {
	// PaymentHash identifies the invoice.
	PaymentHash [32]byte
	// Preimage is the payment's proof.
	Preimage [32]byte
	// AmountSat is what was paid.
	AmountSat int64
	// SettleIndex orders settlements on the node.
	SettleIndex uint64
}

// recentInvoices is how many of the node's latest invoices are read to
// learn where its settlements stand.
const recentInvoices = 100

// SubscribeSettlements calls fn for every invoice the node settles until
// ctx ends. It first reads the node's latest invoices, reporting those
// already settled, to learn where settlements stand: from there lnd
// replays every settlement since, so none is missed between reading and
// the stream's first event. When the stream breaks (the node restarts,
// say) it reconnects with backoff and resumes after the last settlement it
// saw. fn may hear of a settlement more than once. onError, if not nil,
// hears each break.
//
// AMP invoices carry no preimage of their own, so their payments are not
// reported to fn.
func (c *Client) SubscribeSettlements(ctx context.Context, fn func(Settlement), onError func(error)) {
	var settleIndex uint64
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		var err error
		if settleIndex == 0 {
			settleIndex, err = c.recentSettlements(ctx, fn)
		}
		if err == nil {
			err = c.streamSettlements(ctx, &settleIndex, fn)
		}
		if ctx.Err() != nil {
			return
		}
		if onError != nil {
			onError(err)
		}
		if time.Since(start) > 10*time.Second {
			delay = 100 * time.Millisecond // the stream was healthy for a while
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// recentSettlements reports the settled invoices among the node's latest
// and returns the highest settle index seen (0 if none is settled). A
// settlement of an older invoice may have a higher index; resuming from a
// lower one only replays settlements again.
func (c *Client) recentSettlements(ctx context.Context, fn func(Settlement)) (uint64, error) {
	ctx, cancel := c.withTimeout(ctx)
	defer cancel()
	resp, err := c.rpc.ListInvoices(ctx, &lndrpc.ListInvoiceRequest{Reversed: true, NumMaxInvoices: recentInvoices})
	if err != nil {
		return 0, fmt.Errorf("list invoices: %w", err)
	}
	var index uint64
	for _, inv := range resp.Invoices {
		index = max(index, report(inv, fn))
	}
	return index, nil
}

// streamSettlements runs one SubscribeInvoices stream, from the settlement
// after *settleIndex, until it breaks.
func (c *Client) streamSettlements(ctx context.Context, settleIndex *uint64, fn func(Settlement)) error {
	stream, err := c.rpc.SubscribeInvoices(ctx, &lndrpc.InvoiceSubscription{SettleIndex: *settleIndex})
	if err != nil {
		return fmt.Errorf("subscribe invoices: %w", err)
	}
	for {
		inv, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("invoice stream: %w", err)
		}
		*settleIndex = max(*settleIndex, report(inv, fn))
	}
}

// report calls fn if inv is settled, and returns its settle index: the
// invoice's, or an AMP invoice's highest (0 if it is not settled).
func report(inv *lndrpc.Invoice, fn func(Settlement)) uint64 {
	index := inv.SettleIndex
	for _, set := range inv.AmpInvoiceState {
		index = max(index, set.SettleIndex)
	}
	if inv.State != lndrpc.Invoice_SETTLED {
		return index
	}
	s := Settlement{AmountSat: inv.AmtPaidSat, SettleIndex: inv.SettleIndex}
	if copy(s.PaymentHash[:], inv.RHash) == len(s.PaymentHash) && copy(s.Preimage[:], inv.RPreimage) == len(s.Preimage) {
		fn(s)
	}
	return index
}
