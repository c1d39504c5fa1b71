package lightning

import (
	"context"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
)

// How the Lightning API answers a payment (payinvoice, keysend):
//
//   - 200 with the preimage: the payment succeeded (now, or before: a
//     repeat never pays twice).
//   - 4xx: the payment failed for certain or was refused; no money moved
//     and it is safe to try again (400 with lnd's failure reason, 403
//     max_payment, 409 idempotency key reused, 429 budget).
//   - 503: the node could not be reached before anything was sent.
//   - 504 (gRPC DEADLINE_EXCEEDED), message "payment outcome unknown": the
//     payment may still complete. Repeating the call (the same invoice, or
//     the same keysend idempotency_key) returns its outcome once known and
//     never pays twice. Payment calls answer DEADLINE_EXCEEDED for nothing
//     else.

// answer turns a payment's outcome into the API's answer.
func answer(p payment, out lnd.Outcome, repeat bool) ([32]byte, error) {
	switch out := out.(type) {
	case lnd.Succeeded:
		return out.Preimage, nil
	case lnd.Failed:
		code := codes.FailedPrecondition
		switch out.Reason {
		case lnd.FailureIncorrectDetails:
			code = codes.InvalidArgument
		case lnd.FailureCanceled:
			code = codes.Aborted
		}
		retry := "it is safe to try again"
		if p.key != "" && repeat {
			retry = "this idempotency_key keeps this result: use a new one to try again"
		}
		reason := out.Reason.Describe()
		if reason != string(out.Reason) {
			reason += " (" + string(out.Reason) + ")"
		}
		return [32]byte{}, status.Errorf(code, "payment failed: %s; no money moved, %s", reason, retry)
	}
	var cause string
	if u, ok := out.(lnd.Unknown); ok && u.Cause != nil {
		cause = u.Cause.Error()
	}
	hash := out.Hash()
	learn := "repeat payinvoice with the same invoice to learn its outcome: a repeat never pays twice"
	if p.kind == kindKeysend {
		learn = "repeat keysend with the same idempotency_key to learn its outcome: a repeat never pays twice"
		if p.key == "" {
			learn = "a keysend sent again without an idempotency_key is another payment: send one to make repeats safe"
		}
	}
	return [32]byte{}, status.Errorf(codes.DeadlineExceeded, "payment outcome unknown: %s. The payment (hash %x) may still complete; %s",
		cause, hash[:], learn)
}

// beforeSending keeps DEADLINE_EXCEEDED for payments whose outcome is
// unknown: a node that did not answer before anything was sent is
// unavailable.
func beforeSending(err error) error {
	if status.Code(err) == codes.DeadlineExceeded {
		return status.Errorf(codes.Unavailable, "%s; nothing was sent", status.Convert(err).Message())
	}
	return err
}

// followInterval is how often the follower looks for payments whose
// outcome is open; tests shorten it.
var followInterval = 10 * time.Second

// paymentFollower follows the ledger's open payments until the node says
// how they ended, and books them: payments whose request got no final
// answer (the node shut down, the payee holds the HTLC, the request timed
// out), including those of an earlier run of Caddy or of another instance
// sharing the storage. A payment the node never started is released once
// its request has certainly given up and the node has said so twice, a
// followInterval apart.
type paymentFollower struct {
	ledger *paymentLedger
	node   *lnd.Client
	logger *zap.Logger
	emit   func(name string, data map[string]any)

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	tracking map[[32]byte]bool
	notFound map[[32]byte]time.Time // when the node first said it has no such payment
}

// startFollower starts following open payments if a handler of the config
// makes payments; stopFollower ends it. The app calls them from Start and
// Stop.
func (a *App) startFollower() {
	if a.payments.payers() > 0 {
		a.follower = startFollowing(a.payments, a.client, a.logger, a.emit)
	}
}

func (a *App) stopFollower() {
	if a.follower != nil {
		a.follower.stop()
		a.follower = nil
	}
}

// startFollowing starts a follower; stop ends it.
func startFollowing(ledger *paymentLedger, node *lnd.Client, logger *zap.Logger, emit func(string, map[string]any)) *paymentFollower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &paymentFollower{
		ledger: ledger, node: node, logger: logger, emit: emit, cancel: cancel,
		tracking: make(map[[32]byte]bool), notFound: make(map[[32]byte]time.Time),
	}
	f.wg.Go(func() { f.run(ctx) })
	return f
}

// stop ends the follower and waits for it; payments still open stay in
// the ledger for the next run.
func (f *paymentFollower) stop() {
	f.cancel()
	f.wg.Wait()
}

func (f *paymentFollower) run(ctx context.Context) {
	ticker := time.NewTicker(followInterval)
	defer ticker.Stop()
	for {
		f.pass(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		case <-f.ledger.wake:
		}
	}
}

// pass starts following each open payment that nobody here follows or
// pays. It also makes sure the stored retention covers this process's
// budgets, so that other instances keep what they count.
func (f *paymentFollower) pass(ctx context.Context) {
	st, err := f.ledger.load(ctx)
	if err == nil && time.Duration(st.Retention) < f.ledger.retention() {
		err = f.ledger.update(ctx, func(*ledgerState) error { return nil })
	}
	if err != nil {
		if ctx.Err() == nil {
			f.logger.Warn("cannot read the payment ledger to follow open payments", zap.Error(err))
		}
		return
	}
	for _, e := range st.Payments {
		if e.State != stateOpen {
			continue
		}
		var hash [32]byte
		if raw, err := hex.DecodeString(e.Hash); err != nil || copy(hash[:], raw) != len(hash) {
			continue
		}
		if f.ledger.isActive(hash) || !f.claim(hash) {
			continue
		}
		f.wg.Go(func() {
			defer f.unclaim(hash)
			f.follow(ctx, hash, e)
		})
	}
}

func (f *paymentFollower) claim(hash [32]byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tracking[hash] {
		return false
	}
	f.tracking[hash] = true
	return true
}

func (f *paymentFollower) unclaim(hash [32]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.tracking, hash)
}

// follow waits for the node to know how the payment to hash ended, and
// books it. If the node stops answering first, the next pass tries again.
func (f *paymentFollower) follow(ctx context.Context, hash [32]byte, e ledgerEntry) {
	out, err := f.node.TrackPayment(ctx, hash)
	early := now().Before(e.FollowAfter)
	switch {
	case errors.Is(err, lnd.ErrPaymentNotFound):
		if !early && f.notFoundTwice(hash) {
			f.conclude(e, func() (bool, error) {
				return f.ledger.release(hash, "the payment never reached the node")
			}, "payment never reached the node: reservation released")
		}
		return
	case err != nil:
		return
	}
	f.forgetNotFound(hash)
	switch out := out.(type) {
	case lnd.Succeeded:
		f.conclude(e, func() (bool, error) { return f.ledger.record(hash, out) }, "open payment succeeded: booked")
	case lnd.Failed:
		// Until the request has given up, a failure from before the
		// entry began may be an earlier attempt's, not this one's.
		if !early || !out.CreatedAt.Before(e.StartedAt.Add(-earlierSlack)) {
			f.conclude(e, func() (bool, error) { return f.ledger.record(hash, out) }, "open payment failed: reservation released")
		}
	}
}

// notFoundTwice reports whether the node said before, at least a
// followInterval ago, that it has no payment to hash; it remembers the
// first time it said so.
func (f *paymentFollower) notFoundTwice(hash [32]byte) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	first, seen := f.notFound[hash]
	if !seen {
		f.notFound[hash] = now()
		return false
	}
	return now().Sub(first) >= followInterval
}

func (f *paymentFollower) forgetNotFound(hash [32]byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.notFound, hash)
}

// conclude applies a ledger change and, if it changed the entry, logs msg
// and emits lightning_payment_followed.
func (f *paymentFollower) conclude(e ledgerEntry, change func() (bool, error), msg string) {
	changed, err := change()
	if err != nil {
		f.logger.Error("cannot book a followed payment; it stays reserved", zap.String("payment_hash", e.Hash), zap.Error(err))
		return
	}
	if !changed {
		return
	}
	f.logger.Info(msg, zap.String("payment_hash", e.Hash), zap.String("kind", e.Kind), zap.Int64("amount_sat", e.AmountSat))
	f.emit("lightning_payment_followed", map[string]any{"payment_hash": e.Hash, "kind": e.Kind, "result": msg})
}
