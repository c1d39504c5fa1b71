// Package authparam tokenizes the HTTP authentication fields of RFC 9110
// §11: the challenge lists of WWW-Authenticate (§11.6.1) with their
// auth-params (§11.2) and the token, token68 and quoted-string rules they
// use (§5.6.2, §11.2, §5.6.4). It is shared by the protocol packages (l402,
// payment) so that every scheme is read by the same rules.
package authparam

import "strings"

// byte classes of RFC 9110.
const (
	classTchar   = 1 << iota // token character (§5.6.2)
	classToken68             // token68 character before padding (§11.2)
	classQdtext              // qdtext (§5.6.4): may appear unescaped in a quoted-string
)

var classes = func() (t [256]uint8) {
	for c := 0; c < 256; c++ {
		b := byte(c)
		alnum := 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9'
		if alnum || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			t[c] |= classTchar
		}
		if alnum || strings.IndexByte("-._~+/", b) >= 0 {
			t[c] |= classToken68
		}
		if b == '\t' || b == ' ' || b == 0x21 || 0x23 <= b && b <= 0x5b || 0x5d <= b && b <= 0x7e || b >= 0x80 {
			t[c] |= classQdtext
		}
	}
	return t
}()

// IsTchar reports whether c may appear in a token (RFC 9110 §5.6.2).
func IsTchar(c byte) bool { return classes[c]&classTchar != 0 }

// IsToken68Char reports whether c may appear in a token68 before its
// padding (RFC 9110 §11.2).
func IsToken68Char(c byte) bool { return classes[c]&classToken68 != 0 }

// IsOWS reports whether c is optional whitespace (RFC 9110 §5.6.3).
func IsOWS(c byte) bool { return c == ' ' || c == '\t' }

// isQuotable reports whether c may follow a backslash in a quoted-pair
// (RFC 9110 §5.6.4).
func isQuotable(c byte) bool { return c == '\t' || c >= ' ' && c != 0x7f }

// TrimOWS removes leading and trailing optional whitespace.
func TrimOWS(s string) string {
	for len(s) > 0 && IsOWS(s[0]) {
		s = s[1:]
	}
	for len(s) > 0 && IsOWS(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	return s
}

// IsToken reports whether s is a non-empty token (RFC 9110 §5.6.2).
func IsToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !IsTchar(s[i]) {
			return false
		}
	}
	return s != ""
}

// IsQdtext reports whether every byte of s is qdtext (RFC 9110 §5.6.4), so
// that s can be sent as a quoted-string without any quoted-pair: no '"',
// no '\' and no control character other than HTAB. Clients that end a
// quoted value at the next '"' without unescaping (Alby's lightning-tools,
// lnget) read such values correctly.
func IsQdtext(s string) bool {
	for i := 0; i < len(s); i++ {
		if classes[s[i]]&classQdtext == 0 {
			return false
		}
	}
	return true
}

// Challenges scans the challenges of one WWW-Authenticate field value
// (RFC 9110 §11.6.1): a comma-separated list in which each challenge is an
// auth-scheme followed by either a token68 or a list of auth-params, and
// empty list elements are allowed (§5.6.1).
type Challenges struct {
	s string
	i int
}

// NewChallenges returns a scanner over the field value v.
func NewChallenges(v string) Challenges { return Challenges{s: v} }

// Next advances to the next challenge and returns its auth-scheme as sent;
// ok is false once the value is exhausted. For every auth-param of the
// challenge, in order, param is called with the parameter name as sent and
// its value (a token, or a quoted-string with its quoted-pairs undone). A
// token68 is skipped. bad reports a syntax error after the scheme; the
// scanner then skipped to the next comma, and the caller should discard the
// challenge.
func (p *Challenges) Next(param func(name, value string)) (scheme string, bad, ok bool) {
	for {
		for p.i < len(p.s) && (IsOWS(p.s[p.i]) || p.s[p.i] == ',') {
			p.i++
		}
		if p.i >= len(p.s) {
			return "", false, false
		}
		if scheme = p.token(); scheme != "" {
			return scheme, p.params(param), true
		}
		p.skipItem()
	}
}

// params reads the token68 or auth-params after a scheme, stopping before
// the next challenge, and reports a syntax error.
func (p *Challenges) params(param func(name, value string)) (bad bool) {
	if p.skipOWS() == 0 {
		if p.i < len(p.s) && p.s[p.i] != ',' {
			p.skipItem()
			return true
		}
		return false
	}
	for first := true; p.i < len(p.s); first = false {
		start := p.i
		name := p.token()
		p.skipOWS()
		switch {
		case name != "" && p.isParamEquals():
			p.i++
			p.skipOWS()
			if value, ok := p.value(); ok {
				param(name, value)
			} else {
				bad = true
				p.skipItem()
			}
		case first:
			p.i = start
			if !p.token68() {
				return bad // not a challenge of ours to understand
			}
		default:
			p.i = start
			return bad // the next challenge starts here
		}
		p.skipOWS()
		if p.i < len(p.s) && p.s[p.i] != ',' {
			bad = true
			p.skipItem()
		}
		for p.i < len(p.s) && (IsOWS(p.s[p.i]) || p.s[p.i] == ',') {
			p.i++
		}
	}
	return bad
}

// isParamEquals reports whether the scanner is at the '=' of an auth-param
// rather than at the padding of a token68.
func (p *Challenges) isParamEquals() bool {
	if p.i >= len(p.s) || p.s[p.i] != '=' {
		return false
	}
	j := p.i + 1
	for j < len(p.s) && IsOWS(p.s[j]) {
		j++
	}
	return j < len(p.s) && p.s[j] != '=' && p.s[j] != ','
}

// token68 consumes a token68 followed by the end or a comma.
func (p *Challenges) token68() bool {
	j := p.i
	for j < len(p.s) && IsToken68Char(p.s[j]) {
		j++
	}
	if j == p.i {
		return false
	}
	for j < len(p.s) && p.s[j] == '=' {
		j++
	}
	k := j
	for k < len(p.s) && IsOWS(p.s[k]) {
		k++
	}
	if k < len(p.s) && p.s[k] != ',' {
		return false
	}
	p.i = j
	return true
}

func (p *Challenges) skipOWS() int {
	n := 0
	for p.i < len(p.s) && IsOWS(p.s[p.i]) {
		p.i++
		n++
	}
	return n
}

// skipItem skips to the next comma.
func (p *Challenges) skipItem() {
	if j := strings.IndexByte(p.s[p.i:], ','); j >= 0 {
		p.i += j
	} else {
		p.i = len(p.s)
	}
}

func (p *Challenges) token() string {
	j := p.i
	for j < len(p.s) && IsTchar(p.s[j]) {
		j++
	}
	t := p.s[p.i:j]
	p.i = j
	return t
}

// value reads a token or a quoted-string, undoing quoted-pairs. It
// allocates only for a value that contains quoted-pairs.
func (p *Challenges) value() (string, bool) {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		t := p.token()
		return t, t != ""
	}
	p.i++
	start := p.i
	var b []byte
	for p.i < len(p.s) {
		switch c := p.s[p.i]; {
		case c == '"':
			s := p.s[start:p.i]
			if b != nil {
				s = string(append(b, s...))
			}
			p.i++
			return s, true
		case c == '\\':
			if p.i+1 >= len(p.s) || !isQuotable(p.s[p.i+1]) {
				return "", false
			}
			b = append(b, p.s[start:p.i]...)
			start = p.i + 1
			p.i += 2
		case classes[c]&classQdtext != 0:
			p.i++
		default:
			return "", false
		}
	}
	return "", false // unterminated
}
