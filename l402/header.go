package l402

import (
	"encoding/hex"
	"strings"

	"github.com/lightningcaddy/caddy-lightning/internal/authparam"
	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

const (
	// MaxHeaderLen is the longest Authorization or WWW-Authenticate value
	// parsed; longer values are skipped.
	MaxHeaderLen = 8 << 10

	// MaxCredentials bounds the credentials ParseAuthorization returns (and
	// so the verifications one request can cause); later ones are dropped.
	MaxCredentials = 8
)

// Credential is one token offered in an Authorization header, with the
// payment preimage if one was given.
type Credential struct {
	// Token is the base64 token as sent (alphabet and length checked only).
	Token string
	// Preimage is the payment preimage; valid only if HasPreimage.
	Preimage [32]byte
	// HasPreimage is false for a token sent alone ("L402 <token>" or
	// "L402 <token>:"), as browsers do.
	HasPreimage bool
}

// ParseAuthorization returns every L402 credential in the given
// Authorization header values, in order, so that any valid one can count.
// Each value is
//
//	<scheme> <token>[,<token>...][:<hex preimage>]
//
// where the scheme is L402 or LSAT in any case, hex is either case,
// whitespace around the parts is ignored and several tokens share the
// preimage. Values of other schemes are ignored; values joined by commas
// into one line are split again. Values longer than MaxHeaderLen, tokens
// longer than MaxTokenLen or outside the base64 alphabets, and preimages that
// are not 64 hex digits are dropped. It returns ErrNoCredentials if there
// was no L402 or LSAT value, and ErrMalformed if there were some but none
// was well-formed.
func ParseAuthorization(values []string) ([]Credential, error) {
	return appendAuthorization(nil, values)
}

func appendAuthorization(dst []Credential, values []string) ([]Credential, error) {
	base := len(dst)
	saw := false
	for _, v := range values {
		if len(v) > MaxHeaderLen {
			if s := authparam.TrimOWS(v); len(s) > 4 && isL402Scheme(s[:4]) && authparam.IsOWS(s[4]) {
				saw = true
			}
			continue
		}
		var s bool
		dst, s = appendValue(dst, v, base)
		saw = saw || s
	}
	switch {
	case len(dst) > base:
		return dst, nil
	case saw:
		return nil, errdetail.New(ErrMalformed, "no well-formed L402 credential")
	}
	return nil, ErrNoCredentials
}

// appendValue appends the credentials of one header value to dst, keeping
// at most MaxCredentials after dst[base]. saw reports an L402 or LSAT scheme.
func appendValue(dst []Credential, v string, base int) (_ []Credential, saw bool) {
	group := len(dst) // index of the first credential of the current group
	for sc := (itemScanner{rest: v}); ; {
		_, item, kind := sc.next()
		switch kind {
		case itemEnd:
			return dst, saw
		case itemOther:
			continue
		case itemScheme:
			saw, group = true, len(dst)
			if item == "" {
				continue // a scheme whose list starts after a comma: "L402 ,<token>"
			}
		}
		tok, pre, hasPre := strings.Cut(item, ":")
		if tok = authparam.TrimOWS(tok); validToken(tok) && len(dst)-base < MaxCredentials {
			dst = append(dst, Credential{Token: tok})
		}
		if !hasPre {
			continue
		}
		if pre = authparam.TrimOWS(pre); pre == "" {
			continue // "<token>:" is a token without preimage
		}
		p, ok := parsePreimage(pre)
		if !ok {
			dst = dst[:group]
			continue
		}
		for i := group; i < len(dst); i++ {
			dst[i].Preimage, dst[i].HasPreimage = p, true
		}
	}
}

// itemKind says what a comma-separated item of an Authorization value is.
type itemKind int

const (
	itemEnd    itemKind = iota // no more items
	itemOther                  // not part of an L402 or LSAT credential
	itemScheme                 // "L402 <credential>" (or the bare scheme): starts a credential
	itemToken                  // "<token>[:<preimage>]" continuing the credential before it
)

// itemScanner splits one Authorization value into its comma-separated items
// and tells which belong to an L402 or LSAT credential. ParseAuthorization
// and StripAuthorization both read values through it, so whatever can be
// accepted as a credential is also what is stripped.
type itemScanner struct {
	rest    string
	inGroup bool // inside an L402 credential whose preimage is still to come
}

// next returns the next non-empty item: raw as it came between the commas,
// item trimmed (for itemScheme, what follows the scheme), and its kind.
func (s *itemScanner) next() (raw, item string, kind itemKind) {
	for s.rest != "" {
		raw = s.rest
		if i := strings.IndexByte(s.rest, ','); i >= 0 {
			raw, s.rest = s.rest[:i], s.rest[i+1:]
		} else {
			s.rest = ""
		}
		item = authparam.TrimOWS(raw)
		if item == "" {
			continue
		}
		if scheme, after, ok := cutScheme(item, s.inGroup); ok {
			s.inGroup = isL402Scheme(scheme)
			if !s.inGroup {
				return raw, item, itemOther
			}
			item, kind = after, itemScheme
		} else if isL402Scheme(item) {
			s.inGroup = true
			return raw, "", itemScheme
		} else if !s.inGroup {
			return raw, item, itemOther
		} else {
			kind = itemToken
		}
		if strings.IndexByte(item, ':') >= 0 {
			s.inGroup = false // the preimage closes the credential
		}
		return raw, item, kind
	}
	return "", "", itemEnd
}

// StripAuthorization returns an Authorization value without the L402 and
// LSAT credentials ParseAuthorization reads in it (of any length), keeping
// every other item as it came, or "" if nothing else was in it. A value
// without L402 credentials is returned unchanged.
func StripAuthorization(v string) string {
	kept, dropped := 0, 0
	for sc := (itemScanner{rest: v}); ; {
		_, _, kind := sc.next()
		if kind == itemEnd {
			break
		}
		if kind == itemOther {
			kept++
		} else {
			dropped++
		}
	}
	switch {
	case dropped == 0:
		return v
	case kept == 0:
		return ""
	}
	items := make([]string, 0, kept)
	for sc := (itemScanner{rest: v}); ; {
		raw, _, kind := sc.next()
		if kind == itemEnd {
			break
		}
		if kind == itemOther {
			items = append(items, raw)
		}
	}
	return authparam.TrimOWS(strings.Join(items, ","))
}

// cutScheme splits "<scheme> <rest>" where scheme is an RFC 9110 token. In
// an L402 group a word followed by " :" is a token before its preimage, not
// a scheme.
func cutScheme(item string, inGroup bool) (scheme, rest string, ok bool) {
	i := 0
	for i < len(item) && authparam.IsTchar(item[i]) {
		i++
	}
	if i == 0 || i == len(item) || !authparam.IsOWS(item[i]) {
		return "", "", false
	}
	rest = authparam.TrimOWS(item[i:])
	if inGroup && strings.HasPrefix(rest, ":") && !isL402Scheme(item[:i]) {
		return "", "", false
	}
	return item[:i], rest, true
}

// isL402Scheme reports whether s is L402 or LSAT in any case.
func isL402Scheme(s string) bool {
	return strings.EqualFold(s, "L402") || strings.EqualFold(s, "LSAT")
}

// validToken reports whether t is 1 to MaxTokenLen characters of a base64
// alphabet with at most two trailing '='. Decoding checks the rest.
func validToken(t string) bool {
	if len(t) == 0 || len(t) > MaxTokenLen {
		return false
	}
	n := len(t)
	for n > 0 && t[n-1] == '=' {
		n--
	}
	if len(t)-n > 2 || n == 0 {
		return false
	}
	return b64Class(t[:n])&b64Invalid == 0
}

// parsePreimage decodes exactly 64 hex digits of either case.
func parsePreimage(s string) (p [32]byte, ok bool) {
	if len(s) != 64 {
		return p, false
	}
	for i := range p {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return [32]byte{}, false
		}
		p[i] = hi<<4 | lo
	}
	return p, true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// FormatAuthorization returns the Authorization value "L402 <token>:<hex>"
// that presents a token and its preimage (lowercase hex).
func FormatAuthorization(token string, preimage [32]byte) (string, error) {
	if !validToken(token) {
		return "", errdetail.New(ErrMalformed, "token is not base64 or too long")
	}
	return "L402 " + token + ":" + hex.EncodeToString(preimage[:]), nil
}
