package lndtest

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/btcsuite/btcd/btcutil"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// lnd's payment database errors, and the router's on shutdown.
var (
	errAlreadyPaid         = errors.New("invoice is already paid")
	errPaymentInFlight     = errors.New("payment is in transition")
	errPaymentNotInitiated = errors.New("payment isn't initiated")
	errShuttingDown        = errors.New("routerrpc server shutting down")
)

// payment is one payment this node sent (the latest attempt per hash).
type payment struct {
	hash      [32]byte
	preimage  [32]byte // zero unless SUCCEEDED
	valueMsat int64
	feeMsat   int64 // zero unless SUCCEEDED
	payReq    string
	cltvLimit uint32
	created   time.Time
	index     uint64
	status    lnrpc.Payment_PaymentStatus
	reason    lnrpc.PaymentFailureReason
	done      chan struct{} // closed when status is final
	held      chan bool     // a payee holding the HTLC: true settles, false cancels; nil if not held
}

// rpc renders the payment as lnd's MarshallPayment does (without HTLCs).
func (p *payment) rpc() *lnrpc.Payment {
	sat := int64(lnwire.MilliSatoshi(p.valueMsat).ToSatoshis())
	fee := int64(lnwire.MilliSatoshi(p.feeMsat).ToSatoshis())
	return &lnrpc.Payment{
		PaymentHash:     hex.EncodeToString(p.hash[:]),
		Value:           sat,
		ValueSat:        sat,
		ValueMsat:       p.valueMsat,
		CreationDate:    p.created.Unix(),
		CreationTimeNs:  p.created.UnixNano(),
		Fee:             fee,
		FeeSat:          fee,
		FeeMsat:         p.feeMsat,
		PaymentPreimage: hex.EncodeToString(p.preimage[:]),
		PaymentRequest:  p.payReq,
		Status:          p.status,
		PaymentIndex:    p.index,
		FailureReason:   p.reason,
	}
}

// payableInvoice is an invoice of the peer node, which this node can pay.
type payableInvoice struct {
	preimage  [32]byte
	valueMsat int64
	failure   lnrpc.PaymentFailureReason
	hold      bool
}

// outcome is how a payment will end.
type outcome struct {
	status   lnrpc.Payment_PaymentStatus
	reason   lnrpc.PaymentFailureReason
	preimage [32]byte
	feeMsat  int64
}

func failed(r lnrpc.PaymentFailureReason) outcome {
	return outcome{status: lnrpc.Payment_FAILED, reason: r}
}

// outcomeLocked decides how a payment ends. n.mu must be held.
func (n *Node) outcomeLocked(in *payIntent) outcome {
	if n.payFail != lnrpc.PaymentFailureReason_FAILURE_REASON_NONE {
		return failed(n.payFail)
	}
	if !bytes.Equal(in.target, n.peerKey.PubKey().SerializeCompressed()) {
		return failed(lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE)
	}
	if n.cfg.routeFeeMsat > in.feeLimitMsat {
		return failed(lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE)
	}
	ok := outcome{status: lnrpc.Payment_SUCCEEDED, feeMsat: n.cfg.routeFeeMsat}
	if in.keysend != nil {
		// The receiver checks the preimage against the hash.
		if len(in.keysend) != 32 || sha256.Sum256(in.keysend) != in.hash {
			return failed(lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS)
		}
		copy(ok.preimage[:], in.keysend)
		return ok
	}
	pi, known := n.payable[in.hash]
	switch {
	case !known || in.amtMsat < pi.valueMsat:
		return failed(lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS)
	case pi.failure != lnrpc.PaymentFailureReason_FAILURE_REASON_NONE:
		return failed(pi.failure)
	}
	ok.preimage = pi.preimage
	return ok
}

// startPayment records a new attempt IN_FLIGHT (refusing duplicates like
// lnd's PreparePayment) and resolves it in the background. It returns the
// IN_FLIGHT snapshot.
func (n *Node) startPayment(ctx context.Context, in *payIntent) (*payment, *lnrpc.Payment, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.closed:
		return nil, nil, status.Error(codes.Unavailable, "lndtest: node is shutting down")
	default:
	}
	if old := n.payments[in.hash]; old != nil {
		switch old.status {
		case lnrpc.Payment_IN_FLIGHT, lnrpc.Payment_INITIATED:
			return nil, nil, status.Error(codes.AlreadyExists, errPaymentInFlight.Error())
		case lnrpc.Payment_SUCCEEDED:
			return nil, nil, status.Error(codes.AlreadyExists, errAlreadyPaid.Error())
		}
	}
	n.paySeq++
	p := &payment{
		hash:      in.hash,
		valueMsat: in.amtMsat,
		payReq:    in.payReq,
		cltvLimit: in.cltvLimit,
		created:   n.cfg.now(),
		index:     n.paySeq,
		status:    lnrpc.Payment_IN_FLIGHT,
		done:      make(chan struct{}),
	}
	n.payments[in.hash] = p
	n.attempts[in.hash]++
	out := n.outcomeLocked(in)
	if pi := n.payable[in.hash]; pi != nil && pi.hold && out.status == lnrpc.Payment_SUCCEEDED {
		p.held = make(chan bool, 1)
	}
	var cancel <-chan struct{}
	if in.cancelable {
		cancel = ctx.Done()
	}
	n.wg.Add(1)
	go n.resolve(p, out, n.payDelay, cancel)
	return p, p.rpc(), nil
}

// resolve ends a payment after latency, or with FAILURE_REASON_CANCELED if
// cancel (the stream of a cancelable payment) closes first. A held payment
// then waits for the payee to settle or cancel it.
func (n *Node) resolve(p *payment, out outcome, latency time.Duration, cancel <-chan struct{}) {
	defer n.wg.Done()
	if latency > 0 {
		timer := time.NewTimer(latency)
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-cancel:
			out = failed(lnrpc.PaymentFailureReason_FAILURE_REASON_CANCELED)
		case <-n.closed:
			return
		}
	}
	if p.held != nil && out.status == lnrpc.Payment_SUCCEEDED {
		select {
		case settle := <-p.held:
			if !settle {
				out = failed(lnrpc.PaymentFailureReason_FAILURE_REASON_INCORRECT_PAYMENT_DETAILS)
			}
		case <-n.closed:
			return
		}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p.status, p.reason = out.status, out.reason
	if out.status == lnrpc.Payment_SUCCEEDED {
		p.preimage, p.feeMsat = out.preimage, out.feeMsat
	}
	close(p.done)
}

// trackPayment sends first (unless it is IN_FLIGHT and noInflight), waits
// for the payment to be final, sends that state and ends the stream, as lnd
// does. It also ends when the client cancels, or with lnd's plain
// "routerrpc server shutting down" when the node stops.
func (n *Node) trackPayment(ctx context.Context, p *payment, first *lnrpc.Payment, noInflight bool, send func(*lnrpc.Payment) error) error {
	stopping := n.stoppingCh()
	if first.Status == lnrpc.Payment_SUCCEEDED || first.Status == lnrpc.Payment_FAILED {
		return send(first)
	}
	if !noInflight {
		if err := send(first); err != nil {
			return err
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil
	case <-stopping:
		return errShuttingDown
	}
	n.mu.Lock()
	final := p.rpc()
	n.mu.Unlock()
	return send(final)
}

// InvoiceOption configures NewPayableInvoice.
type InvoiceOption func(*payableParams)

type payableParams struct {
	memo    string
	expiry  time.Duration
	created time.Time
	failure lnrpc.PaymentFailureReason
	hold    bool
}

// InvoiceMemo sets the invoice description (default "lndtest payable").
func InvoiceMemo(memo string) InvoiceOption { return func(p *payableParams) { p.memo = memo } }

// InvoiceExpiry sets the invoice expiry (default 24h, lnd's default).
func InvoiceExpiry(d time.Duration) InvoiceOption { return func(p *payableParams) { p.expiry = d } }

// InvoiceTimestamp backdates (or postdates) the invoice creation time
// (default: the node's clock), e.g. to make an already expired invoice.
func InvoiceTimestamp(t time.Time) InvoiceOption { return func(p *payableParams) { p.created = t } }

// InvoiceFailure makes every payment of the invoice end FAILED with reason
// (e.g. FAILURE_REASON_INSUFFICIENT_BALANCE) instead of SUCCEEDED.
func InvoiceFailure(reason lnrpc.PaymentFailureReason) InvoiceOption {
	return func(p *payableParams) { p.failure = reason }
}

// InvoiceHeld makes the payee hold the HTLCs of every payment of the
// invoice, as a hold invoice does: the payment stays IN_FLIGHT, across
// Stop and Restart, until SettleHeld or CancelHeld.
func InvoiceHeld() InvoiceOption { return func(p *payableParams) { p.hold = true } }

// NewPayableInvoice returns a BOLT11 invoice of another node (PeerPubkey),
// for this node's network, that this node can pay: SendPaymentV2 on it
// ends SUCCEEDED with the returned preimage and a fee of WithRouteFee (if
// the fee limit allows it). amtSat = 0 makes a zero-amount invoice, which
// accepts any amt. Bad input (negative amount, expiry or a signing failure)
// ends the test with t.Fatal, so call it from the test goroutine.
func (n *Node) NewPayableInvoice(amtSat int64, opts ...InvoiceOption) (payreq string, preimage [32]byte) {
	n.t.Helper()
	p := payableParams{memo: "lndtest payable", expiry: defaultInvoiceExpiry, created: n.cfg.now()}
	for _, o := range opts {
		o(&p)
	}
	if amtSat < 0 || p.expiry < 0 {
		n.t.Fatalf("lndtest: NewPayableInvoice: negative amount %d or expiry %v", amtSat, p.expiry)
	}
	if _, err := rand.Read(preimage[:]); err != nil {
		n.t.Fatalf("lndtest: NewPayableInvoice: preimage: %v", err)
	}
	var payAddr [32]byte
	if _, err := rand.Read(payAddr[:]); err != nil {
		n.t.Fatalf("lndtest: NewPayableInvoice: payment address: %v", err)
	}
	valueMsat := int64(lnwire.NewMSatFromSatoshis(btcutil.Amount(amtSat)))
	payreq, err := encodeBolt11(n.params, n.peerKey, bolt11Params{
		hash: sha256.Sum256(preimage[:]), payAddr: payAddr, valueMsat: valueMsat,
		memo: p.memo, created: p.created, expiry: p.expiry,
	})
	if err != nil {
		n.t.Fatalf("lndtest: NewPayableInvoice: %v", err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	n.payable[sha256.Sum256(preimage[:])] = &payableInvoice{preimage: preimage, valueMsat: valueMsat, failure: p.failure, hold: p.hold}
	return payreq, preimage
}

// SettleHeld has the payee settle the held payment to hash (see
// InvoiceHeld): it ends SUCCEEDED. It fails if no payment to hash is held.
func (n *Node) SettleHeld(hash [32]byte) error { return n.releaseHeld(hash, true) }

// CancelHeld has the payee cancel the held payment to hash: it ends FAILED
// with FAILURE_REASON_INCORRECT_PAYMENT_DETAILS, as when a payee cancels
// a hold invoice.
func (n *Node) CancelHeld(hash [32]byte) error { return n.releaseHeld(hash, false) }

func (n *Node) releaseHeld(hash [32]byte, settle bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.payments[hash]
	if p == nil || p.held == nil || p.status != lnrpc.Payment_IN_FLIGHT {
		return fmt.Errorf("lndtest: no held payment to %x", hash[:])
	}
	select {
	case p.held <- settle:
		return nil
	default:
		return fmt.Errorf("lndtest: the payment to %x was released already", hash[:])
	}
}

// PaymentRecord is what the node keeps of its payment to one hash, as
// lncli listpayments shows it.
type PaymentRecord struct {
	Hash     [32]byte
	Status   lnrpc.Payment_PaymentStatus
	Reason   lnrpc.PaymentFailureReason
	ValueSat int64
	FeeSat   int64
	// CLTVLimit is the cltv_limit the latest attempt was sent with (lnd's
	// --max-cltv-expiry, 2016, if the request had none).
	CLTVLimit uint32
	// Attempts counts the SendPaymentV2 calls that started a payment to
	// the hash; more than one means a payment was retried after it failed.
	Attempts int
}

// Payments lists the node's payments, in the order of their latest attempt.
func (n *Node) Payments() []PaymentRecord {
	n.mu.Lock()
	defer n.mu.Unlock()
	list := make([]PaymentRecord, 0, len(n.payments))
	for hash, p := range n.payments {
		list = append(list, PaymentRecord{
			Hash: hash, Status: p.status, Reason: p.reason,
			ValueSat:  int64(lnwire.MilliSatoshi(p.valueMsat).ToSatoshis()),
			FeeSat:    int64(lnwire.MilliSatoshi(p.feeMsat).ToSatoshis()),
			CLTVLimit: p.cltvLimit, Attempts: n.attempts[hash],
		})
	}
	slices.SortFunc(list, func(a, b PaymentRecord) int {
		return cmp.Compare(n.payments[a.Hash].index, n.payments[b.Hash].index)
	})
	return list
}

// SetPaymentFailure makes every later SendPaymentV2 that passes validation
// end FAILED with reason (e.g. FAILURE_REASON_TIMEOUT,
// FAILURE_REASON_INSUFFICIENT_BALANCE); FAILURE_REASON_NONE restores
// normal routing.
func (n *Node) SetPaymentFailure(reason lnrpc.PaymentFailureReason) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.payFail = reason
}

// SetPaymentLatency sets how long later payments stay IN_FLIGHT before they
// end (0 at Start: they end at once, after one IN_FLIGHT update). During
// that time a second SendPaymentV2 of the same hash gets AlreadyExists
// "payment is in transition", and a cancelable payment whose stream is
// cancelled ends FAILED with FAILURE_REASON_CANCELED. Payments keep
// resolving across Stop/Restart.
func (n *Node) SetPaymentLatency(d time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.payDelay = d
}
