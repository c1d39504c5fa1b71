package payment

import (
	"encoding/base64"
	"strings"
	"sync"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

var rawURL = base64.RawURLEncoding.Strict()

// EncodeBase64URL encodes b as base64url without padding (RFC 4648 §5), the
// encoding of the request and opaque auth-params, of credentials and of
// receipts (draft-httpauth-payment-00 §5.1.1, §5.2, §5.3).
func EncodeBase64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// DecodeBase64URL decodes base64url with or without padding, as
// draft-lightning-charge-00 §6 requires of receivers. It is strict: at most
// two '=' and only when they complete a multiple of four characters, no byte
// outside A-Z a-z 0-9 '-' '_' (so no line breaks and no standard alphabet),
// and zero trailing bits (so each byte string has one spelling).
func DecodeBase64URL(s string) ([]byte, error) {
	s, err := trimBase64URL(s)
	if err != nil {
		return nil, err
	}
	// One allocation: the input copied to the tail, decoded to the head.
	n := rawURL.DecodedLen(len(s))
	buf := make([]byte, n+len(s))
	copy(buf[n:], s)
	w, err := rawURL.Decode(buf[:n], buf[n:])
	if err != nil {
		return nil, errdetail.New(ErrMalformed, "not base64url")
	}
	return buf[:w:w], nil
}

// decodeBase64URLString is DecodeBase64URL returning a string, with one
// allocation (the string) for inputs up to maxPooledDecode.
func decodeBase64URLString(s string) (string, error) {
	s, err := trimBase64URL(s)
	if err != nil {
		return "", err
	}
	if len(s) > maxPooledDecode {
		b, err := DecodeBase64URL(s)
		return string(b), err
	}
	buf := decodePool.Get().(*[2 * maxPooledDecode]byte)
	defer decodePool.Put(buf)
	src, dst := buf[:len(s)], buf[maxPooledDecode:]
	copy(src, s)
	w, err := rawURL.Decode(dst, src)
	if err != nil {
		return "", errdetail.New(ErrMalformed, "not base64url")
	}
	return string(dst[:w]), nil
}

// maxPooledDecode is the longest input decodeBase64URLString decodes in a
// pooled buffer: every credential and request.
const maxPooledDecode = MaxCredentialLen

var decodePool = sync.Pool{New: func() any { return new([2 * maxPooledDecode]byte) }}

// trimBase64URL removes the padding of s, refusing more than two '=', '='
// that do not complete a multiple of four and line breaks; the decoder
// refuses the other bytes outside the base64url alphabet.
func trimBase64URL(s string) (string, error) {
	if strings.HasSuffix(s, "=") {
		if len(s)%4 != 0 {
			return "", errdetail.New(ErrMalformed, "base64url padding to a length that is not a multiple of 4")
		}
		s = strings.TrimSuffix(s, "=")
		s = strings.TrimSuffix(s, "=")
	}
	// The strict decoder refuses every byte outside the alphabet but the
	// line breaks, which it skips.
	if strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\n') >= 0 {
		return "", errdetail.New(ErrMalformed, "not base64url")
	}
	return s, nil
}

// isBase64URL reports whether every byte of s is in the base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		if !base64URLAlphabet[s[i]] {
			return false
		}
	}
	return true
}

var base64URLAlphabet = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" {
		t[c] = true
	}
	return t
}()
