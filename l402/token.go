package l402

import (
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/authparam"
	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

const (
	// MaxTokenLen is the longest base64 token accepted or minted.
	MaxTokenLen = 4096

	// MaxCaveats is the most caveats a token may carry. It bounds the work
	// a crafted token can cause (each caveat costs an HMAC).
	MaxCaveats = 32

	// maxDecodedLen bounds the binary size of a token of MaxTokenLen.
	maxDecodedLen = MaxTokenLen / 4 * 3

	// DefaultLocation is the macaroon location hint of minted tokens.
	DefaultLocation = "caddy-lightning"
)

// Caveat keys and key suffixes understood by this package.
const (
	// CaveatServices is the key of the services caveat.
	CaveatServices = "services"
	// SuffixValidUntil follows the service name in an expiry caveat key.
	SuffixValidUntil = "_valid_until"
	// SuffixPrice follows the service name in a price caveat key.
	SuffixPrice = "_price"
	// SuffixIssuedAt follows the service name in the caveat that says when
	// the token was minted.
	SuffixIssuedAt = "_issued_at"
)

// Caveat is a first-party caveat key=value.
type Caveat struct {
	// Key is the condition, such as "services" or "api_valid_until".
	Key string
	// Value is everything after the first '='.
	Value string
}

// String returns the caveat condition as written into a token, "key=value".
func (c Caveat) String() string { return c.Key + "=" + c.Value }

// ParseCaveat splits a caveat condition at its first '=', trimming spaces
// and tabs around key and value; ok is false if there is no '='.
func ParseCaveat(s string) (c Caveat, ok bool) {
	key, value, ok := strings.Cut(s, "=")
	return Caveat{Key: authparam.TrimOWS(key), Value: authparam.TrimOWS(value)}, ok
}

// Service names one service and tier in a services caveat.
type Service struct {
	// Name is the service name; it must not contain ',', ':', '=' or spaces.
	Name string
	// Tier is the service tier; verification accepts any tier.
	Tier uint8
}

// ServicesCaveat returns services=<name>:<tier>,... for the given services.
func ServicesCaveat(services ...Service) Caveat {
	var b strings.Builder
	for i, s := range services {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s.Name)
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(int(s.Tier)))
	}
	return Caveat{Key: CaveatServices, Value: b.String()}
}

// ValidUntilCaveat returns <service>_valid_until=<unix seconds of t>; the
// token is accepted for the service while the check time is before t.
func ValidUntilCaveat(service string, t time.Time) Caveat {
	return Caveat{Key: service + SuffixValidUntil, Value: strconv.FormatInt(t.Unix(), 10)}
}

// IssuedAtCaveat returns <service>_issued_at=<unix seconds of t>, the time
// the token was minted; a Checker with MaxAge accepts the token for the
// service until MaxAge after it.
func IssuedAtCaveat(service string, t time.Time) Caveat {
	return Caveat{Key: service + SuffixIssuedAt, Value: strconv.FormatInt(t.Unix(), 10)}
}

// PriceCaveat returns <service>_price=<sats>, binding the token to the price
// it was bought at.
func PriceCaveat(service string, sats int64) Caveat {
	return Caveat{Key: service + SuffixPrice, Value: strconv.FormatInt(sats, 10)}
}

// validateCaveat reports whether Mint may write c: a printable key without
// '=', a printable value without spaces, and well-formed values for the
// caveats this package interprets.
func validateCaveat(c Caveat) error {
	if c.Key == "" || len(c.Key)+len(c.Value) > 512 {
		return errdetail.New(ErrInvalidCaveat, "empty or oversized caveat")
	}
	for i := 0; i < len(c.Key); i++ {
		if ch := c.Key[i]; ch <= ' ' || ch >= 0x7f || ch == '=' {
			return errdetail.New(ErrInvalidCaveat, "bad character in key "+strconv.Quote(c.Key))
		}
	}
	for i := 0; i < len(c.Value); i++ {
		if ch := c.Value[i]; ch <= ' ' || ch >= 0x7f {
			return errdetail.New(ErrInvalidCaveat, "bad character in value of "+strconv.Quote(c.Key))
		}
	}
	ok := true
	switch {
	case c.Key == CaveatServices:
		ok = validServices([]byte(c.Value))
	case strings.HasSuffix(c.Key, SuffixValidUntil), strings.HasSuffix(c.Key, SuffixPrice), strings.HasSuffix(c.Key, SuffixIssuedAt):
		_, ok = parseDecimal([]byte(c.Value))
	}
	if !ok {
		return errdetail.New(ErrInvalidCaveat, "malformed value of "+strconv.Quote(c.Key))
	}
	return nil
}

// validServices reports whether v is a well-formed services caveat value.
func validServices(v []byte) bool {
	_, err := servicesContain(v, "")
	return err == nil
}

// servicesContain reports whether the services caveat value v lists name.
// It fails if any entry is not <name>:<tier>, the tier 1 to 3 digits.
func servicesContain(v []byte, name string) (bool, error) {
	found := false
	for {
		entry := v
		i := indexByte(v, ',')
		if i >= 0 {
			entry = v[:i]
		}
		entry = trimOWSBytes(entry)
		c := indexByte(entry, ':')
		if c <= 0 || len(entry)-c-1 > 3 || !allDigits(entry[c+1:]) {
			return false, errdetail.New(ErrInvalidCaveat, "malformed services entry "+errdetail.Quote(string(entry)))
		}
		if string(entry[:c]) == name {
			found = true
		}
		if i < 0 {
			return found, nil
		}
		v = v[i+1:]
	}
}

// Token is a decoded but unverified token; use it for inspection only.
type Token struct {
	// Location is the macaroon's location hint (not signed).
	Location string
	// Identifier is the decoded macaroon identifier.
	Identifier Identifier
	// Caveats are the raw first-party caveat conditions, in order.
	Caveats []string
	// Signature is the macaroon signature.
	Signature [32]byte
}

// DecodeToken decodes a base64 token without verifying it. Nothing in the
// result can be trusted until a Keyring has verified the token.
func DecodeToken(token string) (*Token, error) {
	raw, err := decodeBase64(make([]byte, maxDecodedLen), make([]byte, MaxTokenLen), token)
	if err != nil {
		return nil, err
	}
	m, err := parseMacaroon(raw)
	if err != nil {
		return nil, err
	}
	id, err := DecodeIdentifier(m.id)
	if err != nil {
		return nil, err
	}
	t := &Token{Location: string(m.location), Identifier: id}
	copy(t.Signature[:], m.sig)
	it := m.caveatIter()
	for cav, ok := it.next(); ok; cav, ok = it.next() {
		t.Caveats = append(t.Caveats, string(cav))
	}
	return t, nil
}

// decodeBase64 decodes a token of the standard or URL-safe alphabet, padded
// or not, into dst (at least maxDecodedLen long), using tmp (at least
// MaxTokenLen long) as scratch. It refuses mixed alphabets, misplaced
// padding, line breaks and non-zero trailing bits.
func decodeBase64(dst, tmp []byte, s string) ([]byte, error) {
	if len(s) == 0 || len(s) > MaxTokenLen {
		return nil, errdetail.New(ErrMalformed, "token empty or longer than "+strconv.Itoa(MaxTokenLen))
	}
	n := len(s)
	for n > 0 && s[n-1] == '=' {
		n--
	}
	if pad := len(s) - n; pad > 2 || pad > 0 && len(s)%4 != 0 {
		return nil, errdetail.New(ErrMalformed, "bad base64 padding")
	}
	class := b64Class(s[:n])
	if class&b64Invalid != 0 || class&b64Std != 0 && class&b64URL != 0 {
		return nil, errdetail.New(ErrMalformed, "bad base64 character or mixed alphabets")
	}
	enc := rawStd
	if class&b64URL != 0 {
		enc = rawURL
	}
	k := copy(tmp, s[:n])
	w, err := enc.Decode(dst, tmp[:k])
	if err != nil {
		return nil, errdetail.New(ErrMalformed, "bad base64")
	}
	return dst[:w], nil
}

var (
	rawStd = base64.RawStdEncoding.Strict()
	rawURL = base64.RawURLEncoding.Strict()
)

// Character classes of the base64 alphabets.
const (
	b64Invalid = 1 << iota // not in either alphabet (including '=')
	b64Std                 // '+' or '/'
	b64URL                 // '-' or '_'
)

var b64Classes = func() (t [256]uint8) {
	for i := range t {
		t[i] = b64Invalid
	}
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" {
		t[c] = 0
	}
	t['+'], t['/'], t['-'], t['_'] = b64Std, b64Std, b64URL, b64URL
	return t
}()

// b64Class returns the union of the character classes in s.
func b64Class(s string) uint8 {
	var class uint8
	for i := 0; i < len(s); i++ {
		class |= b64Classes[s[i]]
	}
	return class
}

// Field types of the macaroon V2 binary format.
const (
	fieldEOS            = 0
	fieldLocation       = 1
	fieldIdentifier     = 2
	fieldVerificationID = 4
	fieldSignature      = 6
)

// rawMacaroon holds slices into a binary V2 macaroon.
type rawMacaroon struct {
	location []byte
	id       []byte
	caveats  []byte // encoded caveat sections, validated, final EOS excluded
	sig      []byte // 32 bytes
}

// parseMacaroon parses a binary version 2 macaroon with first-party caveats
// only, as written by gopkg.in/macaroon.v2, and refuses trailing bytes.
func parseMacaroon(b []byte) (rawMacaroon, error) {
	var m rawMacaroon
	if len(b) == 0 || b[0] != 2 {
		return m, errdetail.New(ErrMalformed, "not a version 2 macaroon")
	}
	b = b[1:]
	ft, data, b, ok := readPacket(b)
	if ok && ft == fieldLocation {
		m.location = data
		ft, data, b, ok = readPacket(b)
	}
	if !ok || ft != fieldIdentifier {
		return m, errdetail.New(ErrMalformed, "bad macaroon header")
	}
	m.id = data
	if ft, _, b, ok = readPacket(b); !ok || ft != fieldEOS {
		return m, errdetail.New(ErrMalformed, "bad macaroon header")
	}
	start := b
	for n := 0; ; n++ {
		if n > MaxCaveats {
			return m, errdetail.New(ErrMalformed, "more than "+strconv.Itoa(MaxCaveats)+" caveats")
		}
		ft, _, rest, ok := readPacket(b)
		if !ok {
			return m, errdetail.New(ErrMalformed, "truncated caveats")
		}
		if ft == fieldEOS {
			m.caveats = start[:len(start)-len(b)]
			b = rest
			break
		}
		if ft != fieldIdentifier {
			if ft == fieldLocation {
				return m, errdetail.New(ErrMalformed, "third-party caveats are not supported")
			}
			return m, errdetail.New(ErrMalformed, "bad caveat field")
		}
		ft, _, rest, ok = readPacket(rest)
		if ok && ft == fieldVerificationID {
			return m, errdetail.New(ErrMalformed, "third-party caveats are not supported")
		}
		if !ok || ft != fieldEOS {
			return m, errdetail.New(ErrMalformed, "bad caveat field")
		}
		b = rest
	}
	ft, data, b, ok = readPacket(b)
	if !ok || ft != fieldSignature || len(data) != 32 {
		return m, errdetail.New(ErrMalformed, "bad macaroon signature field")
	}
	if len(b) != 0 {
		return m, errdetail.New(ErrMalformed, "trailing bytes after macaroon")
	}
	m.sig = data
	return m, nil
}

// caveatIter walks the validated caveat sections of a rawMacaroon.
type caveatIter struct{ b []byte }

func (m *rawMacaroon) caveatIter() caveatIter { return caveatIter{m.caveats} }

// next returns the next caveat condition.
func (it *caveatIter) next() ([]byte, bool) {
	_, cav, rest, ok := readPacket(it.b) // identifier
	if !ok {
		return nil, false
	}
	_, _, rest, ok = readPacket(rest) // EOS
	if !ok {
		return nil, false
	}
	it.b = rest
	return cav, true
}

// readPacket reads one V2 packet: a varint field type, then (except for
// EOS) a varint length and that many bytes.
func readPacket(b []byte) (ft uint64, data, rest []byte, ok bool) {
	ft, n := binary.Uvarint(b)
	if n <= 0 || ft > 0x7fffffff {
		return 0, nil, nil, false
	}
	b = b[n:]
	if ft == fieldEOS {
		return ft, nil, b, true
	}
	l, n := binary.Uvarint(b)
	if n <= 0 || l > uint64(len(b)-n) {
		return 0, nil, nil, false
	}
	b = b[n:]
	return ft, b[:l:l], b[l:], true
}

// splitCaveat splits a condition at its first '=' and trims both halves.
func splitCaveat(c []byte) (key, value []byte) {
	if i := indexByte(c, '='); i >= 0 {
		return trimOWSBytes(c[:i]), trimOWSBytes(c[i+1:])
	}
	return trimOWSBytes(c), nil
}

// parseDecimal parses 1 to 18 ASCII digits, so the result fits an int64.
func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

func trimOWSBytes(b []byte) []byte {
	for len(b) > 0 && authparam.IsOWS(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && authparam.IsOWS(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

// ValidUntil reads the token's <service>_valid_until caveats (of every
// service when service is ""): the earliest and the latest, and whether
// there is any. A malformed one is an ErrInvalidCaveat. The token is not
// verified here.
func (t *Token) ValidUntil(service string) (earliest, latest time.Time, found bool, err error) {
	return t.timeCaveats(service, SuffixValidUntil)
}

// IssuedAt reads the token's <service>_issued_at caveats (of every service
// when service is ""), as ValidUntil reads the expiry caveats.
func (t *Token) IssuedAt(service string) (earliest, latest time.Time, found bool, err error) {
	return t.timeCaveats(service, SuffixIssuedAt)
}

// timeCaveats reads the caveats <service><suffix>=<unix seconds>.
func (t *Token) timeCaveats(service, suffix string) (earliest, latest time.Time, found bool, err error) {
	var lo, hi int64
	for _, c := range t.Caveats {
		key, value, _ := strings.Cut(c, "=")
		key = strings.TrimSpace(key)
		if service == "" && !strings.HasSuffix(key, suffix) || service != "" && key != service+suffix {
			continue
		}
		v, perr := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
		if perr != nil {
			return time.Time{}, time.Time{}, false, errdetail.New(ErrInvalidCaveat, "malformed "+errdetail.Quote(key))
		}
		if !found || v < lo {
			lo = v
		}
		if !found || v > hi {
			hi = v
		}
		found = true
	}
	return time.Unix(lo, 0), time.Unix(hi, 0), found, nil
}
