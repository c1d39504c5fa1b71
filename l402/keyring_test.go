package l402

import (
	"bytes"
	"errors"
	"testing"
)

func TestNewKeyringErrors(t *testing.T) {
	tests := []struct {
		name string
		keys [][]byte
	}{
		{"no keys", nil},
		{"short key", [][]byte{testKey[:31]}},
		{"long key", [][]byte{append(bytes.Clone(testKey), 0)}},
		{"duplicate key", [][]byte{testKey, testOldKey, testKey}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewKeyring(tt.keys...); err == nil {
				t.Fatal("NewKeyring succeeded")
			}
		})
	}
	if _, _, err := (&Keyring{}).Mint(testHash); err == nil {
		t.Fatal("Mint on empty keyring succeeded")
	}
}

func TestNewRootKey(t *testing.T) {
	a, b := NewRootKey(), NewRootKey()
	if len(a) != RootKeySize || bytes.Equal(a, b) {
		t.Fatalf("NewRootKey gave %x and %x", a, b)
	}
}

func TestKeyringCopiesKeys(t *testing.T) {
	key := bytes.Clone(testKey)
	k := mustKeyring(t, key)
	tok, _ := mintTest(t, k, testCaveats()...)
	key[0] ^= 1
	if _, err := k.Verify(tok, testPreimage, testCheck()); err != nil {
		t.Fatalf("Verify after caller changed its key slice: %v", err)
	}
}

func TestKeyRotation(t *testing.T) {
	old := mustKeyring(t, testOldKey)
	oldTok, _ := mintTest(t, old, testCaveats()...)

	rotated := mustKeyring(t, testKey, testOldKey)
	newTok, newID := mintTest(t, rotated, testCaveats()...)
	if newID.keyID() != keyID(testKey) {
		t.Fatal("rotated keyring does not mint with its first key")
	}
	for _, tok := range []string{oldTok, newTok} {
		if _, err := rotated.Verify(tok, testPreimage, testCheck()); err != nil {
			t.Fatalf("rotated keyring: %v", err)
		}
	}

	// Dropping the old key revokes its tokens.
	revoked := mustKeyring(t, testKey)
	if _, err := revoked.Verify(oldTok, testPreimage, testCheck()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("revoked key: error = %v, want ErrUnknownKey", err)
	}
	if _, err := revoked.Verify(newTok, testPreimage, testCheck()); err != nil {
		t.Fatalf("current key: %v", err)
	}
}

func BenchmarkMint(b *testing.B) {
	k := mustKeyring(b, testKey)
	caveats := testCaveats()
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := k.Mint(testHash, caveats...); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNilKeyring(t *testing.T) {
	var k *Keyring
	tok, _ := mintTest(t, mustKeyring(t, testKey), testCaveats()...)
	if _, err := k.Verify(tok, testPreimage, testCheck()); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("nil keyring: error = %v", err)
	}
	if _, _, err := k.Mint(testHash); err == nil {
		t.Fatal("nil keyring minted")
	}
}
