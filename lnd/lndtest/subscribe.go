package lndtest

import (
	"context"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// statusNotFound wraps err in codes.NotFound, as lnd does for unknown
// invoices and payments.
func statusNotFound(err error) error { return status.Error(codes.NotFound, err.Error()) }

// emitLocked appends an invoice update (an add while OPEN, or a settlement)
// to the event log that SubscribeInvoices streams read. n.mu must be held.
func (n *Node) emitLocked(update *lnrpc.Invoice) {
	n.events = append(n.events, update)
	close(n.eventsCh)
	n.eventsCh = make(chan struct{})
}

// subscribeInvoices streams, like lnd: first the backlog (invoices added
// after addIndex if it is non-zero, in their current state, then invoices
// settled after settleIndex if it is non-zero), then every new invoice and
// every settlement, until the client cancels or the node stops (which ends
// the stream without an error, as lnd's shutdown does).
func (n *Node) subscribeInvoices(ctx context.Context, req *lnrpc.InvoiceSubscription, send func(*lnrpc.Invoice) error) error {
	stopping := n.stoppingCh()
	n.mu.Lock()
	var backlog []*lnrpc.Invoice
	if req.AddIndex > 0 {
		for _, inv := range n.byAdd[min(req.AddIndex, uint64(len(n.byAdd))):] {
			n.refreshLocked(inv)
			backlog = append(backlog, inv.rpc())
		}
	}
	if req.SettleIndex > 0 {
		for _, inv := range n.bySettle[min(req.SettleIndex, uint64(len(n.bySettle))):] {
			backlog = append(backlog, inv.rpc())
		}
	}
	cursor := len(n.events)
	n.invSubs++
	n.mu.Unlock()
	defer func() {
		n.mu.Lock()
		n.invSubs--
		n.mu.Unlock()
	}()

	for _, u := range backlog {
		if err := send(u); err != nil {
			return err
		}
	}
	for {
		n.mu.Lock()
		pending := n.events[cursor:]
		cursor = len(n.events)
		wait := n.eventsCh
		n.mu.Unlock()
		for _, u := range pending {
			if err := send(proto.Clone(u).(*lnrpc.Invoice)); err != nil {
				return err
			}
		}
		if len(pending) > 0 {
			continue
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return nil
		case <-stopping:
			return nil
		}
	}
}

// InvoiceSubscribers is the number of open SubscribeInvoices streams that
// will see every later AddInvoice and Settle. Poll it before calling Settle
// to avoid racing a subscription that is still being set up.
func (n *Node) InvoiceSubscribers() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.invSubs
}
