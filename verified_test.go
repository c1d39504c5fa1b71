package lightning

import (
	"strconv"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/l402"
)

func TestVerifiedCredentials(t *testing.T) {
	keys, _ := l402.NewKeyring(l402.NewRootKey())
	rotated, _ := l402.NewKeyring(l402.NewRootKey())
	until := time.Now().Add(time.Hour).Truncate(time.Second)
	token, id, err := keys.Mint([32]byte{1}, l402.ServicesCaveat(l402.Service{Name: "s"}),
		l402.ValidUntilCaveat("s", until.Add(time.Hour)), l402.ValidUntilCaveat("s", until), // narrowed
		l402.ValidUntilCaveat("other", until.Add(-2*time.Hour))) // another service's: ignored
	if err != nil {
		t.Fatal(err)
	}
	value := "L402 " + token + ":00"
	notRevoked := func(l402.Identifier) bool { return false }
	v := newVerifiedCredentials()
	if _, ok := v.lookup(value, keys, notRevoked, time.Now()); ok {
		t.Fatal("hit before add")
	}
	v.add(value, token, "s", 0, keys, id, false)

	for _, tt := range []struct {
		name    string
		keys    *l402.Keyring
		revoked func(l402.Identifier) bool
		at      time.Time
		want    bool
	}{
		{"remembered", keys, notRevoked, time.Now(), true},
		{"a second before the earliest expiry", keys, notRevoked, until.Add(-time.Second), true},
		{"at the earliest expiry", keys, notRevoked, until, false},
		{"keys changed", rotated, notRevoked, time.Now(), false},
		{"revoked", keys, func(got l402.Identifier) bool { return got == id }, time.Now(), false},
	} {
		if got, ok := v.lookup(value, tt.keys, tt.revoked, tt.at); ok != tt.want || ok && got.id != id {
			t.Errorf("%s: lookup = %v, %v; want %v", tt.name, got, ok, tt.want)
		}
	}
	if _, ok := v.lookup("L402 "+token+":01", keys, notRevoked, time.Now()); ok {
		t.Error("another header value hit")
	}

	// Memory stays bounded: old generations go.
	for i := range verifiedMemory * 2 {
		v.add(strconv.Itoa(i)+value, token, "s", 0, keys, id, false)
	}
	if n := v.seen.len(); n > verifiedMemory {
		t.Errorf("%d entries, want at most %d", n, verifiedMemory)
	}
}

// TestVerifiedCredentialsMaxAge: a remembered credential of a token minted
// by a paywall that sells longer access stops where this paywall's own
// tokens would.
func TestVerifiedCredentialsMaxAge(t *testing.T) {
	keys, _ := l402.NewKeyring(l402.NewRootKey())
	issued := time.Now().Truncate(time.Second)
	token, id, err := keys.Mint([32]byte{1}, l402.ServicesCaveat(l402.Service{Name: "s"}),
		l402.ValidUntilCaveat("s", issued.Add(30*24*time.Hour)), l402.IssuedAtCaveat("s", issued))
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifiedCredentials()
	v.add("x", token, "s", 2*time.Minute, keys, id, false)
	notRevoked := func(l402.Identifier) bool { return false }
	if _, ok := v.lookup("x", keys, notRevoked, issued.Add(time.Minute)); !ok {
		t.Error("not remembered within max age")
	}
	if _, ok := v.lookup("x", keys, notRevoked, issued.Add(2*time.Minute)); ok {
		t.Error("remembered past the max age")
	}
}
