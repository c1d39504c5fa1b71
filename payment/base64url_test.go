package payment

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func TestBase64URL(t *testing.T) {
	for _, s := range []string{"", "AA", "AAA", "AAAA", "-_8", "aGVsbG8", "aGVsbG8=", "aGk=", "aQ==", "AAAAAA=="} {
		b, err := DecodeBase64URL(s)
		if err != nil || EncodeBase64URL(b) != strings.TrimRight(s, "=") {
			t.Errorf("DecodeBase64URL(%q) = %x, %v", s, b, err)
		}
	}
	for _, s := range []string{"A", "AB", "AAB", "a+b/", "aGVs bG8", "aGVs\nbG8", "=", "==", "A===", "aQ=", "aQ===", "a=Q=", "aGVsbG8==", "AAAA="} {
		if b, err := DecodeBase64URL(s); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeBase64URL(%q) = %x, %v; want ErrMalformed", s, b, err)
		}
	}
}

func FuzzDecodeBase64URL(f *testing.F) {
	for _, s := range []string{"", "aGVsbG8", "aGVsbG8=", "AB", "a+b/", "aGVs\nbG8", "aGV=bG8", "aGVsbG8===", "__79"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeBase64URL(s)
		// Exactly what Go's strict unpadded decoder accepts, after at most
		// two '=' that complete a multiple of four, and no line breaks.
		trimmed := s
		if strings.HasSuffix(s, "=") && len(s)%4 == 0 {
			trimmed = strings.TrimSuffix(strings.TrimSuffix(s, "="), "=")
		}
		want, werr := base64.RawURLEncoding.Strict().DecodeString(trimmed)
		if strings.ContainsAny(s, "\r\n") {
			werr = errors.New("line break")
		}
		if (err == nil) != (werr == nil) || err == nil && !bytes.Equal(b, want) {
			t.Fatalf("DecodeBase64URL(%q) = %x, %v; reference %x, %v", s, b, err, want, werr)
		}
		if err == nil && EncodeBase64URL(b) != trimmed {
			t.Fatalf("re-encoding %q gave %q", s, EncodeBase64URL(b))
		}
	})
}
