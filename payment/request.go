package payment

import (
	"encoding/hex"
	"strconv"
	"unicode/utf8"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// Lightning networks a request may name (draft-lightning-charge-00 §7.2).
const (
	NetworkMainnet = "mainnet"
	NetworkRegtest = "regtest"
	NetworkSignet  = "signet"
)

// currencySat is the only currency of the Lightning requests: satoshis.
const currencySat = "sat"

// Size limits of request fields.
const (
	// maxRequestLen bounds a request auth-param (and so the JSON decoded
	// from it).
	maxRequestLen = MaxChallengeLen
	// maxInvoiceLen bounds a BOLT 11 invoice: longer than any invoice a
	// node creates with a handful of route hints.
	maxInvoiceLen = 4096
)

// ChargeRequest is the request of a Lightning charge challenge
// (draft-lightning-charge-00 §7). Its wire form is base64url of RFC 8785
// JSON in which every value is a string and currency is "sat".
type ChargeRequest struct {
	// Amount is the price in satoshis, > 0 (wire: decimal string).
	Amount int64
	// Description is the invoice memo (§7.1), optional; not the
	// description auth-param.
	Description string
	// Recipient is optional (§7.1); Lightning servers leave it empty.
	Recipient string
	// ExternalID is the merchant's reference (§7.1), optional; a server
	// may put a route id here to bind the challenge to a route.
	ExternalID string
	// MethodDetails holds the invoice and its convenience fields (§7.2).
	MethodDetails MethodDetails
}

// MethodDetails is the methodDetails object of a charge request
// (draft-lightning-charge-00 §7.2).
type MethodDetails struct {
	// Invoice is the BOLT 11 payment request, required and authoritative.
	Invoice string
	// PaymentHash is the invoice's payment hash (wire: lowercase hex).
	// This package always sends it: verification needs it.
	PaymentHash [32]byte
	// Network is "mainnet", "regtest" or "signet"; empty means absent
	// (mainnet).
	Network string
}

// SessionRequest is the request of a Lightning session challenge
// (draft-lightning-session-00 §7). Its wire form is base64url of RFC 8785
// JSON in which every value is a string and currency is "sat".
type SessionRequest struct {
	// Amount is the price of one unit of service in satoshis, > 0.
	Amount int64
	// Description is display text, optional.
	Description string
	// UnitType names the unit ("token", "request"), optional.
	UnitType string
	// DepositInvoice is the BOLT 11 invoice to pay to open or top up a
	// session; empty in bearer and close challenges.
	DepositInvoice string
	// PaymentHash is the deposit invoice's payment hash, required.
	PaymentHash [32]byte
	// DepositAmount is the deposit invoice's amount in satoshis; 0 means
	// absent. This package's verifier requires it with a DepositInvoice.
	DepositAmount int64
	// IdleTimeout is the server's idle timeout in seconds; 0 means absent.
	IdleTimeout int64
}

// Encode returns the request auth-param: base64url (unpadded) of the
// request's RFC 8785 JSON. Errors are ErrInvalidParameter.
func (r *ChargeRequest) Encode() (string, error) {
	if err := checkAmount(r.Amount, "amount"); err != nil {
		return "", err
	}
	if err := checkInvoice(r.MethodDetails.Invoice, true); err != nil {
		return "", err
	}
	if err := checkNetwork(r.MethodDetails.Network); err != nil {
		return "", err
	}
	details := []member{
		{"invoice", stringValue(r.MethodDetails.Invoice)},
		{"paymentHash", stringValue(hex.EncodeToString(r.MethodDetails.PaymentHash[:]))},
	}
	details = appendOptional(details, "network", r.MethodDetails.Network)
	members := []member{
		{"amount", stringValue(strconv.FormatInt(r.Amount, 10))},
		{"currency", stringValue(currencySat)},
		{"methodDetails", objectValue(details...)},
	}
	members = appendOptional(members, "description", r.Description)
	members = appendOptional(members, "recipient", r.Recipient)
	members = appendOptional(members, "externalId", r.ExternalID)
	return encodeRequest(members)
}

// Encode returns the request auth-param: base64url (unpadded) of the
// request's RFC 8785 JSON. Errors are ErrInvalidParameter.
func (r *SessionRequest) Encode() (string, error) {
	if err := checkAmount(r.Amount, "amount"); err != nil {
		return "", err
	}
	if err := checkInvoice(r.DepositInvoice, false); err != nil {
		return "", err
	}
	if r.DepositAmount != 0 {
		if err := checkAmount(r.DepositAmount, "depositAmount"); err != nil {
			return "", err
		}
	}
	if r.IdleTimeout != 0 {
		if err := checkAmount(r.IdleTimeout, "idleTimeout"); err != nil {
			return "", err
		}
	}
	members := []member{
		{"amount", stringValue(strconv.FormatInt(r.Amount, 10))},
		{"currency", stringValue(currencySat)},
		{"paymentHash", stringValue(hex.EncodeToString(r.PaymentHash[:]))},
	}
	members = appendOptional(members, "description", r.Description)
	members = appendOptional(members, "unitType", r.UnitType)
	members = appendOptional(members, "depositInvoice", r.DepositInvoice)
	if r.DepositAmount != 0 {
		members = append(members, member{"depositAmount", stringValue(strconv.FormatInt(r.DepositAmount, 10))})
	}
	if r.IdleTimeout != 0 {
		members = append(members, member{"idleTimeout", stringValue(strconv.FormatInt(r.IdleTimeout, 10))})
	}
	return encodeRequest(members)
}

func appendOptional(members []member, name, s string) []member {
	if s == "" {
		return members
	}
	return append(members, member{name, stringValue(s)})
}

func encodeRequest(members []member) (string, error) {
	v := objectValue(members...)
	for _, m := range members {
		if m.val.kind == kindString && !utf8.ValidString(m.val.str) {
			return "", errdetail.New(ErrInvalidParameter, m.name+" is not UTF-8")
		}
	}
	b, err := appendCanonical(nil, &v)
	if err != nil {
		return "", err
	}
	s := EncodeBase64URL(b)
	if len(s) > maxRequestLen {
		return "", errdetail.New(ErrInvalidParameter, "request longer than "+strconv.Itoa(maxRequestLen))
	}
	return s, nil
}

// DecodeChargeRequest decodes a charge request auth-param. It requires
// what ChargeRequest.Encode writes (amount, currency "sat", methodDetails
// with invoice and a lowercase hex paymentHash, every value a string) and
// ignores unknown members. Errors are ErrMalformed.
func DecodeChargeRequest(s string) (ChargeRequest, error) {
	v, err := decodeRequest(s)
	if err != nil {
		return ChargeRequest{}, err
	}
	var r ChargeRequest
	var details *value
	err = readFields(&v, []field{
		{"amount", true, func(x string) (err error) { r.Amount, err = parseAmount(x); return }},
		{"currency", true, checkCurrency},
		{"description", false, func(x string) error { r.Description = x; return nil }},
		{"recipient", false, func(x string) error { r.Recipient = x; return nil }},
		{"externalId", false, func(x string) error { r.ExternalID = x; return nil }},
	})
	if err != nil {
		return ChargeRequest{}, err
	}
	if d, ok := v.get("methodDetails"); ok && d.kind == kindObject {
		details = d
	} else {
		return ChargeRequest{}, errdetail.New(ErrMalformed, "request has no methodDetails object")
	}
	md := &r.MethodDetails
	err = readFields(details, []field{
		{"invoice", true, func(x string) error { md.Invoice = x; return checkInvoice(x, true) }},
		{"paymentHash", true, func(x string) (err error) { md.PaymentHash, err = parseHash(x); return }},
		{"network", false, func(x string) error { md.Network = x; return checkNetwork(x) }},
	})
	if err != nil {
		return ChargeRequest{}, err
	}
	return r, nil
}

// DecodeSessionRequest decodes a session request auth-param. It requires
// what SessionRequest.Encode writes (amount, currency "sat", a lowercase
// hex paymentHash, every value a string) and ignores unknown members.
// Errors are ErrMalformed.
func DecodeSessionRequest(s string) (SessionRequest, error) {
	v, err := decodeRequest(s)
	if err != nil {
		return SessionRequest{}, err
	}
	var r SessionRequest
	err = readFields(&v, []field{
		{"amount", true, func(x string) (err error) { r.Amount, err = parseAmount(x); return }},
		{"currency", true, checkCurrency},
		{"paymentHash", true, func(x string) (err error) { r.PaymentHash, err = parseHash(x); return }},
		{"description", false, func(x string) error { r.Description = x; return nil }},
		{"unitType", false, func(x string) error { r.UnitType = x; return nil }},
		{"depositInvoice", false, func(x string) error { r.DepositInvoice = x; return checkInvoice(x, true) }},
		{"depositAmount", false, func(x string) (err error) { r.DepositAmount, err = parseAmount(x); return }},
		{"idleTimeout", false, func(x string) (err error) { r.IdleTimeout, err = parseAmount(x); return }},
	})
	if err != nil {
		return SessionRequest{}, err
	}
	return r, nil
}

func decodeRequest(s string) (value, error) {
	if len(s) > maxRequestLen {
		return value{}, errdetail.New(ErrMalformed, "request longer than "+strconv.Itoa(maxRequestLen))
	}
	text, err := decodeBase64URLString(s)
	if err != nil {
		return value{}, err
	}
	v, err := parseJSON(text)
	if err != nil {
		return value{}, err
	}
	if v.kind != kindObject {
		return value{}, errdetail.New(ErrMalformed, "request is not a JSON object")
	}
	return v, nil
}

// field describes a string member to read from an object.
type field struct {
	name     string
	required bool
	set      func(string) error
}

// readFields reads the string members fields name from object v: a
// required one must be present, and every one present must be a string
// that set accepts. Errors are ErrMalformed.
func readFields(v *value, fields []field) error {
	for _, f := range fields {
		m, ok := v.get(f.name)
		switch {
		case !ok && f.required:
			return errdetail.New(ErrMalformed, "missing "+f.name)
		case !ok:
			continue
		case m.kind != kindString:
			return errdetail.New(ErrMalformed, f.name+" is not a string")
		}
		if err := f.set(m.str); err != nil {
			return errdetail.New(ErrMalformed, f.name+": "+errdetail.Detail(err))
		}
	}
	return nil
}

// parseAmount reads a positive decimal integer without sign or leading
// zeros that fits an int64.
func parseAmount(s string) (int64, error) {
	if s == "" || s[0] == '0' || len(s) > 18 {
		return 0, errdetail.New(ErrMalformed, "not a positive decimal integer: "+errdetail.Quote(s))
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errdetail.New(ErrMalformed, "not a positive decimal integer: "+errdetail.Quote(s))
		}
		n = n*10 + int64(s[i]-'0')
	}
	return n, nil
}

// checkAmount refuses amounts that parseAmount would not read back.
func checkAmount(n int64, name string) error {
	if n <= 0 || n > 999_999_999_999_999_999 {
		return errdetail.New(ErrInvalidParameter, name+" must be a positive integer below 10^18")
	}
	return nil
}

func checkCurrency(s string) error {
	if s != currencySat {
		return errdetail.New(ErrMalformed, "currency is not \"sat\"")
	}
	return nil
}

// parseHash reads a payment hash: 64 lowercase hex digits
// (draft-lightning-charge-00 §3).
func parseHash(s string) ([32]byte, error) {
	if !isLowerHex(s) {
		return [32]byte{}, errdetail.New(ErrMalformed, "not 64 lowercase hex digits")
	}
	return parsePreimage(s)
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkInvoice checks that s looks like a BOLT 11 invoice: letters and
// digits (bech32), at most maxInvoiceLen long. Decoding it is the caller's
// business.
func checkInvoice(s string, required bool) error {
	if s == "" && !required {
		return nil
	}
	if !isInvoiceText(s) {
		return errdetail.New(ErrInvalidParameter, "invoice is not BOLT 11 text")
	}
	return nil
}

func isInvoiceText(s string) bool {
	if s == "" || len(s) > maxInvoiceLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

func checkNetwork(s string) error {
	switch s {
	case "", NetworkMainnet, NetworkRegtest, NetworkSignet:
		return nil
	}
	return errdetail.New(ErrInvalidParameter, "network must be mainnet, regtest or signet")
}
