package l402

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

func TestVerify(t *testing.T) {
	k := mustKeyring(t, testKey, testOldKey)
	tok, id := mintTest(t, k, testCaveats()...)
	otherHash := testHash
	otherHash[0] ^= 1

	at := func(tm time.Time) Checker {
		c := testCheck()
		c.Now = func() time.Time { return tm }
		return c
	}
	with := func(f func(*Checker)) Checker {
		c := testCheck()
		f(&c)
		return c
	}
	wrongPreimage := testPreimage
	wrongPreimage[31] ^= 1

	tests := []struct {
		name     string
		tok      string
		preimage [32]byte
		check    Checker
		want     error
	}{
		{"valid", tok, testPreimage, testCheck(), nil},
		{"one second before expiry", tok, testPreimage, at(testUntil.Add(-time.Second)), nil},
		{"at expiry", tok, testPreimage, at(testUntil), ErrExpired},
		{"expired", tok, testPreimage, at(testUntil.Add(time.Hour)), ErrExpired},
		{"wrong preimage", tok, wrongPreimage, testCheck(), ErrPreimageMismatch},
		{"zero preimage", tok, [32]byte{}, testCheck(), ErrPreimageMismatch},
		{"wrong service", tok, testPreimage, with(func(c *Checker) { c.Service = "other" }), ErrWrongService},
		{"service prefix", tok, testPreimage, with(func(c *Checker) { c.Service = "ap" }), ErrWrongService},
		{"no service in checker", tok, testPreimage, with(func(c *Checker) { c.Service = "" }), ErrWrongService},
		{"wrong price", tok, testPreimage, with(func(c *Checker) { c.Price = 1000 }), ErrWrongPrice},
		{"price not checked", tok, testPreimage, with(func(c *Checker) { c.Price = 0 }), nil},

		// Tampering without the root key.
		{"changed caveat", replaceInToken(t, tok, []byte("api_price=100"), []byte("api_price=900")), testPreimage, with(func(c *Checker) { c.Price = 900 }), ErrInvalidSignature},
		{"changed service", replaceInToken(t, tok, []byte("services=api:0"), []byte("services=xyz:0")), testPreimage, with(func(c *Checker) { c.Service = "xyz" }), ErrInvalidSignature},
		{"other payment hash", replaceInToken(t, tok, testHash[:], otherHash[:]), testPreimage, testCheck(), ErrInvalidSignature},
		{"removed caveat", craftWithSig(t, tok, 2), testPreimage, testCheck(), ErrInvalidSignature},
		{"wrong root key, same key id", craft(t, otherKey, idWithKey(t, testKey, 0, testHash), "services=api:0", "api_price=100"), testPreimage, testCheck(), ErrInvalidSignature},
		{"unknown root key", craft(t, otherKey, idWithKey(t, otherKey, 0, testHash), "services=api:0", "api_price=100"), testPreimage, testCheck(), ErrUnknownKey},
		{"identifier version 1", craft(t, testKey, idWithKey(t, testKey, 1, testHash), "services=api:0", "api_price=100"), testPreimage, testCheck(), ErrUnsupportedVersion},
		{"truncated", tok[:len(tok)-8], testPreimage, testCheck(), ErrMalformed},
		{"garbage", "bm90IGEgdG9rZW4=", testPreimage, testCheck(), ErrMalformed},

		// A holder may append caveats: they can only narrow.
		{"appended other service", appendCaveats(t, tok, "services=other:0"), testPreimage, with(func(c *Checker) { c.Service = "other" }), ErrWrongService},
		{"appended services list", appendCaveats(t, tok, "services=other:0,api:1"), testPreimage, testCheck(), nil},
		{"appended later expiry", appendCaveats(t, tok, "api_valid_until="+itoa(testUntil.Unix()+1e6)), testPreimage, at(testUntil.Add(time.Minute)), ErrExpired},
		{"appended earlier expiry", appendCaveats(t, tok, "api_valid_until="+itoa(testNow.Unix())), testPreimage, testCheck(), ErrExpired},
		{"appended spaced expiry", appendCaveats(t, tok, " api_valid_until = "+itoa(testNow.Unix())), testPreimage, testCheck(), ErrExpired},
		{"appended cheaper price", appendCaveats(t, tok, "api_price=1"), testPreimage, testCheck(), ErrWrongPrice},
		{"appended cheaper price checked at that price", appendCaveats(t, tok, "api_price=1"), testPreimage, with(func(c *Checker) { c.Price = 1 }), ErrWrongPrice},
		{"appended unknown caveat", appendCaveats(t, tok, "color=blue", "nonsense"), testPreimage, testCheck(), nil},
		{"appended other service expiry", appendCaveats(t, tok, "other_valid_until=1"), testPreimage, testCheck(), nil},
		{"appended malformed expiry", appendCaveats(t, tok, "api_valid_until=soon"), testPreimage, testCheck(), ErrInvalidCaveat},
		{"appended malformed services", appendCaveats(t, tok, "services=api"), testPreimage, testCheck(), ErrInvalidCaveat},
		{"appended empty services", appendCaveats(t, tok, "services="), testPreimage, testCheck(), ErrInvalidCaveat},
		{"appended services trailing comma", appendCaveats(t, tok, "services=api:0,"), testPreimage, testCheck(), ErrInvalidCaveat},
		{"appended malformed price", appendCaveats(t, tok, "api_price=-1"), testPreimage, testCheck(), ErrInvalidCaveat},

		// Tokens that lack a required caveat.
		{"no services caveat", craft(t, testKey, idWithKey(t, testKey, 0, testHash), "api_price=100"), testPreimage, testCheck(), ErrWrongService},
		{"no price caveat", craft(t, testKey, idWithKey(t, testKey, 0, testHash), "services=api:0"), testPreimage, testCheck(), ErrWrongPrice},
		{"no expiry caveat", craft(t, testKey, idWithKey(t, testKey, 0, testHash), "services=api:0", "api_price=100"), testPreimage, testCheck(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := k.Verify(tt.tok, tt.preimage, tt.check)
			if !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Fatalf("Verify error = %v, want %v", err, tt.want)
			}
			if err != nil {
				if got != (Identifier{}) {
					t.Errorf("Verify returned identifier %+v with error", got)
				}
				checkNoSecrets(t, err, tt.tok)
				return
			}
			if got.PaymentHash != testHash {
				t.Errorf("payment hash = %x", got.PaymentHash)
			}
			if tt.tok == tok && got != id {
				t.Errorf("identifier = %+v, want %+v", got, id)
			}
		})
	}
}

// craftWithSig re-encodes tok without its caveat number drop, keeping the
// signature.
func craftWithSig(t *testing.T, tok string, drop int) string {
	t.Helper()
	raw, _ := base64.StdEncoding.DecodeString(tok)
	m, err := parseMacaroon(raw)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]byte(nil), raw[:len(raw)-len(m.caveats)-1-2-32]...)
	it := m.caveatIter()
	i := 0
	for cav, ok := it.next(); ok; cav, ok = it.next() {
		if i != drop {
			out = append(out, 2, byte(len(cav)))
			out = append(out, cav...)
			out = append(out, 0)
		}
		i++
	}
	out = append(out, 0, 6, 32)
	out = append(out, m.sig...)
	return base64.StdEncoding.EncodeToString(out)
}

// checkNoSecrets fails if an error message carries the preimage, a root key
// or the token.
func checkNoSecrets(t *testing.T, err error, tok string) {
	t.Helper()
	msg := strings.ToLower(err.Error())
	secrets := []string{tok}
	for _, s := range [][]byte{testPreimage[:], testKey, testOldKey} {
		secrets = append(secrets, hex.EncodeToString(s), base64.StdEncoding.EncodeToString(s), string(s))
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg, strings.ToLower(s)) {
			t.Fatalf("error %q contains a secret", err)
		}
	}
}

func TestCheckerExtra(t *testing.T) {
	k := mustKeyring(t, testKey)
	tok, _ := mintTest(t, k, append(testCaveats(), Caveat{"api_capabilities", "read,list"})...)
	tok = appendCaveats(t, tok, "api_capabilities=read", "flag")

	var seen []string
	c := testCheck()
	c.Extra = func(key, value string) error {
		seen = append(seen, key+"="+value)
		return nil
	}
	if _, err := k.Verify(tok, testPreimage, c); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(seen, "|"); got != "api_capabilities=read,list|api_capabilities=read|flag=" {
		t.Fatalf("Extra saw %q", got)
	}

	errNoWrite := errors.New("capability write not granted")
	c.Extra = func(key, value string) error {
		if key == "api_capabilities" && !strings.Contains(value, "write") {
			return errNoWrite
		}
		return nil
	}
	_, err := k.Verify(tok, testPreimage, c)
	if !errors.Is(err, ErrInvalidCaveat) || !errors.Is(err, errNoWrite) {
		t.Fatalf("error = %v, want ErrInvalidCaveat wrapping the checker's error", err)
	}
}

func TestVerifyTokenAndCredential(t *testing.T) {
	k := mustKeyring(t, testKey)
	tok, id := mintTest(t, k, testCaveats()...)

	got, err := k.VerifyToken(tok, testCheck())
	if err != nil || got != id {
		t.Fatalf("VerifyToken = %+v, %v", got, err)
	}
	c := testCheck()
	c.Service = "other"
	if _, err := k.VerifyToken(tok, c); !errors.Is(err, ErrWrongService) {
		t.Fatalf("VerifyToken checks caveats: error = %v", err)
	}
	if _, err := k.VerifyToken(replaceInToken(t, tok, []byte("api:0"), []byte("api:1")), testCheck()); !errors.Is(err, ErrInvalidSignature) {
		t.Fatalf("VerifyToken checks the signature: error = %v", err)
	}

	got, err = k.VerifyCredential(Credential{Token: tok}, testCheck())
	if !errors.Is(err, ErrPreimageRequired) || got != id {
		t.Fatalf("VerifyCredential without preimage = %+v, %v", got, err)
	}
	got, err = k.VerifyCredential(Credential{Token: tok, Preimage: testPreimage, HasPreimage: true}, testCheck())
	if err != nil || got != id {
		t.Fatalf("VerifyCredential = %+v, %v", got, err)
	}
	if _, err = k.VerifyCredential(Credential{Token: tok, HasPreimage: true}, testCheck()); !errors.Is(err, ErrPreimageMismatch) {
		t.Fatalf("VerifyCredential with zero preimage: error = %v", err)
	}
}

func TestAuthenticate(t *testing.T) {
	k := mustKeyring(t, testKey)
	tok, id := mintTest(t, k, testCaveats()...)
	expired, _ := mintTest(t, k, ServicesCaveat(Service{Name: "api"}), PriceCaveat("api", 100), ValidUntilCaveat("api", testNow))
	pre := hex.EncodeToString(testPreimage[:])
	bad := strings.Repeat("0", 64)
	forged := replaceInToken(t, tok, []byte("api:0"), []byte("api:1"))

	tests := []struct {
		name    string
		values  []string
		wantID  bool
		wantErr error
	}{
		{"valid", []string{"L402 " + tok + ":" + pre}, true, nil},
		{"valid LSAT upper hex", []string{"LSAT " + tok + ":" + strings.ToUpper(pre)}, true, nil},
		{"valid after an invalid value", []string{"L402 " + tok + ":" + bad, "L402 " + tok + ":" + pre}, true, nil},
		{"valid before an invalid value", []string{"L402 " + tok + ":" + pre, "L402 garbage:" + bad}, true, nil},
		{"second of two tokens", []string{"L402 " + expired + "," + tok + ":" + pre}, true, nil},
		{"paid beats unpaid", []string{"L402 " + tok, "L402 " + tok + ":" + pre}, true, nil},
		{"token only", []string{"L402 " + tok}, true, ErrPreimageRequired},
		{"token only after failures", []string{"L402 " + forged + ":" + pre, "L402 " + tok + ":"}, true, ErrPreimageRequired},
		{"none", nil, false, ErrNoCredentials},
		{"other scheme", []string{"Basic dXNlcjpwYXNz", "Bearer abc"}, false, ErrNoCredentials},
		{"malformed", []string{"L402 ???:" + pre}, false, ErrMalformed},
		{"wrong preimage", []string{"L402 " + tok + ":" + bad}, false, ErrPreimageMismatch},
		{"most telling error", []string{"L402 AAAA:" + pre, "L402 " + forged + ":" + pre, "L402 " + expired + ":" + pre, "L402 " + forged + ":" + pre}, false, ErrExpired},
		{"signature beats garbage", []string{"L402 AAAA:" + pre, "L402 " + forged + ":" + pre}, false, ErrInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cred, got, err := k.Authenticate(tt.values, testCheck())
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("error = %v, want %v", err, tt.wantErr)
			}
			if tt.wantID && got != id || !tt.wantID && got != (Identifier{}) {
				t.Fatalf("identifier = %+v", got)
			}
			if tt.wantID && cred.Token == "" || !tt.wantID && cred != (Credential{}) {
				t.Fatalf("credential = %+v", cred)
			}
		})
	}
}

// TestSignatureMatchesLibrary checks the fast signature check against
// gopkg.in/macaroon.v2 on random mutations of a token.
func TestSignatureMatchesLibrary(t *testing.T) {
	k := mustKeyring(t, testKey)
	tok, _ := mintTest(t, k, testCaveats()...)
	raw, _ := base64.StdEncoding.DecodeString(tok)
	r := rand.New(rand.NewPCG(1, 2))
	n := 20000
	if testing.Short() {
		n = 2000
	}
	agreeOK := 0
	for range n {
		b := bytes.Clone(raw)
		switch r.IntN(3) {
		case 0:
			b[r.IntN(len(b))] ^= byte(1 << r.IntN(8))
		case 1:
			b[r.IntN(len(b))] = byte(r.IntN(256))
		case 2:
			b = appendTestCaveat(t, b, r)
		}
		ours := ourSignatureOK(k, base64.StdEncoding.EncodeToString(b))
		theirs := librarySignatureOK(b, testKey)
		if ours && !theirs {
			t.Fatalf("we accept a signature the library rejects: %x", b)
		}
		if ours {
			agreeOK++
		}
	}
	if agreeOK == 0 {
		t.Fatal("no mutation kept a valid signature; appended caveats should")
	}
}

func appendTestCaveat(t *testing.T, raw []byte, r *rand.Rand) []byte {
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	m.AddFirstPartyCaveat([]byte("k=" + strings.Repeat("v", r.IntN(200))))
	b, _ := m.MarshalBinary()
	return b
}

func ourSignatureOK(k *Keyring, tok string) bool {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	_, _, err := k.verifySignature(s, tok)
	return err == nil
}

func librarySignatureOK(raw, rootKey []byte) bool {
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(raw); err != nil {
		return false
	}
	return m.Verify(rootKey, func(string) error { return nil }, nil) == nil
}

func TestVerifyConcurrent(t *testing.T) {
	k := mustKeyring(t, testKey, testOldKey)
	old := mustKeyring(t, testOldKey)
	tokens := []string{}
	for i := range 8 {
		kr := k
		if i%2 == 1 {
			kr = old
		}
		tok, _ := mintTest(t, kr, testCaveats()...)
		tokens = append(tokens, tok)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				tok := tokens[(g+i)%len(tokens)]
				if _, err := k.Verify(tok, testPreimage, testCheck()); err != nil {
					t.Error(err)
					return
				}
				if _, err := k.Verify(tok, [32]byte{}, testCheck()); !errors.Is(err, ErrPreimageMismatch) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifyAllocations(t *testing.T) {
	k := mustKeyring(t, testKey)
	tok, _ := mintTest(t, k, testCaveats()...)
	c := testCheck()
	allocs := testing.AllocsPerRun(200, func() {
		if _, err := k.Verify(tok, testPreimage, c); err != nil {
			t.Fatal(err)
		}
	})
	// Zero in normal builds; the race detector makes sync.Pool drop items.
	if allocs > 1 {
		t.Fatalf("Verify allocates %v times per call", allocs)
	}
}

// BenchmarkVerify is the full verification of a token with three caveats
// and its preimage.
func BenchmarkVerify(b *testing.B) {
	k := mustKeyring(b, testKey, testOldKey)
	tok, _ := mintTest(b, k, testCaveats()...)
	c := testCheck()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(tok, testPreimage, c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyToken(b *testing.B) {
	k := mustKeyring(b, testKey)
	tok, _ := mintTest(b, k, testCaveats()...)
	c := testCheck()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.VerifyToken(tok, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticate parses an Authorization header and verifies it.
func BenchmarkAuthenticate(b *testing.B) {
	k := mustKeyring(b, testKey)
	tok, _ := mintTest(b, k, testCaveats()...)
	v, _ := FormatAuthorization(tok, testPreimage)
	values := []string{v}
	c := testCheck()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Authenticate(values, c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyForged measures the cost of rejecting a forged token.
func BenchmarkVerifyForged(b *testing.B) {
	k := mustKeyring(b, testKey)
	tok, _ := mintTest(b, k, testCaveats()...)
	tok = replaceInToken(b, tok, []byte("api:0"), []byte("api:1"))
	c := testCheck()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := k.Verify(tok, testPreimage, c); err == nil {
			b.Fatal("forged token verified")
		}
	}
}

// TestCheckerMaxAge: a route that sells shorter access than the one that
// minted a token of the same service bounds it by the token's issued_at; an
// issued_at a holder appends can only narrow.
func TestCheckerMaxAge(t *testing.T) {
	k, err := NewKeyring(NewRootKey())
	if err != nil {
		t.Fatal(err)
	}
	issued := time.Unix(1_800_000_000, 0)
	tok, _, err := k.Mint([32]byte{1}, ServicesCaveat(Service{Name: "a"}),
		ValidUntilCaveat("a", issued.Add(30*24*time.Hour)), IssuedAtCaveat("a", issued))
	if err != nil {
		t.Fatal(err)
	}
	at := func(d time.Duration) func() time.Time { return func() time.Time { return issued.Add(d) } }
	for _, tt := range []struct {
		maxAge, at time.Duration
		ok         bool
	}{
		{0, 29 * 24 * time.Hour, true},
		{2 * time.Minute, time.Minute, true},
		{2 * time.Minute, 2 * time.Minute, false},
		{2 * time.Minute, time.Hour, false},
	} {
		_, err := k.VerifyToken(tok, Checker{Service: "a", MaxAge: tt.maxAge, Now: at(tt.at)})
		if ok := err == nil; ok != tt.ok || !ok && !errors.Is(err, ErrExpired) {
			t.Errorf("MaxAge %v at +%v: %v", tt.maxAge, tt.at, err)
		}
	}
	// Appending a later issued_at does not make the token younger.
	younger := appendCaveats(t, tok, "a_issued_at="+strconv.FormatInt(issued.Add(time.Hour).Unix(), 10))
	if _, err := k.VerifyToken(younger, Checker{Service: "a", MaxAge: 2 * time.Minute, Now: at(time.Hour)}); !errors.Is(err, ErrExpired) {
		t.Errorf("a later issued_at appended widened the token: %v", err)
	}
}

// TestBinding: a binding is the keyring holder's alone and differs per token
// and per label.
func TestBinding(t *testing.T) {
	k, _ := NewKeyring(NewRootKey())
	other, _ := NewKeyring(NewRootKey())
	_, id1, _ := k.Mint([32]byte{1}, ServicesCaveat(Service{Name: "a"}))
	_, id2, _ := k.Mint([32]byte{1}, ServicesCaveat(Service{Name: "a"}))
	b1, ok1 := k.Binding(id1, "x")
	b1again, _ := k.Binding(id1, "x")
	b2, _ := k.Binding(id2, "x")
	b1y, _ := k.Binding(id1, "y")
	if !ok1 || b1 != b1again || b1 == b2 || b1 == b1y || b1 == ([32]byte{}) {
		t.Errorf("bindings: %x %x %x %x", b1, b1again, b2, b1y)
	}
	if _, ok := other.Binding(id1, "x"); ok {
		t.Error("a keyring without the token's key computed a binding")
	}
}
