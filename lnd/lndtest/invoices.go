package lndtest

import (
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
	"github.com/lightningnetwork/lnd/zpay32"
)

// lnd limits and defaults for AddInvoice.
const (
	maxMemoSize          = 1024
	defaultInvoiceExpiry = 24 * time.Hour
	defaultAMPExpiry     = 30 * 24 * time.Hour
	maxInvoiceExpiry     = 365 * 24 * time.Hour
)

// lnd's invoice registry errors.
var (
	errInvoiceNotFound   = errors.New("unable to locate invoice")
	errNoInvoices        = errors.New("there are no existing invoices")
	errDuplicateInvoice  = errors.New("invoice with payment hash already exists")
	errInvoiceSettled    = errors.New("invoice already settled")
	errInvoiceCanceled   = errors.New("invoice already canceled")
	errPaymentHashLength = "payment hash must be exactly 32 bytes, is instead %v"
)

// invoice is one invoice of this node (from AddInvoice).
type invoice struct {
	preimage    [32]byte
	hash        [32]byte
	payAddr     [32]byte
	memo        string
	descHash    []byte // replaces memo as the BOLT11 description if set
	valueMsat   int64
	created     time.Time
	expiry      time.Duration
	payReq      string
	private     bool
	addIndex    uint64
	settleIndex uint64
	settled     time.Time
	amtPaidMsat int64
	state       lnrpc.Invoice_InvoiceState
	amp         bool // paid in HTLC sets, each with its own preimage
}

// refreshLocked cancels an OPEN invoice past its expiry, as lnd's invoice
// expiry watcher does. n.mu must be held.
func (n *Node) refreshLocked(inv *invoice) {
	if inv.state == lnrpc.Invoice_OPEN && n.cfg.now().After(inv.created.Add(inv.expiry)) {
		inv.state = lnrpc.Invoice_CANCELED
	}
}

// rpc renders the invoice as lnd's LookupInvoice does. A settled AMP
// invoice shows its one HTLC set, keyed by a set id derived from its
// hash, with the settle index; the invoice itself has none, and no
// preimage.
func (inv *invoice) rpc() *lnrpc.Invoice {
	r := &lnrpc.Invoice{
		Memo:            inv.memo,
		DescriptionHash: append([]byte(nil), inv.descHash...),
		RPreimage:       append([]byte(nil), inv.preimage[:]...),
		RHash:           append([]byte(nil), inv.hash[:]...),
		Value:           int64(lnwire.MilliSatoshi(inv.valueMsat).ToSatoshis()),
		ValueMsat:       inv.valueMsat,
		Settled:         inv.state == lnrpc.Invoice_SETTLED,
		CreationDate:    inv.created.Unix(),
		PaymentRequest:  inv.payReq,
		Expiry:          int64(inv.expiry.Seconds()),
		Private:         inv.private,
		CltvExpiry:      defaultCLTVDelta,
		AddIndex:        inv.addIndex,
		SettleIndex:     inv.settleIndex,
		AmtPaidSat:      int64(lnwire.MilliSatoshi(inv.amtPaidMsat).ToSatoshis()),
		AmtPaidMsat:     inv.amtPaidMsat,
		AmtPaid:         inv.amtPaidMsat,
		State:           inv.state,
		PaymentAddr:     append([]byte(nil), inv.payAddr[:]...),
		Features: map[uint32]*lnrpc.Feature{
			uint32(lnwire.TLVOnionPayloadRequired): {Name: "tlv-onion", IsRequired: true, IsKnown: true},
			uint32(lnwire.PaymentAddrRequired):     {Name: "payment-addr", IsRequired: true, IsKnown: true},
			uint32(lnwire.MPPOptional):             {Name: "multi-path-payments", IsKnown: true},
		},
	}
	if !inv.settled.IsZero() {
		r.SettleDate = inv.settled.Unix()
	}
	if inv.amp {
		r.IsAmp = true
		r.RPreimage = nil
		r.AmpInvoiceState = map[string]*lnrpc.AMPInvoiceState{}
		if inv.state == lnrpc.Invoice_SETTLED {
			setID := sha256.Sum256(inv.hash[:])
			r.AmpInvoiceState[hex.EncodeToString(setID[:])] = &lnrpc.AMPInvoiceState{
				State: lnrpc.InvoiceHTLCState_SETTLED, SettleIndex: inv.settleIndex,
				SettleTime: inv.settled.Unix(), AmtPaidMsat: inv.amtPaidMsat,
			}
			r.SettleIndex = 0
			r.SettleDate = 0
		}
	}
	return r
}

// addInvoice does lnd's AddInvoice: same checks, in the same order, with
// the same texts.
func (n *Node) addInvoice(req *lnrpc.Invoice) (*lnrpc.AddInvoiceResponse, error) {
	value, err := lnrpc.UnmarshallAmt(req.Value, req.ValueMsat)
	if err != nil {
		return nil, err
	}
	// private adds route hints for the node's private channels (see
	// SetChannels). lnd's AddInvoice ignores r_hash.
	if len(req.RouteHints) > 0 || req.IsBlinded || req.FallbackAddr != "" {
		return nil, errors.New("lndtest: route_hints, blinded paths and fallback_addr are not supported by the fake")
	}
	var preimage [32]byte
	switch {
	case len(req.RPreimage) > 0:
		if len(req.RPreimage) != 32 {
			return nil, fmt.Errorf("invalid preimage length of %v, want %v", len(req.RPreimage), 32)
		}
		copy(preimage[:], req.RPreimage)
	default:
		if _, err := rand.Read(preimage[:]); err != nil {
			return nil, fmt.Errorf("preimage: %w", err)
		}
	}
	if len(req.Memo) > maxMemoSize {
		return nil, fmt.Errorf("memo too large: %v bytes (maxsize=%v)", len(req.Memo), maxMemoSize)
	}
	if len(req.DescriptionHash) > 0 && len(req.DescriptionHash) != 32 {
		return nil, fmt.Errorf("description hash is %v bytes, must be 32", len(req.DescriptionHash))
	}
	maxAmt := btcutil.Amount(btcutil.SatoshiPerBitcoin * 100000)
	if value.ToSatoshis() > maxAmt {
		return nil, fmt.Errorf("invoice amount %v is too large, max is %v", value.ToSatoshis(), maxAmt)
	}
	expiry := defaultInvoiceExpiry
	if req.IsAmp {
		expiry = defaultAMPExpiry
	}
	if req.Expiry > 0 {
		if float64(req.Expiry) > maxInvoiceExpiry.Seconds() {
			return nil, fmt.Errorf("expiry of %v seconds greater than max expiry of %v seconds",
				float64(req.Expiry), maxInvoiceExpiry.Seconds())
		}
		expiry = time.Duration(req.Expiry) * time.Second
	}

	inv := &invoice{
		preimage:  preimage,
		hash:      sha256.Sum256(preimage[:]),
		memo:      req.Memo,
		descHash:  append([]byte(nil), req.DescriptionHash...),
		valueMsat: int64(value),
		created:   n.cfg.now(),
		expiry:    expiry,
		private:   req.Private,
		state:     lnrpc.Invoice_OPEN,
		amp:       req.IsAmp,
	}
	if _, err := rand.Read(inv.payAddr[:]); err != nil {
		return nil, fmt.Errorf("payment address: %w", err)
	}
	var hints []zpay32.HopHint
	if req.Private {
		n.mu.Lock()
		hints = n.routeHintsLocked()
		n.mu.Unlock()
	}
	inv.payReq, err = encodeBolt11(n.params, n.key, bolt11Params{
		hash: inv.hash, payAddr: inv.payAddr, valueMsat: inv.valueMsat,
		memo: inv.memo, descHash: inv.descHash, created: inv.created, expiry: inv.expiry,
		routeHints: hints,
	})
	if err != nil {
		return nil, err
	}

	n.mu.Lock()
	defer n.mu.Unlock()
	if _, dup := n.invoices[inv.hash]; dup {
		return nil, errDuplicateInvoice
	}
	inv.addIndex = uint64(len(n.byAdd) + 1)
	n.invoices[inv.hash] = inv
	n.byAdd = append(n.byAdd, inv)
	n.emitLocked(inv.rpc())
	return &lnrpc.AddInvoiceResponse{
		RHash:          inv.hash[:],
		PaymentRequest: inv.payReq,
		AddIndex:       inv.addIndex,
		PaymentAddr:    inv.payAddr[:],
	}, nil
}

// lookupInvoice does lnd's LookupInvoice.
func (n *Node) lookupInvoice(req *lnrpc.PaymentHash) (*lnrpc.Invoice, error) {
	hash, err := hashFromRequest(req)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.byAdd) == 0 {
		return nil, statusNotFound(errNoInvoices)
	}
	inv, ok := n.invoices[hash]
	if !ok {
		return nil, statusNotFound(errInvoiceNotFound)
	}
	n.refreshLocked(inv)
	return inv.rpc(), nil
}

// listInvoices does lnd's ListInvoices (without the creation date
// filters): up to num_max_invoices (default 100) invoices after
// index_offset, or before it (from the latest if 0) when reversed, in add
// order either way.
func (n *Node) listInvoices(req *lnrpc.ListInvoiceRequest) *lnrpc.ListInvoiceResponse {
	limit := req.NumMaxInvoices
	if limit == 0 {
		limit = 100
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var picked []*invoice
	if req.Reversed {
		end := uint64(len(n.byAdd))
		if req.IndexOffset > 0 {
			end = min(req.IndexOffset-1, end)
		}
		for i := int(end) - 1; i >= 0 && uint64(len(picked)) < limit; i-- {
			if inv := n.byAdd[i]; n.listedLocked(inv, req.PendingOnly) {
				picked = append(picked, inv)
			}
		}
		slices.Reverse(picked)
	} else {
		for _, inv := range n.byAdd[min(req.IndexOffset, uint64(len(n.byAdd))):] {
			if uint64(len(picked)) == limit {
				break
			}
			if n.listedLocked(inv, req.PendingOnly) {
				picked = append(picked, inv)
			}
		}
	}
	resp := &lnrpc.ListInvoiceResponse{}
	for _, inv := range picked {
		resp.Invoices = append(resp.Invoices, inv.rpc())
	}
	if len(picked) > 0 {
		resp.FirstIndexOffset = picked[0].addIndex
		resp.LastIndexOffset = picked[len(picked)-1].addIndex
	}
	return resp
}

// listedLocked refreshes inv and reports whether a listing of pendingOnly
// shows it: pending invoices are neither settled nor canceled. n.mu must be
// held.
func (n *Node) listedLocked(inv *invoice, pendingOnly bool) bool {
	n.refreshLocked(inv)
	return !pendingOnly || inv.state == lnrpc.Invoice_OPEN || inv.state == lnrpc.Invoice_ACCEPTED
}

// hashFromRequest reads r_hash_str or r_hash as lnd does.
func hashFromRequest(req *lnrpc.PaymentHash) ([32]byte, error) {
	var hash [32]byte
	rHash := req.RHash
	if req.RHashStr != "" { // deprecated, but lnd still honours it
		b, err := hex.DecodeString(req.RHashStr)
		if err != nil {
			return hash, err
		}
		rHash = b
	}
	if len(rHash) != 0 && len(rHash) != 32 {
		return hash, fmt.Errorf(errPaymentHashLength, len(rHash))
	}
	copy(hash[:], rHash)
	return hash, nil
}

// Settle marks one of the node's own invoices (from AddInvoice) paid in
// full, as if a payer's HTLC had arrived: state SETTLED, the next
// settle_index, settle_date and amt_paid set, and a SETTLED update on every
// SubscribeInvoices stream. An AMP invoice (is_amp) is paid by one HTLC
// set, as lnd v0.21 reports it (see rpc). It fails for unknown, already
// settled and CANCELED (expired) invoices.
func (n *Node) Settle(paymentHash [32]byte) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	inv, ok := n.invoices[paymentHash]
	if !ok {
		return fmt.Errorf("lndtest: settle %x: %w", paymentHash[:], errInvoiceNotFound)
	}
	n.refreshLocked(inv)
	switch inv.state {
	case lnrpc.Invoice_SETTLED:
		return fmt.Errorf("lndtest: settle %x: %w", paymentHash[:], errInvoiceSettled)
	case lnrpc.Invoice_CANCELED:
		return fmt.Errorf("lndtest: settle %x: %w", paymentHash[:], errInvoiceCanceled)
	}
	inv.state = lnrpc.Invoice_SETTLED
	inv.settled = n.cfg.now()
	inv.amtPaidMsat = inv.valueMsat
	inv.settleIndex = uint64(len(n.bySettle) + 1)
	n.bySettle = append(n.bySettle, inv)
	n.emitLocked(inv.rpc())
	return nil
}
