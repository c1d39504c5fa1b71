package payment

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// Refund outcomes of a session close (draft-lightning-session-00 §8.5).
const (
	RefundSucceeded = "succeeded"
	RefundFailed    = "failed"
	RefundSkipped   = "skipped"
)

// ReceiptHeader is the response header that carries a Receipt.
const ReceiptHeader = "Payment-Receipt"

// statusSuccess is the only receipt status (draft-httpauth-payment-00 §5.3.1).
const statusSuccess = "success"

// maxSafeInteger is 2^53-1: integers up to it survive a JSON reader that
// holds numbers as doubles (RFC 7493 §2.2); no sats amount comes near it.
const maxSafeInteger = 1<<53 - 1

// Receipt is a Payment-Receipt (draft-httpauth-payment-00 §5.3; status is
// always "success", receipts go on 2xx answers only, with Cache-Control:
// private) with the fields of the Lightning intents.
type Receipt struct {
	// Method is the payment method: "lightning".
	Method string
	// Reference is the payment hash in lowercase hex, never the preimage
	// (charge, draft-lightning-charge-00 §10.2), or the session id
	// (session, draft-lightning-session-00 §15).
	Reference string
	// Timestamp is the settlement time (RFC 3339, whole seconds UTC).
	Timestamp time.Time
	// ChallengeID is the id of the answered challenge; required for charge
	// receipts, optional otherwise.
	ChallengeID string
	// RefundStatus is, for a session close, RefundSucceeded, RefundFailed
	// or RefundSkipped; empty otherwise. When set, refundSats is written
	// too, even 0 (the draft requires both on a close receipt).
	RefundStatus string
	// RefundSats is the refunded (or attempted) amount of a close.
	RefundSats int64
	// Usage, set only in the payment-receipt event that ends a stream
	// (draft-lightning-session-00 §15.1), adds spent and units.
	Usage *Usage
}

// Usage is what a stream consumed (draft-lightning-session-00 §15.1).
type Usage struct {
	// Spent is the satoshis drawn from the session during the stream.
	Spent int64
	// Units is the number of units (chunks) delivered.
	Units int64
}

// Encode returns the Payment-Receipt header value: base64url (unpadded)
// of the receipt's JSON (draft-lightning-charge-00 §6). Errors are
// ErrInvalidParameter.
func (r *Receipt) Encode() (string, error) {
	b, err := r.JSON()
	if err != nil {
		return "", err
	}
	return EncodeBase64URL(b), nil
}

// JSON returns the receipt's JSON, members sorted as RFC 8785 does: the
// data of the payment-receipt SSE event, and what Encode encodes.
func (r *Receipt) JSON() ([]byte, error) {
	for _, s := range []string{r.Method, r.Reference, r.ChallengeID} {
		if !utf8.ValidString(s) {
			return nil, errdetail.New(ErrInvalidParameter, "receipt text is not UTF-8")
		}
	}
	if r.Method == "" || r.Reference == "" || r.Timestamp.IsZero() {
		return nil, errdetail.New(ErrInvalidParameter, "receipt needs method, reference and timestamp")
	}
	members := []member{
		{"method", stringValue(r.Method)},
		{"reference", stringValue(r.Reference)},
		{"status", stringValue(statusSuccess)},
		{"timestamp", stringValue(FormatTime(r.Timestamp))},
	}
	members = appendOptional(members, "challengeId", r.ChallengeID)
	switch r.RefundStatus {
	case "":
		if r.RefundSats != 0 {
			return nil, errdetail.New(ErrInvalidParameter, "refundSats without refundStatus")
		}
	case RefundSucceeded, RefundFailed, RefundSkipped:
		if r.RefundStatus == RefundSkipped && r.RefundSats != 0 {
			return nil, errdetail.New(ErrInvalidParameter, "refund skipped with refundSats > 0")
		}
		members = append(members, member{"refundStatus", stringValue(r.RefundStatus)})
		n, err := countValue("refundSats", r.RefundSats)
		if err != nil {
			return nil, err
		}
		members = append(members, n)
	default:
		return nil, errdetail.New(ErrInvalidParameter, "unknown refundStatus "+errdetail.Quote(r.RefundStatus))
	}
	if r.Usage != nil {
		for _, f := range [...]struct {
			name string
			n    int64
		}{{"spent", r.Usage.Spent}, {"units", r.Usage.Units}} {
			n, err := countValue(f.name, f.n)
			if err != nil {
				return nil, err
			}
			members = append(members, n)
		}
	}
	v := objectValue(members...)
	return appendCanonical(nil, &v)
}

// countValue is a JSON member holding a count of satoshis or units:
// 0 to 2^53-1, so that every JSON reader gets it exactly.
func countValue(name string, n int64) (member, error) {
	if n < 0 || n > maxSafeInteger {
		return member{}, errdetail.New(ErrInvalidParameter, name+" out of range")
	}
	return member{name, value{kind: kindNumber, str: strconv.FormatInt(n, 10)}}, nil
}

// ParseReceipt decodes a Payment-Receipt header value, for clients and
// tests. Errors are ErrMalformed.
func ParseReceipt(header string) (Receipt, error) {
	if len(header) > MaxCredentialLen {
		return Receipt{}, errdetail.New(ErrMalformed, "receipt too long")
	}
	b, err := DecodeBase64URL(header)
	if err != nil {
		return Receipt{}, err
	}
	return ParseReceiptJSON(b)
}

// ParseReceiptJSON reads a receipt's JSON (the Payment-Receipt header
// decoded, or a payment-receipt SSE event): status must be "success";
// method, reference and an RFC 3339 timestamp are required; challengeId,
// refundStatus with refundSats, and spent with units are read when present.
// Unknown members are ignored. Errors are ErrMalformed.
func ParseReceiptJSON(data []byte) (Receipt, error) {
	v, err := parseJSON(string(data))
	if err != nil {
		return Receipt{}, err
	}
	if v.kind != kindObject {
		return Receipt{}, errdetail.New(ErrMalformed, "receipt is not a JSON object")
	}
	var r Receipt
	err = readFields(&v, []field{
		{"status", true, func(s string) error {
			if s != statusSuccess {
				return errdetail.New(ErrMalformed, "not \"success\"")
			}
			return nil
		}},
		{"method", true, func(s string) error { r.Method = s; return nil }},
		{"reference", true, func(s string) error { r.Reference = s; return nil }},
		{"timestamp", true, func(s string) (err error) {
			r.Timestamp, err = time.Parse(time.RFC3339, s)
			return err
		}},
		{"challengeId", false, func(s string) error { r.ChallengeID = s; return nil }},
		{"refundStatus", false, func(s string) error {
			switch s {
			case RefundSucceeded, RefundFailed, RefundSkipped:
				r.RefundStatus = s
				return nil
			}
			return errdetail.New(ErrMalformed, "unknown refund status")
		}},
	})
	if err != nil {
		return Receipt{}, err
	}
	if r.RefundSats, err = readCount(&v, "refundSats", false); err != nil {
		return Receipt{}, err
	}
	_, hasSpent := v.get("spent")
	_, hasUnits := v.get("units")
	if hasSpent || hasUnits {
		var u Usage
		if u.Spent, err = readCount(&v, "spent", true); err != nil {
			return Receipt{}, err
		}
		if u.Units, err = readCount(&v, "units", true); err != nil {
			return Receipt{}, err
		}
		r.Usage = &u
	}
	return r, nil
}

// readCount reads a non-negative integer member of object v, exactly
// (beyond 2^53 too: Aperture writes int64 sats as JSON numbers).
func readCount(v *value, name string, required bool) (int64, error) {
	m, ok := v.get(name)
	switch {
	case !ok && required:
		return 0, errdetail.New(ErrMalformed, "missing "+name)
	case !ok:
		return 0, nil
	case m.kind != kindNumber:
		return 0, errdetail.New(ErrMalformed, name+" is not a number")
	}
	n, err := strconv.ParseInt(m.str, 10, 64)
	if err != nil || n < 0 {
		return 0, errdetail.New(ErrMalformed, name+" is not a non-negative integer")
	}
	return n, nil
}

// SessionEvent is the data of the payment-need-topup and session-timeout
// SSE events of a stream whose session ran dry
// (draft-lightning-session-00 §13.1, §13.2).
type SessionEvent struct {
	// SessionID is the session id (hex payment hash of the deposit).
	SessionID string
	// BalanceSpent is the satoshis spent from the deposit.
	BalanceSpent int64
	// BalanceRequired is the satoshis the next unit needs.
	BalanceRequired int64
}

// JSON returns the event's data. Errors are ErrInvalidParameter.
func (e *SessionEvent) JSON() ([]byte, error) {
	if e.SessionID == "" || !utf8.ValidString(e.SessionID) {
		return nil, errdetail.New(ErrInvalidParameter, "event needs a session id")
	}
	spent, err := countValue("balanceSpent", e.BalanceSpent)
	if err != nil {
		return nil, err
	}
	required, err := countValue("balanceRequired", e.BalanceRequired)
	if err != nil {
		return nil, err
	}
	v := objectValue(member{"sessionId", stringValue(e.SessionID)}, spent, required)
	return appendCanonical(nil, &v)
}

// ParseSessionEvent reads the data of a payment-need-topup or
// session-timeout event. Errors are ErrMalformed.
func ParseSessionEvent(data []byte) (SessionEvent, error) {
	v, err := parseJSON(string(data))
	if err != nil {
		return SessionEvent{}, err
	}
	if v.kind != kindObject {
		return SessionEvent{}, errdetail.New(ErrMalformed, "event is not a JSON object")
	}
	var e SessionEvent
	if err := readFields(&v, []field{{"sessionId", true, func(s string) error { e.SessionID = s; return nil }}}); err != nil {
		return SessionEvent{}, err
	}
	if e.BalanceSpent, err = readCount(&v, "balanceSpent", true); err != nil {
		return SessionEvent{}, err
	}
	if e.BalanceRequired, err = readCount(&v, "balanceRequired", true); err != nil {
		return SessionEvent{}, err
	}
	return e, nil
}
