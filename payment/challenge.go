package payment

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lightningcaddy/caddy-lightning/internal/authparam"
	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// Names of the Payment scheme and of what this package implements.
const (
	// Scheme is the HTTP authentication scheme (draft-httpauth-payment-00 §5).
	Scheme = "Payment"
	// MethodLightning is the Lightning payment method, registered by
	// draft-lightning-charge-00.
	MethodLightning = "lightning"
	// IntentCharge is the one-time payment intent (draft-lightning-charge-00).
	IntentCharge = "charge"
	// IntentSession is the prepaid session intent (draft-lightning-session-00).
	IntentSession = "session"
)

// Size limits.
const (
	// MaxChallengeLen bounds a formatted challenge: servers SHOULD keep
	// challenges under 8 KB (draft-httpauth-payment-00 §9.4).
	MaxChallengeLen = 8 << 10
	// maxChallengeValueLen bounds the WWW-Authenticate values parsed: room
	// for several challenges joined into one line.
	maxChallengeValueLen = 8 * MaxChallengeLen
)

// Challenge is one Payment challenge: the auth-params of a
// WWW-Authenticate: Payment value (draft-httpauth-payment-00 §5.1), and the
// echo of them a credential carries (§5.2). Every field holds the exact wire
// string: the challenge id is an HMAC over these strings, never over
// re-encoded values.
type Challenge struct {
	// ID binds the other parameters (§5.1.1, §5.1.2.1); see Binder.
	ID string
	// Realm is the protection space; it must not contain '|', the
	// delimiter of the id's HMAC input.
	Realm string
	// Method is the payment method, lowercase letters: "lightning".
	Method string
	// Intent is the payment intent: "charge" or "session".
	Intent string
	// Request is the base64url (unpadded) RFC 8785 JSON of the method's
	// request; see ChargeRequest and SessionRequest.
	Request string
	// Expires is the RFC 3339 time after which the challenge must not be
	// answered (§5.1.2); empty if absent. See FormatTime.
	Expires string
	// Digest is an RFC 9530 digest of the request body (§5.1.3); empty if
	// absent. Alby's client does not echo it, so its credentials fail.
	Digest string
	// Opaque is base64url RFC 8785 JSON of a flat string map that the
	// client echoes (§5.1.2); empty if absent. See EncodeOpaque.
	Opaque string
	// Description is display text (§5.1.2), not covered by the id and
	// never used to verify.
	Description string
}

// FormatTime writes t as the RFC 3339 timestamps of this scheme use it:
// UTC, whole seconds ("2026-01-01T00:05:00Z").
func FormatTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// ExpiresAt parses the Expires parameter. It returns false if there is none
// or it is not RFC 3339.
func (c *Challenge) ExpiresAt() (time.Time, bool) {
	if c.Expires == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, c.Expires)
	return t, err == nil
}

// Format returns the WWW-Authenticate value of the challenge:
//
//	Payment id="…", realm="…", method="…", intent="…", request="…"[, expires="…"][, digest="…"][, description="…"][, opaque="…"]
//
// Names are lowercase and every value is a quoted-string
// (draft-httpauth-payment-00 §5.1, §9.3). Values that need a quoted-pair
// ('"' or '\') are refused, because Alby's and lnget's parsers end a value at
// the next '"' without unescaping; so are values outside their grammar and
// challenges of MaxChallengeLen or more. Errors are ErrInvalidParameter.
func (c *Challenge) Format() (string, error) {
	if err := c.validate(); err != nil {
		return "", err
	}
	if c.ID == "" || !isBase64URL(c.ID) {
		return "", errdetail.New(ErrInvalidParameter, "id is not base64url")
	}
	b := make([]byte, 0, 64+len(c.Realm)+len(c.Request)+len(c.Description)+len(c.Opaque)+len(c.Digest))
	b = append(b, Scheme...)
	b = appendParam(b, " id", c.ID)
	b = appendParam(b, ", realm", c.Realm)
	b = appendParam(b, ", method", c.Method)
	b = appendParam(b, ", intent", c.Intent)
	b = appendParam(b, ", request", c.Request)
	for _, p := range [...]struct{ name, value string }{
		{", expires", c.Expires}, {", digest", c.Digest}, {", description", c.Description}, {", opaque", c.Opaque},
	} {
		if p.value != "" {
			b = appendParam(b, p.name, p.value)
		}
	}
	if len(b) >= MaxChallengeLen {
		return "", errdetail.New(ErrInvalidParameter, "challenge of 8 KB or more")
	}
	return string(b), nil
}

func appendParam(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	b = append(b, value...)
	return append(b, '"')
}

// validate checks every parameter but the id against the grammar of
// draft-httpauth-payment-00 and the quoting rule of Format. The HMAC
// slots it admits contain no '|'.
func (c *Challenge) validate() error {
	bad := func(what string) error { return errdetail.New(ErrInvalidParameter, what) }
	switch {
	case c.Realm == "" || !isText(c.Realm) || strings.Contains(c.Realm, "|"):
		return bad("realm must be non-empty text without '\"', '\\' or '|'")
	case !isLowerAlpha(c.Method):
		return bad("method must be lowercase letters (§6.1)")
	case !isIntent(c.Intent):
		return bad("intent must be letters, digits and '-' (§7.1)")
	case c.Request == "" || !isBase64URL(c.Request):
		return bad("request must be unpadded base64url")
	case !isBase64URL(c.Opaque):
		return bad("opaque must be unpadded base64url")
	case !isText(c.Digest) || strings.Contains(c.Digest, "|"):
		return bad("digest must be text without '\"', '\\' or '|'")
	case !isText(c.Description):
		return bad("description must be text without '\"' or '\\'")
	}
	if _, ok := c.ExpiresAt(); c.Expires != "" && !ok {
		return bad("expires is not RFC 3339")
	}
	return nil
}

// isText reports whether s is valid UTF-8 that a quoted-string holds
// without quoted-pairs.
func isText(s string) bool { return authparam.IsQdtext(s) && utf8.ValidString(s) }

func isLowerAlpha(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

func isIntent(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}

// ParseChallenges returns every Payment challenge in the given
// WWW-Authenticate values, in order, for clients and tests. It follows RFC
// 9110 §11.6.1 (several challenges per value, as fetch joins repeated lines;
// parameter names in any case; quoted or token values; the first occurrence
// of a repeated parameter wins) and skips other schemes, challenges with a
// syntax error or without a non-empty id, realm, method, intent and request,
// and values longer than 64 KiB. Unknown parameters are ignored.
func ParseChallenges(values []string) []Challenge {
	var out []Challenge
	for _, v := range values {
		if len(v) > maxChallengeValueLen {
			continue
		}
		p := authparam.NewChallenges(v)
		for {
			var c challengeParams
			scheme, bad, ok := p.Next(c.set)
			if !ok {
				break
			}
			ch := c.Challenge
			if bad || !strings.EqualFold(scheme, Scheme) ||
				ch.ID == "" || ch.Realm == "" || ch.Method == "" || ch.Intent == "" || ch.Request == "" {
				continue
			}
			out = append(out, ch)
		}
	}
	return out
}

// challengeParams collects the parameters of one challenge; the first
// occurrence of each wins.
type challengeParams struct {
	Challenge
	seen uint16
}

func (c *challengeParams) set(name, value string) {
	for i, f := range [...]struct {
		name string
		dst  *string
	}{
		{"id", &c.ID}, {"realm", &c.Realm}, {"method", &c.Method}, {"intent", &c.Intent}, {"request", &c.Request},
		{"expires", &c.Expires}, {"digest", &c.Digest}, {"opaque", &c.Opaque}, {"description", &c.Description},
	} {
		if strings.EqualFold(name, f.name) {
			if c.seen&(1<<i) == 0 {
				c.seen |= 1 << i
				*f.dst = value
			}
			return
		}
	}
}

// EncodeOpaque returns the opaque auth-param for a flat string map:
// base64url of its RFC 8785 JSON (draft-httpauth-payment-00 §5.1.2).
func EncodeOpaque(m map[string]string) (string, error) {
	v := value{kind: kindObject}
	for k, s := range m {
		if !utf8.ValidString(k) || !utf8.ValidString(s) {
			return "", errdetail.New(ErrInvalidParameter, "opaque is not UTF-8")
		}
		v.members = append(v.members, member{k, stringValue(s)})
	}
	b, err := appendCanonical(nil, &v)
	if err != nil {
		return "", err
	}
	return EncodeBase64URL(b), nil
}

// DecodeOpaque decodes an opaque auth-param into its string map. It
// accepts only a JSON object whose members are all strings.
func DecodeOpaque(s string) (map[string]string, error) {
	b, err := DecodeBase64URL(s)
	if err != nil {
		return nil, err
	}
	v, err := parseJSON(string(b))
	if err != nil {
		return nil, err
	}
	if v.kind != kindObject {
		return nil, errdetail.New(ErrMalformed, "opaque is not a JSON object")
	}
	m := make(map[string]string, len(v.members))
	for _, mb := range v.members {
		if mb.val.kind != kindString {
			return nil, errdetail.New(ErrMalformed, "opaque member "+errdetail.Quote(mb.name)+" is not a string")
		}
		m[mb.name] = mb.val.str
	}
	return m, nil
}
