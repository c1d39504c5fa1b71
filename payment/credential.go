package payment

import (
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lightningcaddy/caddy-lightning/internal/authparam"
	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// MaxCredentialLen bounds the credential token read from an Authorization
// value. Servers MUST handle credentials of at least 4 KB
// (draft-httpauth-payment-00 §9.4); a session open credential echoes a
// request holding an invoice and carries a second invoice, so 16 KiB.
const MaxCredentialLen = 16 << 10

// Credential is a Payment credential (draft-httpauth-payment-00 §5.2): the
// echo of the challenge it answers, the optional payer id and the
// method-specific payload. Never log one: it carries a payment preimage.
type Credential struct {
	// Challenge is the echoed challenge. ID, Realm, Method, Intent and
	// Request are always non-empty; the others are as the client sent
	// them (Alby omits opaque, digest and description).
	Challenge Challenge
	// Source is the optional payer identifier (a DID); never required.
	Source string
	// Payload is the payload JSON object as sent. See ChargePayload and
	// SessionPayload.
	Payload json.RawMessage
}

// ParseAuthorization finds the one Payment credential among all the
// Authorization values of a request and parses it. The scheme is matched
// in any case (RFC 9110 §11.1), and values joined by commas into one line
// are split again. It returns ErrNoCredential if there is none,
// ErrMultipleCredentials if there are several (draft-httpauth-payment-00
// Appendix B, "Multiple Payment Options": SHOULD answer 400), and ErrMalformed if the one credential does not parse
// (see ParseCredential) or its value exceeds MaxCredentialLen.
func ParseAuthorization(values []string) (Credential, error) {
	token, found := "", 0
	for _, v := range values {
		for rest := v; rest != ""; {
			item := rest
			if i := strings.IndexByte(rest, ','); i >= 0 {
				item, rest = rest[:i], rest[i+1:]
			} else {
				rest = ""
			}
			t, ok := cutPaymentScheme(authparam.TrimOWS(item))
			if !ok {
				continue
			}
			if found++; found > 1 {
				return Credential{}, ErrMultipleCredentials
			}
			token = t
		}
	}
	if found == 0 {
		return Credential{}, ErrNoCredential
	}
	return ParseCredential(token)
}

// StripAuthorization returns an Authorization value without its Payment
// credentials (the items ParseAuthorization reads), for passing a request
// on without them: v itself if it has none, "" if nothing else is left.
func StripAuthorization(v string) string {
	var kept []string
	dropped := false
	for item := range strings.SplitSeq(v, ",") {
		if _, ok := cutPaymentScheme(authparam.TrimOWS(item)); ok {
			dropped = true
			continue
		}
		kept = append(kept, item)
	}
	if !dropped {
		return v
	}
	return authparam.TrimOWS(strings.Join(kept, ","))
}

// cutPaymentScheme returns the token of an item "Payment <token>" (the
// token may be empty, which ParseCredential refuses).
func cutPaymentScheme(item string) (string, bool) {
	if len(item) < len(Scheme) || !strings.EqualFold(item[:len(Scheme)], Scheme) {
		return "", false
	}
	rest := item[len(Scheme):]
	if rest != "" && !authparam.IsOWS(rest[0]) {
		return "", false
	}
	return authparam.TrimOWS(rest), true
}

// ParseCredential decodes a credential token: base64url (padding
// accepted) of a JSON object with a "challenge" object whose id, realm,
// method, intent and request are non-empty strings (expires, digest, opaque
// and description optional strings), an optional "source" string and a
// "payload" object. Unknown members are ignored; duplicate members, invalid
// UTF-8 and tokens longer than MaxCredentialLen are refused. Errors are
// ErrMalformed.
func ParseCredential(token string) (Credential, error) {
	if token == "" {
		return Credential{}, errdetail.New(ErrMalformed, "empty credential")
	}
	if len(token) > MaxCredentialLen {
		return Credential{}, errdetail.New(ErrMalformed, "credential longer than "+strconv.Itoa(MaxCredentialLen))
	}
	text, err := decodeBase64URLString(token)
	if err != nil {
		return Credential{}, err
	}
	v, err := parseJSON(text)
	if err != nil {
		return Credential{}, err
	}
	if v.kind != kindObject {
		return Credential{}, errdetail.New(ErrMalformed, "credential is not a JSON object")
	}
	var c Credential
	ch, ok := v.get("challenge")
	if !ok || ch.kind != kindObject {
		return Credential{}, errdetail.New(ErrMalformed, "credential has no challenge object")
	}
	e := &c.Challenge
	nonEmpty := func(dst *string) func(string) error {
		return func(s string) error {
			if s == "" {
				return errdetail.New(ErrMalformed, "empty")
			}
			*dst = s
			return nil
		}
	}
	optional := func(dst *string) func(string) error { return func(s string) error { *dst = s; return nil } }
	err = readFields(ch, []field{
		{"id", true, nonEmpty(&e.ID)},
		{"realm", true, nonEmpty(&e.Realm)},
		{"method", true, nonEmpty(&e.Method)},
		{"intent", true, nonEmpty(&e.Intent)},
		{"request", true, nonEmpty(&e.Request)},
		{"expires", false, optional(&e.Expires)},
		{"digest", false, optional(&e.Digest)},
		{"opaque", false, optional(&e.Opaque)},
		{"description", false, optional(&e.Description)},
	})
	if err != nil {
		return Credential{}, errdetail.New(ErrMalformed, "challenge "+errdetail.Detail(err))
	}
	if err := readFields(&v, []field{{"source", false, optional(&c.Source)}}); err != nil {
		return Credential{}, err
	}
	p, ok := v.get("payload")
	if !ok || p.kind != kindObject {
		return Credential{}, errdetail.New(ErrMalformed, "credential has no payload object")
	}
	c.Payload = json.RawMessage(p.raw)
	return c, nil
}

// Format returns the Authorization value presenting c:
// "Payment " + base64url of its RFC 8785 JSON, with the echo's empty
// optional fields and an empty source left out (as Alby sends it). The
// payload must be a JSON object. Errors are ErrInvalidParameter.
func (c *Credential) Format() (string, error) {
	p, err := parseJSON(string(c.Payload))
	if err != nil || p.kind != kindObject {
		return "", errdetail.New(ErrInvalidParameter, "payload is not a JSON object")
	}
	e := &c.Challenge
	var echo []member
	for _, f := range [...]struct{ name, value string }{
		{"id", e.ID}, {"realm", e.Realm}, {"method", e.Method}, {"intent", e.Intent}, {"request", e.Request},
		{"expires", e.Expires}, {"digest", e.Digest}, {"opaque", e.Opaque}, {"description", e.Description},
	} {
		if !utf8.ValidString(f.value) {
			return "", errdetail.New(ErrInvalidParameter, f.name+" is not UTF-8")
		}
		if f.value != "" {
			echo = append(echo, member{f.name, stringValue(f.value)})
		}
	}
	if len(echo) < 5 || e.ID == "" || e.Realm == "" || e.Method == "" || e.Intent == "" || e.Request == "" {
		return "", errdetail.New(ErrInvalidParameter, "echo needs id, realm, method, intent and request")
	}
	members := []member{{"challenge", objectValue(echo...)}, {"payload", p}}
	if c.Source != "" {
		if !utf8.ValidString(c.Source) {
			return "", errdetail.New(ErrInvalidParameter, "source is not UTF-8")
		}
		members = append(members, member{"source", stringValue(c.Source)})
	}
	v := objectValue(members...)
	b, err := appendCanonical(nil, &v)
	if err != nil {
		return "", errdetail.New(ErrInvalidParameter, errdetail.Detail(err))
	}
	token := EncodeBase64URL(b)
	if len(token) > MaxCredentialLen {
		return "", errdetail.New(ErrInvalidParameter, "credential longer than "+strconv.Itoa(MaxCredentialLen))
	}
	return Scheme + " " + token, nil
}

// ChargePayload is the payload of a Lightning charge credential
// (draft-lightning-charge-00 §8).
type ChargePayload struct {
	// Preimage is the payment preimage (wire: 64 hex digits; the spec says
	// lowercase, wallets may send uppercase, both are read).
	Preimage [32]byte
}

// ChargePayload reads the payload of a charge credential. Unknown members
// are ignored. Errors are ErrMalformed.
func (c *Credential) ChargePayload() (ChargePayload, error) {
	v, err := c.payload()
	if err != nil {
		return ChargePayload{}, err
	}
	var p ChargePayload
	err = readFields(&v, []field{{"preimage", true, func(s string) (err error) { p.Preimage, err = parsePreimage(s); return }}})
	return p, err
}

// Session actions (draft-lightning-session-00 §8).
const (
	ActionOpen   = "open"
	ActionBearer = "bearer"
	ActionTopUp  = "topUp"
	ActionClose  = "close"
)

// SessionPayload is the payload of a Lightning session credential
// (draft-lightning-session-00 §8.2-§8.5).
type SessionPayload struct {
	// Action is ActionOpen, ActionBearer, ActionTopUp or ActionClose.
	Action string
	// Preimage is the preimage the action proves: of the deposit for
	// open, bearer and close ("preimage"), of the top-up invoice for topUp
	// ("topUpPreimage").
	Preimage [32]byte
	// SessionID is the session's id, the payment hash of its opening
	// deposit (bearer, topUp, close; wire: 64 hex digits).
	SessionID [32]byte
	// ReturnInvoice is the client's amountless BOLT 11 invoice for the
	// refund (open only).
	ReturnInvoice string
}

// SessionPayload reads the payload of a session credential: the action
// and the members it requires (open: preimage, returnInvoice; bearer and
// close: sessionId, preimage; topUp: sessionId, topUpPreimage). Unknown
// members are ignored. A return invoice that is not BOLT 11 text is an
// ErrInvalidReturnInvoice; other errors are ErrMalformed.
func (c *Credential) SessionPayload() (SessionPayload, error) {
	v, err := c.payload()
	if err != nil {
		return SessionPayload{}, err
	}
	var p SessionPayload
	if err := readFields(&v, []field{{"action", true, func(s string) error { p.Action = s; return nil }}}); err != nil {
		return SessionPayload{}, err
	}
	preimage := field{"preimage", true, func(s string) (err error) { p.Preimage, err = parsePreimage(s); return }}
	sessionID := field{"sessionId", true, func(s string) (err error) { p.SessionID, err = parsePreimage(s); return }}
	var fields []field
	switch p.Action {
	case ActionOpen:
		fields = []field{preimage, {"returnInvoice", true, func(s string) error { p.ReturnInvoice = s; return nil }}}
	case ActionBearer, ActionClose:
		fields = []field{sessionID, preimage}
	case ActionTopUp:
		fields = []field{sessionID, {"topUpPreimage", true, preimage.set}}
	default:
		return SessionPayload{}, errdetail.New(ErrMalformed, "unknown session action "+errdetail.Quote(p.Action))
	}
	if err := readFields(&v, fields); err != nil {
		return SessionPayload{}, err
	}
	if p.Action == ActionOpen && !isInvoiceText(p.ReturnInvoice) {
		return SessionPayload{}, errdetail.New(ErrInvalidReturnInvoice, "not BOLT 11 text")
	}
	return p, nil
}

// SessionPayloadJSON returns the payload JSON of a session action, for
// clients and tests (see SessionPayload for the members of each action).
func SessionPayloadJSON(p SessionPayload) (json.RawMessage, error) {
	pre := stringValue(hex.EncodeToString(p.Preimage[:]))
	id := stringValue(hex.EncodeToString(p.SessionID[:]))
	var members []member
	switch p.Action {
	case ActionOpen:
		members = []member{{"preimage", pre}, {"returnInvoice", stringValue(p.ReturnInvoice)}}
	case ActionBearer, ActionClose:
		members = []member{{"sessionId", id}, {"preimage", pre}}
	case ActionTopUp:
		members = []member{{"sessionId", id}, {"topUpPreimage", pre}}
	default:
		return nil, errdetail.New(ErrInvalidParameter, "unknown session action "+errdetail.Quote(p.Action))
	}
	members = append(members, member{"action", stringValue(p.Action)})
	if p.Action == ActionOpen && !isInvoiceText(p.ReturnInvoice) {
		return nil, errdetail.New(ErrInvalidParameter, "return invoice is not BOLT 11 text")
	}
	v := objectValue(members...)
	b, err := appendCanonical(nil, &v)
	return b, err
}

// ChargePayloadJSON returns the payload JSON of a charge credential,
// {"preimage":"<lowercase hex>"}, for clients and tests.
func ChargePayloadJSON(preimage [32]byte) json.RawMessage {
	return json.RawMessage(`{"preimage":"` + hex.EncodeToString(preimage[:]) + `"}`)
}

func (c *Credential) payload() (value, error) {
	v, err := parseJSON(string(c.Payload))
	if err != nil {
		return value{}, err
	}
	if v.kind != kindObject {
		return value{}, errdetail.New(ErrMalformed, "payload is not a JSON object")
	}
	return v, nil
}

// parsePreimage reads 64 hex digits of either case.
func parsePreimage(s string) ([32]byte, error) {
	var p [32]byte
	var buf [64]byte // hex.Decode wants bytes; this keeps them off the heap
	if len(s) != len(buf) {
		return p, errdetail.New(ErrMalformed, "not 64 hex digits")
	}
	copy(buf[:], s)
	if _, err := hex.Decode(p[:], buf[:]); err != nil {
		return [32]byte{}, errdetail.New(ErrMalformed, "not 64 hex digits")
	}
	return p, nil
}
