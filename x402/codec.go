package x402

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// MaxHeaderLen bounds the x402 header values decoded and encoded: an
// offer or a payment holds one invoice, a few hundred bytes.
const MaxHeaderLen = 16 << 10

// encodeHeader returns standard base64 (padded) of v's JSON, written in
// ASCII.
func encodeHeader(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", errdetail.New(ErrInvalidParameter, err.Error())
	}
	s := base64.StdEncoding.EncodeToString(asciiJSON(b))
	if len(s) > MaxHeaderLen {
		return "", errdetail.New(ErrInvalidParameter, "header longer than "+strconv.Itoa(MaxHeaderLen))
	}
	return s, nil
}

// asciiJSON rewrites every non-ASCII character of a JSON text as a \u
// escape (a surrogate pair above U+FFFF). Outside strings JSON has none.
// atob, with which browsers decode these headers, yields Latin-1, so UTF-8
// would reach JSON.parse garbled.
func asciiJSON(b []byte) []byte {
	i := 0
	for i < len(b) && b[i] < utf8.RuneSelf {
		i++
	}
	if i == len(b) {
		return b
	}
	const hex = "0123456789abcdef"
	out := append(make([]byte, 0, len(b)+32), b[:i]...)
	for i < len(b) {
		if b[i] < utf8.RuneSelf {
			out = append(out, b[i])
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:]) // json.Marshal wrote valid UTF-8
		i += size
		units := []rune{r}
		if r > 0xffff {
			r -= 0x10000
			units = []rune{0xd800 + r>>10, 0xdc00 + r&0x3ff}
		}
		for _, u := range units {
			out = append(out, '\\', 'u', hex[u>>12&0xf], hex[u>>8&0xf], hex[u>>4&0xf], hex[u&0xf])
		}
	}
	return out
}

// decodeHeader decodes standard base64 (padded, or unpadded) of a JSON
// object into v. It refuses other alphabets, line breaks and spaces, and
// values longer than MaxHeaderLen. Errors are ErrMalformed.
func decodeHeader(s string, v any) error {
	if s == "" || len(s) > MaxHeaderLen {
		return errdetail.New(ErrMalformed, "empty or longer than "+strconv.Itoa(MaxHeaderLen))
	}
	enc := base64.RawStdEncoding.Strict()
	if len(s)%4 == 0 {
		enc = base64.StdEncoding.Strict()
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '\r' || c == '\n' { // which Go's decoder skips
			return errdetail.New(ErrMalformed, "line break in base64")
		}
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return errdetail.New(ErrMalformed, "not standard base64")
	}
	if b = bytes.TrimLeft(b, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return errdetail.New(ErrMalformed, "not a JSON object")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return errdetail.New(ErrMalformed, "JSON: "+err.Error())
	}
	return nil
}

// isInvoiceText reports whether s looks like a BOLT 11 invoice: 1 to 4096
// letters and digits (bech32). Decoding it is the caller's business.
func isInvoiceText(s string) bool {
	if s == "" || len(s) > 4096 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// isDecimal reports whether s is a non-negative decimal integer without
// sign or leading zeros that fits an int64.
func isDecimal(s string) bool {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}
