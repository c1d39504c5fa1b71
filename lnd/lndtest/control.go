package lndtest

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// lnd's RPC-state errors (rpcperms), returned before the wallet is ready.
var (
	errWaitingToStart = errors.New("waiting to start, RPC services not available")
	errNoWallet       = errors.New("wallet not created, create one to enable full RPC access")
	errWalletLocked   = errors.New("wallet locked, unlock it to enable full RPC access")
	errRPCStarting    = errors.New("the RPC server is in the process of starting up, but not yet ready to accept calls")
)

// methodName reduces "/lnrpc.Lightning/AddInvoice" to "AddInvoice".
func methodName(fullMethod string) string {
	return fullMethod[strings.LastIndex(fullMethod, "/")+1:]
}

// Calls is how many times method was called ("AddInvoice", or the full
// "/lnrpc.Lightning/AddInvoice"), counting every call that reached the
// node, including those refused for a bad macaroon or an injected error.
func (n *Node) Calls(method string) int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.calls[methodName(method)]
}

// SetError makes every later call of method (e.g. "AddInvoice") fail with
// err, after the macaroon check, until SetError(method, nil). Use a gRPC
// status error (status.Error(codes.Unavailable, "...")) for a specific code;
// plain errors arrive as codes.Unknown, as lnd's do. For server streams
// (SubscribeInvoices, SendPaymentV2, TrackPaymentV2) the error arrives on the
// first Recv. To make payments fail with a failure_reason instead, use
// SetPaymentFailure.
func (n *Node) SetError(method string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err == nil {
		delete(n.errs, methodName(method))
		return
	}
	n.errs[methodName(method)] = err
}

// SetErrorOnce makes only the next call of method fail with err; call it
// several times to queue several errors. Queued errors go before SetError's.
func (n *Node) SetErrorOnce(method string, err error) {
	if err == nil {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	m := methodName(method)
	n.onceErrs[m] = append(n.onceErrs[m], err)
}

// SetDelay makes every later call of method wait d (after the macaroon
// check, before answering) so callers can test deadlines; a call whose
// context ends first fails with its context error (DeadlineExceeded or
// Canceled). d = 0 removes the delay. For the time a payment stays
// IN_FLIGHT, use SetPaymentLatency.
func (n *Node) SetDelay(method string, d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if d <= 0 {
		delete(n.delays, methodName(method))
		return
	}
	n.delays[methodName(method)] = d
}

// SetState sets the wallet state GetState and SubscribeState report
// (SERVER_ACTIVE at Start). In any state but RPC_ACTIVE and SERVER_ACTIVE,
// the Lightning and Router services refuse calls with lnd's texts, e.g.
// UNLOCKED: "the RPC server is in the process of starting up, but not yet
// ready to accept calls".
func (n *Node) SetState(s lnrpc.WalletState) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.state == s {
		return
	}
	n.state = s
	close(n.stateCh)
	n.stateCh = make(chan struct{})
}

// SetSynced sets GetInfo.synced_to_chain (true at Start).
func (n *Node) SetSynced(synced bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.synced = synced
}

// admit runs what lnd's interceptors do before a handler (RPC state check,
// macaroon check), then the injected delay and error.
func (n *Node) admit(ctx context.Context, fullMethod string) error {
	m := methodName(fullMethod)
	n.mu.Lock()
	n.calls[m]++
	state := n.state
	n.mu.Unlock()

	if !strings.HasPrefix(fullMethod, "/lnrpc.State/") {
		switch state {
		case lnrpc.WalletState_WAITING_TO_START:
			return errWaitingToStart
		case lnrpc.WalletState_NON_EXISTING:
			return errNoWallet
		case lnrpc.WalletState_LOCKED:
			return errWalletLocked
		case lnrpc.WalletState_UNLOCKED:
			return errRPCStarting
		}
		if err := checkMacaroon(ctx, n.rootKey, n.cfg.now(), fullMethod); err != nil {
			return err
		}
	}

	n.mu.Lock()
	delay := n.delays[m]
	n.mu.Unlock()
	if delay > 0 {
		timer := time.NewTimer(delay)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-n.stoppingCh():
			return status.Error(codes.Unavailable, "lndtest: node is shutting down")
		}
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if q := n.onceErrs[m]; len(q) > 0 {
		n.onceErrs[m] = q[1:]
		return q[0]
	}
	return n.errs[m]
}

func (n *Node) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := n.admit(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func (n *Node) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if err := n.admit(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return handler(srv, ss)
}
