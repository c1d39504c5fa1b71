package payment

import (
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// This file holds a strict JSON reader (RFC 8259) for the messages of the
// Payment scheme. Beyond RFC 8259 it refuses what RFC 8785 §3.1 (I-JSON,
// RFC 7493) refuses: invalid UTF-8, lone surrogates in \u escapes and
// duplicate member names, so that no two readers can see different values in
// one credential. encoding/json accepts all three (it substitutes U+FFFD and
// keeps the last duplicate).

// maxDepth bounds the nesting of arrays and objects.
const maxDepth = 64

type kind uint8

const (
	kindNull kind = iota
	kindFalse
	kindTrue
	kindNumber // str holds the literal as written
	kindString // str holds the unescaped string
	kindArray
	kindObject
)

// value is a parsed JSON value. raw is the text it was parsed from (empty
// for values built in code).
type value struct {
	kind    kind
	str     string
	raw     string
	members []member // kindObject in input order; kindArray elements (no names)
}

type member struct {
	name string
	val  value
}

func stringValue(s string) value { return value{kind: kindString, str: s} }

func objectValue(members ...member) value { return value{kind: kindObject, members: members} }

// get returns the member called name of an object.
func (v *value) get(name string) (*value, bool) {
	for i := range v.members {
		if v.members[i].name == name {
			return &v.members[i].val, true
		}
	}
	return nil, false
}

// parseJSON parses one JSON text.
func parseJSON(s string) (value, error) {
	stack := stackPool.Get().(*[]member)
	p := jsonParser{s: s, stack: *stack}
	defer func() {
		clear(p.stack[:p.used]) // drop references into s
		if cap(p.stack) <= maxPooledStack {
			*stack = p.stack[:0]
		}
		stackPool.Put(stack)
	}()
	p.space()
	v, err := p.value()
	if err != nil {
		return value{}, err
	}
	p.space()
	if p.i != len(p.s) {
		return value{}, p.fail("data after the JSON value")
	}
	return v, nil
}

// stackPool recycles the member stacks of parseJSON, so a parse allocates
// only the members of each object; maxPooledStack keeps huge ones out.
var stackPool = sync.Pool{New: func() any { s := make([]member, 0, 16); return &s }}

const maxPooledStack = 256

type jsonParser struct {
	s     string
	i     int
	depth int
	// stack holds the members of the objects and arrays being read; each
	// gets an exactly sized copy when it closes (one allocation each).
	// used is its high-water mark.
	stack []member
	used  int
}

func (p *jsonParser) fail(what string) error {
	return errdetail.New(ErrMalformed, "JSON: "+what+" at offset "+strconv.Itoa(p.i))
}

func (p *jsonParser) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) literal(word string, k kind) (value, error) {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return value{}, p.fail("invalid literal")
	}
	start := p.i
	p.i += len(word)
	return value{kind: k, raw: p.s[start:p.i]}, nil
}

func (p *jsonParser) value() (value, error) {
	if p.i >= len(p.s) {
		return value{}, p.fail("unexpected end")
	}
	switch c := p.s[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		start := p.i
		s, err := p.string()
		return value{kind: kindString, str: s, raw: p.s[start:p.i]}, err
	case c == 't':
		return p.literal("true", kindTrue)
	case c == 'f':
		return p.literal("false", kindFalse)
	case c == 'n':
		return p.literal("null", kindNull)
	case c == '-' || '0' <= c && c <= '9':
		return p.number()
	}
	return value{}, p.fail("unexpected character")
}

func (p *jsonParser) enter() error {
	if p.depth++; p.depth > maxDepth {
		return p.fail("nesting too deep")
	}
	return nil
}

func (p *jsonParser) object() (value, error) {
	if err := p.enter(); err != nil {
		return value{}, err
	}
	start, base := p.i, len(p.stack)
	p.i++                    // '{'
	var seen map[string]bool // for large objects; small ones are scanned
	p.space()
	if p.i < len(p.s) && p.s[p.i] == '}' {
		return p.close(kindObject, start, base), nil
	}
	for {
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != '"' {
			return value{}, p.fail("expected a member name")
		}
		name, err := p.string()
		if err != nil {
			return value{}, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ':' {
			return value{}, p.fail("expected ':'")
		}
		p.i++
		p.space()
		val, err := p.value()
		if err != nil {
			return value{}, err
		}
		if p.duplicate(p.stack[base:], &seen, name) {
			return value{}, p.fail("duplicate member " + errdetail.Quote(name))
		}
		p.stack = append(p.stack, member{name, val})
		p.space()
		if p.i >= len(p.s) {
			return value{}, p.fail("unterminated object")
		}
		if p.s[p.i] == '}' {
			return p.close(kindObject, start, base), nil
		}
		if p.s[p.i] != ',' {
			return value{}, p.fail("expected ',' or '}'")
		}
		p.i++
	}
}

// close ends the object or array that started at input offset start and
// whose members are on the stack from base.
func (p *jsonParser) close(k kind, start, base int) value {
	p.i++
	p.depth--
	v := value{kind: k, raw: p.s[start:p.i]}
	if n := len(p.stack) - base; n > 0 {
		v.members = make([]member, n)
		copy(v.members, p.stack[base:])
		p.used = max(p.used, len(p.stack))
		p.stack = p.stack[:base]
	}
	return v
}

// duplicate reports whether the members read so far include name.
func (p *jsonParser) duplicate(members []member, seen *map[string]bool, name string) bool {
	const scan = 16
	if len(members) < scan {
		for i := range members {
			if members[i].name == name {
				return true
			}
		}
		return false
	}
	if *seen == nil {
		*seen = make(map[string]bool, 2*scan)
		for _, m := range members {
			(*seen)[m.name] = true
		}
	}
	if (*seen)[name] {
		return true
	}
	(*seen)[name] = true
	return false
}

func (p *jsonParser) array() (value, error) {
	if err := p.enter(); err != nil {
		return value{}, err
	}
	start, base := p.i, len(p.stack)
	p.i++ // '['
	p.space()
	if p.i < len(p.s) && p.s[p.i] == ']' {
		return p.close(kindArray, start, base), nil
	}
	for {
		p.space()
		e, err := p.value()
		if err != nil {
			return value{}, err
		}
		p.stack = append(p.stack, member{val: e})
		p.space()
		if p.i >= len(p.s) {
			return value{}, p.fail("unterminated array")
		}
		if p.s[p.i] == ']' {
			return p.close(kindArray, start, base), nil
		}
		if p.s[p.i] != ',' {
			return value{}, p.fail("expected ',' or ']'")
		}
		p.i++
	}
}

// number checks the RFC 8259 §6 grammar and keeps the literal.
func (p *jsonParser) number() (value, error) {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.i < len(p.s) && '1' <= p.s[p.i] && p.s[p.i] <= '9':
		p.digits()
	default:
		return value{}, p.fail("invalid number")
	}
	if p.i < len(p.s) && p.s[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return value{}, p.fail("invalid number")
		}
	}
	if p.i < len(p.s) && (p.s[p.i] == 'e' || p.s[p.i] == 'E') {
		p.i++
		if p.i < len(p.s) && (p.s[p.i] == '+' || p.s[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return value{}, p.fail("invalid number")
		}
	}
	lit := p.s[start:p.i]
	return value{kind: kindNumber, str: lit, raw: lit}, nil
}

func (p *jsonParser) digits() int {
	n := 0
	for p.i < len(p.s) && '0' <= p.s[p.i] && p.s[p.i] <= '9' {
		p.i++
		n++
	}
	return n
}

// string reads a string starting at its opening quote. It returns a
// substring of the input unless the string holds escapes.
func (p *jsonParser) string() (string, error) {
	p.i++ // '"'
	start := p.i
	var b []byte // only used once an escape is seen
	for p.i < len(p.s) {
		c := p.s[p.i]
		if plainASCII[c] {
			p.i++
			continue
		}
		switch {
		case c == '"':
			s := p.s[start:p.i]
			p.i++
			if b != nil {
				return string(append(b, s...)), nil
			}
			return s, nil
		case c == '\\':
			b = append(b, p.s[start:p.i]...)
			var err error
			if b, err = p.escape(b); err != nil {
				return "", err
			}
			start = p.i
		case c < 0x20:
			return "", p.fail("control character in string")
		default:
			r, size := utf8.DecodeRuneInString(p.s[p.i:])
			if r == utf8.RuneError && size == 1 {
				return "", p.fail("invalid UTF-8")
			}
			p.i += size
		}
	}
	return "", p.fail("unterminated string")
}

// plainASCII marks the bytes a string holds as they are: ASCII but the
// controls, '"' and '\'.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// escape decodes the escape at p.i and appends it to b.
func (p *jsonParser) escape(b []byte) ([]byte, error) {
	if p.i+1 >= len(p.s) {
		return nil, p.fail("unterminated escape")
	}
	c := p.s[p.i+1]
	p.i += 2
	switch c {
	case '"', '\\', '/':
		return append(b, c), nil
	case 'b':
		return append(b, '\b'), nil
	case 'f':
		return append(b, '\f'), nil
	case 'n':
		return append(b, '\n'), nil
	case 'r':
		return append(b, '\r'), nil
	case 't':
		return append(b, '\t'), nil
	case 'u':
		r, ok := p.hex4()
		if !ok {
			return nil, p.fail("invalid \\u escape")
		}
		if utf16.IsSurrogate(r) {
			// Only a high surrogate followed by an escaped low one.
			if r >= 0xdc00 || p.i+1 >= len(p.s) || p.s[p.i] != '\\' || p.s[p.i+1] != 'u' {
				return nil, p.fail("lone surrogate")
			}
			p.i += 2
			lo, ok := p.hex4()
			if !ok || lo < 0xdc00 || lo > 0xdfff {
				return nil, p.fail("lone surrogate")
			}
			r = utf16.DecodeRune(r, lo)
		}
		return utf8.AppendRune(b, r), nil
	}
	return nil, p.fail("invalid escape")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.s)-p.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range []byte(p.s[p.i : p.i+4]) {
		var d byte
		switch {
		case '0' <= c && c <= '9':
			d = c - '0'
		case 'a' <= c && c <= 'f':
			d = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(d)
	}
	p.i += 4
	return r, true
}
