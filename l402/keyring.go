package l402

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"strconv"

	"gopkg.in/macaroon.v2"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// RootKeySize is the size of a root key.
const RootKeySize = 32

// Keyring holds root keys in memory. Its first key mints tokens; every key
// verifies them. A token names its key by a 4-byte key id (derived from the
// key) at the start of its token id, so verification costs one lookup and
// one signature check whatever the number of keys.
//
// To rotate, build a new Keyring with the new key first and the old keys
// after it; to revoke every token of a key, leave the key out. A Keyring is
// immutable and safe for concurrent use.
type Keyring struct {
	keys []rootKey
}

type rootKey struct {
	id      uint32
	root    [RootKeySize]byte
	derived [32]byte // the macaroon signing key derived from root
}

// NewRootKey returns a new random root key.
func NewRootKey() []byte {
	k := make([]byte, RootKeySize)
	rand.Read(k) // never fails: crypto/rand crashes the program instead
	return k
}

// NewKeyring returns a keyring of the given 32-byte root keys, the first of
// which mints. It copies the keys.
func NewKeyring(keys ...[]byte) (*Keyring, error) {
	if len(keys) == 0 {
		return nil, errors.New("l402: no root keys")
	}
	k := &Keyring{keys: make([]rootKey, len(keys))}
	for i, key := range keys {
		if len(key) != RootKeySize {
			return nil, errors.New("l402: root key " + strconv.Itoa(i) + " is not " + strconv.Itoa(RootKeySize) + " bytes")
		}
		rk := &k.keys[i]
		copy(rk.root[:], key)
		rk.id = keyID(key)
		rk.derived = derivedKey(key)
		for j := range i {
			if k.keys[j].id == rk.id {
				return nil, errors.New("l402: root keys " + strconv.Itoa(j) + " and " + strconv.Itoa(i) + " are equal or share a key id")
			}
		}
	}
	return k, nil
}

// keyID derives the public 4-byte name of a root key.
// KeyID returns the public id of a root key, in hex: the first 4 bytes of
// the token id of every token it mints. It reveals nothing of the key.
func KeyID(rootKey []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], keyID(rootKey))
	return hex.EncodeToString(b[:])
}

func keyID(rootKey []byte) uint32 {
	h := hmac.New(sha256.New, rootKey)
	h.Write([]byte("caddy-lightning/l402 key id"))
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// derivedKey is the key gopkg.in/macaroon.v2 derives from a root key to sign
// a macaroon's identifier.
func derivedKey(rootKey []byte) [32]byte {
	h := hmac.New(sha256.New, []byte("macaroons-key-generator"))
	h.Write(rootKey)
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// lookup returns the key with the given id, or nil.
func (k *Keyring) lookup(id uint32) *rootKey {
	if k == nil {
		return nil
	}
	for i := range k.keys {
		if k.keys[i].id == id {
			return &k.keys[i]
		}
	}
	return nil
}

// Mint returns a new token for paymentHash carrying the caveats in order,
// signed with the keyring's first key, and its identifier. The token is a
// base64 (standard, padded) binary V2 macaroon. Mint refuses caveats with
// an empty key, '=' or non-printable ASCII in the key, spaces or
// non-printable ASCII in the value, malformed values for the caveats this
// package interprets, more than MaxCaveats caveats and tokens longer than
// MaxTokenLen.
func (k *Keyring) Mint(paymentHash [32]byte, caveats ...Caveat) (string, Identifier, error) {
	if k == nil || len(k.keys) == 0 {
		return "", Identifier{}, errors.New("l402: empty keyring")
	}
	key := &k.keys[0]
	id := Identifier{Version: IdentifierVersion, PaymentHash: paymentHash}
	rand.Read(id.TokenID[:])
	binary.BigEndian.PutUint32(id.TokenID[:4], key.id)
	raw, err := id.MarshalBinary()
	if err != nil {
		return "", Identifier{}, err
	}
	m, err := macaroon.New(key.root[:], raw, DefaultLocation, macaroon.V2)
	if err != nil {
		return "", Identifier{}, err
	}
	if len(caveats) > MaxCaveats {
		return "", Identifier{}, errdetail.New(ErrInvalidCaveat, "more than "+strconv.Itoa(MaxCaveats)+" caveats")
	}
	for _, c := range caveats {
		if err := validateCaveat(c); err != nil {
			return "", Identifier{}, err
		}
		if err := m.AddFirstPartyCaveat([]byte(c.String())); err != nil {
			return "", Identifier{}, err
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		return "", Identifier{}, err
	}
	if base64.StdEncoding.EncodedLen(len(b)) > MaxTokenLen {
		return "", Identifier{}, errdetail.New(ErrInvalidCaveat, "caveats make the token longer than MaxTokenLen")
	}
	return base64.StdEncoding.EncodeToString(b), id, nil
}

// Binding returns HMAC-SHA256(root key, label || 0 || token id) under the
// root key that minted the token with id: a value only the keyring's holder
// can compute, which ties something to that one token without storing
// anything (the paywall ties the browser that asked for a token to it).
// ok is false if the keyring does not hold the token's key.
func (k *Keyring) Binding(id Identifier, label string) (b [32]byte, ok bool) {
	key := k.lookup(id.keyID())
	if key == nil {
		return b, false
	}
	h := hmac.New(sha256.New, key.root[:])
	h.Write([]byte(label))
	h.Write([]byte{0})
	h.Write(id.TokenID[:])
	h.Sum(b[:0])
	return b, true
}
