package payment

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// Canonicalize returns the RFC 8785 (JSON Canonicalization Scheme) form of
// the JSON text data: no whitespace (§3.2.1), strings serialized as
// ECMAScript's JSON.stringify does (§3.2.2.2), numbers as ECMAScript's
// Number.prototype.toString (§3.2.2.3), object members sorted by the UTF-16
// code units of their names (§3.2.3). It refuses what §3.1 excludes:
// invalid UTF-8, lone surrogates, duplicate member names and numbers beyond
// the IEEE 754 double range.
func Canonicalize(data []byte) ([]byte, error) {
	v, err := parseJSON(string(data))
	if err != nil {
		return nil, err
	}
	return appendCanonical(make([]byte, 0, len(data)), &v)
}

// appendCanonical appends the RFC 8785 serialization of v.
func appendCanonical(dst []byte, v *value) ([]byte, error) {
	switch v.kind {
	case kindNull:
		return append(dst, "null"...), nil
	case kindFalse:
		return append(dst, "false"...), nil
	case kindTrue:
		return append(dst, "true"...), nil
	case kindNumber:
		return appendNumber(dst, v.str)
	case kindString:
		return appendString(dst, v.str), nil
	case kindArray:
		dst = append(dst, '[')
		for i := range v.members {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendCanonical(dst, &v.members[i].val); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	}
	members := slices.Clone(v.members)
	slices.SortFunc(members, func(a, b member) int { return compareUTF16(a.name, b.name) })
	dst = append(dst, '{')
	for i := range members {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, members[i].name)
		dst = append(dst, ':')
		var err error
		if dst, err = appendCanonical(dst, &members[i].val); err != nil {
			return nil, err
		}
	}
	return append(dst, '}'), nil
}

// appendString appends s as JSON.stringify writes it (RFC 8785 §3.2.2.2):
// only '"', '\' and the C0 controls are escaped, those with a short form
// as \b \f \n \r \t and the rest as lowercase \u00xx; everything else,
// including '<', '>', '&', '/', DEL, U+2028 and U+2029, is written as is.
// s must be valid UTF-8 (the parser and the encoders guarantee it).
func appendString(dst []byte, s string) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendNumber appends the JSON number literal lit in the form of RFC 8785
// §3.2.2.3: the double nearest to it, written as ECMAScript's
// Number.prototype.toString does. Literals beyond the double range are
// refused.
func appendNumber(dst []byte, lit string) ([]byte, error) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, errdetail.New(ErrMalformed, "number "+errdetail.Quote(lit)+" is outside the IEEE 754 double range")
	}
	return appendES6Number(dst, f), nil
}

// appendES6Number writes a finite double as ECMAScript's
// Number::toString(x) (ECMA-262 §6.1.6.1.20): the shortest digits that
// round-trip, positional notation for decimal exponents in (-6, 21],
// exponential notation ("1e+21", "1.5e-7") outside.
func appendES6Number(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // both zeroes
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	// Shortest round-trip digits d1.d2...dk and exponent e: f = 0.d1...dk × 10^n, n = e+1.
	var buf [32]byte
	e := strconv.AppendFloat(buf[:0], f, 'e', -1, 64)
	mant, exp := e, 0
	for i, c := range e {
		if c == 'e' {
			mant = e[:i]
			x, _ := strconv.Atoi(string(e[i+1:]))
			exp = x
			break
		}
	}
	var digits []byte
	for _, c := range mant {
		if c != '.' {
			digits = append(digits, c)
		}
	}
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, digits...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, digits[:n]...)
		dst = append(dst, '.')
		dst = append(dst, digits[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, digits...)
	default:
		dst = append(dst, digits[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, digits[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 > 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}

// compareUTF16 orders strings by their UTF-16 code units (RFC 8785
// §3.2.3). It differs from Go's byte order only where a code point at or
// above U+10000 (a surrogate pair from U+D800) meets one in U+E000-U+FFFF.
func compareUTF16(a, b string) int {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	if i == len(a) || i == len(b) {
		return len(a) - len(b) // one is a prefix of the other
	}
	for i > 0 && !utf8.RuneStart(a[i]) {
		i-- // back to the start of the differing runes
	}
	ra, _ := utf8.DecodeRuneInString(a[i:])
	rb, _ := utf8.DecodeRuneInString(b[i:])
	ua, ub := utf16Units(ra), utf16Units(rb)
	if ua[0] != ub[0] {
		return int(ua[0]) - int(ub[0])
	}
	return int(ua[1]) - int(ub[1])
}

// utf16Units returns the UTF-16 code units of r (the second is 0 for a
// code point of the Basic Multilingual Plane).
func utf16Units(r rune) [2]uint16 {
	if r >= 0x10000 {
		hi, lo := utf16.EncodeRune(r)
		return [2]uint16{uint16(hi), uint16(lo)}
	}
	return [2]uint16{uint16(r), 0}
}
