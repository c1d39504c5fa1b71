package payment

import (
	"encoding/base64"
	"strings"
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
	if strings.HasSuffix(s, "=") {
		if len(s)%4 != 0 {
			return nil, errDetail(ErrMalformed, "base64url padding to a length that is not a multiple of 4")
		}
		s = strings.TrimSuffix(s, "=")
		s = strings.TrimSuffix(s, "=")
	}
	if !isBase64URL(s) {
		return nil, errDetail(ErrMalformed, "not base64url")
	}
	// One allocation: the input copied to the tail, decoded to the head.
	n := rawURL.DecodedLen(len(s))
	buf := make([]byte, n+len(s))
	copy(buf[n:], s)
	w, err := rawURL.Decode(buf[:n], buf[n:])
	if err != nil {
		return nil, errDetail(ErrMalformed, "not base64url")
	}
	return buf[:w:w], nil
}

// isBase64URL reports whether every byte of s is in the base64url alphabet.
func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
