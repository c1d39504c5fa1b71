package l402

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

func TestCaveatHelpers(t *testing.T) {
	tests := []struct {
		got  Caveat
		want string
	}{
		{ServicesCaveat(Service{Name: "api"}), "services=api:0"},
		{ServicesCaveat(Service{Name: "a", Tier: 2}, Service{Name: "b", Tier: 255}), "services=a:2,b:255"},
		{ValidUntilCaveat("api", time.Unix(1234567890, 999)), "api_valid_until=1234567890"},
		{PriceCaveat("api", 21), "api_price=21"},
		{Caveat{Key: "k", Value: "v=w"}, "k=v=w"},
	}
	for _, tt := range tests {
		if s := tt.got.String(); s != tt.want {
			t.Errorf("String() = %q, want %q", s, tt.want)
		}
	}
}

func TestParseCaveat(t *testing.T) {
	tests := []struct {
		in     string
		want   Caveat
		wantOK bool
	}{
		{"services=api:0", Caveat{"services", "api:0"}, true},
		{"k=v=w", Caveat{"k", "v=w"}, true},
		{" k \t= v ", Caveat{"k", "v"}, true},
		{"k=", Caveat{"k", ""}, true},
		{"novalue", Caveat{"novalue", ""}, false},
		{"", Caveat{}, false},
	}
	for _, tt := range tests {
		got, ok := ParseCaveat(tt.in)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("ParseCaveat(%q) = %+v, %v; want %+v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestMintRejectsBadCaveats(t *testing.T) {
	k := mustKeyring(t, testKey)
	tests := []struct {
		name string
		c    Caveat
	}{
		{"empty key", Caveat{"", "x"}},
		{"equals in key", Caveat{"a=b", "x"}},
		{"space in key", Caveat{"a b", "x"}},
		{"space in value", Caveat{"a", "x y"}},
		{"newline in value", Caveat{"a", "x\ny"}},
		{"non-ascii", Caveat{"a", "é"}},
		{"service with comma", ServicesCaveat(Service{Name: "a,b"})},
		{"service with colon", ServicesCaveat(Service{Name: "a:b"})},
		{"no services", ServicesCaveat()},
		{"empty service", ServicesCaveat(Service{})},
		{"service with space", ServicesCaveat(Service{Name: "a b"})},
		{"negative price", PriceCaveat("api", -1)},
		{"negative time", ValidUntilCaveat("api", time.Unix(-5, 0))},
		{"bad price", Caveat{"api_price", "ten"}},
		{"huge", Caveat{"a", strings.Repeat("x", 600)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := k.Mint(testHash, tt.c); !errors.Is(err, ErrInvalidCaveat) {
				t.Fatalf("Mint error = %v, want ErrInvalidCaveat", err)
			}
		})
	}
	long := make([]Caveat, 30)
	for i := range long {
		long[i] = Caveat{"k", strings.Repeat("v", 130)}
	}
	if _, _, err := k.Mint(testHash, long...); !errors.Is(err, ErrInvalidCaveat) {
		t.Fatalf("oversized token: error = %v", err)
	}
	many := make([]Caveat, MaxCaveats+1)
	for i := range many {
		many[i] = Caveat{"k", "v"}
	}
	if _, _, err := k.Mint(testHash, many...); !errors.Is(err, ErrInvalidCaveat) {
		t.Fatalf("too many caveats: error = %v", err)
	}
	if _, _, err := k.Mint(testHash, many[1:]...); err != nil {
		t.Fatalf("MaxCaveats caveats: %v", err)
	}
}

func TestMintAndDecodeToken(t *testing.T) {
	k := mustKeyring(t, testKey)
	tok, id := mintTest(t, k, testCaveats()...)
	if id.PaymentHash != testHash || id.Version != 0 || id.keyID() != keyID(testKey) {
		t.Fatalf("identifier = %+v", id)
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(tok); err != nil {
		t.Fatalf("token is not padded standard base64: %v", err)
	}
	tok2, id2 := mintTest(t, k, testCaveats()...)
	if tok2 == tok || id2.TokenID == id.TokenID {
		t.Fatal("two mints gave the same token id")
	}

	dec, err := DecodeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"services=api:0", "api_price=100", "api_valid_until=" + itoa(testUntil.Unix())}
	if dec.Location != DefaultLocation || dec.Identifier != id || strings.Join(dec.Caveats, "|") != strings.Join(want, "|") {
		t.Fatalf("DecodeToken = %+v", dec)
	}

	// The reference library reads the same macaroon and verifies it.
	m := unmarshal(t, tok)
	if m.Version() != macaroon.V2 || !bytes.Equal(m.Signature(), dec.Signature[:]) || m.Location() != DefaultLocation {
		t.Fatalf("library sees version %v sig %x location %q", m.Version(), m.Signature(), m.Location())
	}
	if err := m.Verify(testKey, func(string) error { return nil }, nil); err != nil {
		t.Fatalf("library Verify: %v", err)
	}
}

func TestDecodeBase64Forms(t *testing.T) {
	k := mustKeyring(t, testKey)
	var tok string
	// Find a token whose binary length needs padding, so all four forms differ.
	for tok == "" || !strings.HasSuffix(tok, "=") {
		tok, _ = mintTest(t, k, testCaveats()...)
	}
	raw, _ := base64.StdEncoding.DecodeString(tok)
	forms := []string{
		base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
		base64.URLEncoding.EncodeToString(raw),
		base64.RawURLEncoding.EncodeToString(raw),
	}
	for _, f := range forms {
		if _, err := k.Verify(f, testPreimage, testCheck()); err != nil {
			t.Errorf("Verify(%q): %v", f, err)
		}
	}
}

func TestDecodeTokenErrors(t *testing.T) {
	k := mustKeyring(t, testKey)
	tok, _ := mintTest(t, k, testCaveats()...)
	raw, _ := base64.StdEncoding.DecodeString(tok)
	enc := base64.StdEncoding.EncodeToString

	// A third-party caveat, which this package does not support.
	m := unmarshal(t, tok)
	if err := m.AddThirdPartyCaveat([]byte("0123456789abcdef0123456789abcdef"), []byte("cid"), "https://x"); err != nil {
		t.Fatal(err)
	}
	thirdParty := marshal(t, m)
	m = unmarshal(t, tok)
	if err := m.AddThirdPartyCaveat([]byte("0123456789abcdef0123456789abcdef"), []byte("cid"), ""); err != nil {
		t.Fatal(err)
	}
	thirdPartyNoLoc := marshal(t, m)

	// A version 1 macaroon.
	m1, err := macaroon.New(testKey, []byte("a v1 identifier"), "loc", macaroon.V1)
	if err != nil {
		t.Fatal(err)
	}
	v1 := marshal(t, m1)

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"empty", "", ErrMalformed},
		{"garbage", "!!!!", ErrMalformed},
		{"spaces", "QUJD REVG", ErrMalformed},
		{"newline", tok[:8] + "\n" + tok[8:], ErrMalformed},
		{"mixed alphabets", "ab+_" + tok, ErrMalformed},
		{"three pads", tok + "===", ErrMalformed},
		{"pad in middle", "QQ==QUJD", ErrMalformed},
		{"bad pad length", "QUJDRA=", ErrMalformed},
		{"non-zero trailing bits", "QR==", ErrMalformed},
		{"truncated base64", tok[:len(tok)/2+1], ErrMalformed},
		{"too long", strings.Repeat("A", MaxTokenLen+4), ErrMalformed},
		{"truncated binary", enc(raw[:len(raw)-1]), ErrMalformed},
		{"trailing byte", enc(append(bytes.Clone(raw), 0)), ErrMalformed},
		{"empty binary", "AA==", ErrMalformed},
		{"version 1 macaroon", v1, ErrMalformed},
		{"third-party caveat", thirdParty, ErrMalformed},
		{"third-party caveat without location", thirdPartyNoLoc, ErrMalformed},
		{"short identifier", craft(t, testKey, []byte{0, 0, 1}), ErrMalformed},
		{"identifier version 1", craft(t, testKey, idWithKey(t, testKey, 1, testHash)), ErrUnsupportedVersion},
		{"too many caveats", appendCaveats(t, tok, strings.Split(strings.Repeat("x,", MaxCaveats-2), ",")...), ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeToken(tt.tok); !errors.Is(err, tt.want) {
				t.Errorf("DecodeToken error = %v, want %v", err, tt.want)
			}
			if _, err := k.VerifyToken(tt.tok, testCheck()); !errors.Is(err, tt.want) {
				t.Errorf("VerifyToken error = %v, want %v", err, tt.want)
			}
		})
	}

	// No prefix of a token's binary form is a token.
	for i := range raw {
		if _, err := DecodeToken(enc(raw[:i])); err == nil {
			t.Fatalf("prefix of length %d decoded", i)
		}
	}
}

func itoa(v int64) string { return PriceCaveat("", v).Value }

func FuzzDecodeToken(f *testing.F) {
	k := mustKeyring(f, testKey)
	tok, _ := mintTest(f, k, testCaveats()...)
	raw, _ := base64.StdEncoding.DecodeString(tok)
	f.Add(tok)
	f.Add(base64.RawURLEncoding.EncodeToString(raw))
	f.Add(appendCaveats(f, tok, "services=other:0", "api_valid_until=1"))
	m := unmarshal(f, tok)
	m.AddThirdPartyCaveat([]byte("0123456789abcdef0123456789abcdef"), []byte("cid"), "loc")
	f.Add(marshal(f, m))
	f.Add(craft(f, testKey, idWithKey(f, testKey, 1, testHash)))
	f.Add("AgEPY2FkZHk=")
	f.Add("")
	f.Add("====")
	f.Fuzz(func(t *testing.T, s string) {
		_, verr := k.VerifyToken(s, testCheck())
		dec, err := DecodeToken(s)
		if err != nil {
			if verr == nil {
				t.Fatalf("VerifyToken accepts what DecodeToken refuses: %v", err)
			}
			return
		}
		if !validToken(s) {
			t.Fatalf("DecodeToken accepted %q", s)
		}
		// The reference library reads the same macaroon.
		b, err := macaroon.Base64Decode([]byte(s))
		if err != nil {
			t.Fatalf("library cannot base64-decode %q: %v", s, err)
		}
		var lm macaroon.Macaroon
		if err := lm.UnmarshalBinary(b); err != nil {
			t.Fatalf("library cannot read a token we decode: %v", err)
		}
		var libCaveats []string
		for _, c := range lm.Caveats() {
			libCaveats = append(libCaveats, string(c.Id))
		}
		id, _ := dec.Identifier.MarshalBinary()
		if !bytes.Equal(lm.Id(), id) || lm.Location() != dec.Location ||
			!bytes.Equal(lm.Signature(), dec.Signature[:]) ||
			strings.Join(libCaveats, "\x00") != strings.Join(dec.Caveats, "\x00") || len(libCaveats) != len(dec.Caveats) {
			t.Fatalf("library and DecodeToken disagree on %q", s)
		}
		// decode(encode(decode(s))) == decode(s)
		again, err := DecodeToken(marshal(t, &lm))
		if err != nil {
			t.Fatal(err)
		}
		if again.Location != dec.Location || again.Identifier != dec.Identifier || again.Signature != dec.Signature ||
			strings.Join(again.Caveats, "\x00") != strings.Join(dec.Caveats, "\x00") || len(again.Caveats) != len(dec.Caveats) {
			t.Fatalf("re-encoded token decodes differently: %+v vs %+v", again, dec)
		}
		// Our signature check agrees with the library's.
		if dec.Identifier.keyID() == keyID(testKey) {
			ours := ourSignatureOK(k, s)
			theirs := lm.Verify(testKey, func(string) error { return nil }, nil) == nil
			if ours != theirs {
				t.Fatalf("signature check: ours %v, library %v", ours, theirs)
			}
		}
	})
}

func TestTokenValidUntil(t *testing.T) {
	k, err := NewKeyring(NewRootKey())
	if err != nil {
		t.Fatal(err)
	}
	early, late := time.Unix(1_800_000_000, 0), time.Unix(1_900_000_000, 0)
	tok, _, err := k.Mint([32]byte{1}, ServicesCaveat(Service{Name: "a"}),
		ValidUntilCaveat("a", late), ValidUntilCaveat("a", early), ValidUntilCaveat("b", late.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi, found, err := d.ValidUntil("a"); err != nil || !found || !lo.Equal(early) || !hi.Equal(late) {
		t.Errorf(`ValidUntil("a") = %v, %v, %v, %v`, lo, hi, found, err)
	}
	if _, hi, found, err := d.ValidUntil(""); err != nil || !found || !hi.Equal(late.Add(time.Hour)) {
		t.Errorf(`ValidUntil("") latest = %v, %v, %v`, hi, found, err)
	}
	if _, _, found, err := d.ValidUntil("c"); err != nil || found {
		t.Errorf(`ValidUntil("c") found = %v, %v`, found, err)
	}
	d.Caveats = append(d.Caveats, "a_valid_until=soon")
	if _, _, _, err := d.ValidUntil("a"); !errors.Is(err, ErrInvalidCaveat) {
		t.Errorf("malformed caveat: %v", err)
	}
}

func TestTokenIssuedAt(t *testing.T) {
	k, err := NewKeyring(NewRootKey())
	if err != nil {
		t.Fatal(err)
	}
	early, late := time.Unix(1_800_000_000, 0), time.Unix(1_900_000_000, 0)
	tok, _, err := k.Mint([32]byte{1}, ServicesCaveat(Service{Name: "a"}), IssuedAtCaveat("a", late), IssuedAtCaveat("a", early))
	if err != nil {
		t.Fatal(err)
	}
	d, err := DecodeToken(tok)
	if err != nil {
		t.Fatal(err)
	}
	if lo, hi, found, err := d.IssuedAt("a"); err != nil || !found || !lo.Equal(early) || !hi.Equal(late) {
		t.Errorf(`IssuedAt("a") = %v, %v, %v, %v`, lo, hi, found, err)
	}
	if _, _, err := k.Mint([32]byte{1}, Caveat{Key: "a_issued_at", Value: "now"}); !errors.Is(err, ErrInvalidCaveat) {
		t.Errorf("Mint with a malformed issued_at: %v", err)
	}
}
