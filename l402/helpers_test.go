package l402

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"testing"
	"time"

	"gopkg.in/macaroon.v2"
)

var (
	testKey    = bytes.Repeat([]byte{0x11}, RootKeySize)
	testOldKey = bytes.Repeat([]byte{0x22}, RootKeySize)
	otherKey   = bytes.Repeat([]byte{0x33}, RootKeySize)

	testPreimage = [32]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	testHash     = sha256.Sum256(testPreimage[:])

	testNow   = time.Unix(1_800_000_000, 0)
	testUntil = testNow.Add(time.Hour)
)

// testCheck is the checker matching testCaveats.
func testCheck() Checker {
	return Checker{Service: "api", Price: 100, Now: func() time.Time { return testNow }}
}

func testCaveats() []Caveat {
	return []Caveat{
		ServicesCaveat(Service{Name: "api"}),
		PriceCaveat("api", 100),
		ValidUntilCaveat("api", testUntil),
	}
}

func mustKeyring(t testing.TB, keys ...[]byte) *Keyring {
	t.Helper()
	k, err := NewKeyring(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mintTest mints a token over testHash with the given caveats.
func mintTest(t testing.TB, k *Keyring, caveats ...Caveat) (string, Identifier) {
	t.Helper()
	tok, id, err := k.Mint(testHash, caveats...)
	if err != nil {
		t.Fatal(err)
	}
	return tok, id
}

// unmarshal decodes a token with gopkg.in/macaroon.v2.
func unmarshal(t testing.TB, tok string) *macaroon.Macaroon {
	t.Helper()
	b, err := macaroon.Base64Decode([]byte(tok))
	if err != nil {
		t.Fatal(err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &m
}

// marshal encodes a macaroon as a token.
func marshal(t testing.TB, m *macaroon.Macaroon) string {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// appendCaveats does what any token holder can: add caveats and re-chain
// the signature.
func appendCaveats(t testing.TB, tok string, caveats ...string) string {
	t.Helper()
	m := unmarshal(t, tok)
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	return marshal(t, m)
}

// craft signs an arbitrary identifier and caveats with rootKey.
func craft(t testing.TB, rootKey, id []byte, caveats ...string) string {
	t.Helper()
	m, err := macaroon.New(rootKey, id, DefaultLocation, macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	return marshal(t, m)
}

// replaceInToken replaces bytes inside the binary token without re-signing.
func replaceInToken(t testing.TB, tok string, old, new []byte) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, old) {
		t.Fatalf("token does not contain %q", old)
	}
	return base64.StdEncoding.EncodeToString(bytes.Replace(b, old, new, 1))
}

// idWithKey returns an encoded identifier naming rootKey's key id.
func idWithKey(t testing.TB, rootKey []byte, version uint16, hash [32]byte) []byte {
	t.Helper()
	b := []byte{byte(version >> 8), byte(version)}
	b = append(b, hash[:]...)
	tid := make([]byte, 32)
	kid := keyID(rootKey)
	tid[0], tid[1], tid[2], tid[3] = byte(kid>>24), byte(kid>>16), byte(kid>>8), byte(kid)
	return append(b, tid...)
}
