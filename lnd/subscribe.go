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

// SubscribeSettlements calls fn for every invoice the node settles until
// ctx ends. When the stream breaks (the node restarts, say) it reconnects
// with backoff and resumes after the last settlement it saw, so none is
// lost once the first one arrived. onError, if not nil, hears each break.
func (c *Client) SubscribeSettlements(ctx context.Context, fn func(Settlement), onError func(error)) {
	var lastIndex uint64
	delay := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := c.streamSettlements(ctx, &lastIndex, fn)
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

// streamSettlements runs one SubscribeInvoices stream until it breaks.
func (c *Client) streamSettlements(ctx context.Context, lastIndex *uint64, fn func(Settlement)) error {
	stream, err := c.rpc.SubscribeInvoices(ctx, &lndrpc.InvoiceSubscription{SettleIndex: *lastIndex})
	if err != nil {
		return fmt.Errorf("subscribe invoices: %w", err)
	}
	for {
		inv, err := stream.Recv()
		if err != nil {
			return fmt.Errorf("invoice stream: %w", err)
		}
		if inv.State != lndrpc.Invoice_SETTLED || inv.SettleIndex <= *lastIndex {
			continue
		}
		s := Settlement{AmountSat: inv.AmtPaidSat, SettleIndex: inv.SettleIndex}
		if copy(s.PaymentHash[:], inv.RHash) != len(s.PaymentHash) ||
			copy(s.Preimage[:], inv.RPreimage) != len(s.Preimage) {
			continue
		}
		*lastIndex = inv.SettleIndex
		fn(s)
	}
}
