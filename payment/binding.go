package payment

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"sync"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// idLen is the length of a challenge id: base64url of 32 bytes, unpadded.
const idLen = 43

// ChallengeID returns the challenge id of draft-httpauth-payment-00
// §5.1.2.1.1 ("Recommended: HMAC-SHA256 Binding"):
//
//	base64url_nopad(HMAC-SHA256(secret, realm|method|intent|request|expires|digest|opaque))
//
// over the exact wire strings of c, absent optional slots as empty strings.
// It neither checks nor escapes the slots: a '|' inside one makes two
// parameter sets share an id, which is why Binder.Bind refuses them.
func ChallengeID(secret []byte, c *Challenge) string {
	m := hmac.New(sha256.New, secret)
	m.Write(appendHMACInput(nil, c))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func appendHMACInput(b []byte, c *Challenge) []byte {
	b = append(b, c.Realm...)
	b = append(b, '|')
	b = append(b, c.Method...)
	b = append(b, '|')
	b = append(b, c.Intent...)
	b = append(b, '|')
	b = append(b, c.Request...)
	b = append(b, '|')
	b = append(b, c.Expires...)
	b = append(b, '|')
	b = append(b, c.Digest...)
	b = append(b, '|')
	return append(b, c.Opaque...)
}

// Binder issues and checks stateless challenge ids with one or more HMAC
// secrets (draft-httpauth-payment-00 §5.1.2.1.1). The first secret binds
// new challenges; all of them verify, so the previous secret can be kept
// until the challenges it bound have expired (§11.2.2). A Binder is safe for
// concurrent use; its hot path does not allocate.
type Binder struct {
	keys []*binderKey
}

type binderKey struct {
	pool sync.Pool // of *binderState
}

type binderState struct {
	mac   hash.Hash
	input []byte
	sum   [sha256.Size]byte
	enc   [idLen]byte
	id    [idLen]byte
}

// NewBinder returns a Binder for the given secrets, newest first. Each
// must be non-empty (32 random bytes are recommended); the secrets are
// copied.
func NewBinder(secrets ...[]byte) (*Binder, error) {
	if len(secrets) == 0 {
		return nil, errdetail.New(ErrInvalidParameter, "no challenge secret")
	}
	b := &Binder{}
	for _, s := range secrets {
		if len(s) == 0 {
			return nil, errdetail.New(ErrInvalidParameter, "empty challenge secret")
		}
		key := append([]byte(nil), s...)
		b.keys = append(b.keys, &binderKey{pool: sync.Pool{New: func() any {
			return &binderState{mac: hmac.New(sha256.New, key)}
		}}})
	}
	return b, nil
}

// Bind checks c's parameters as Challenge.Format does (so a realm or digest
// holding the delimiter '|' is refused) and sets c.ID to their HMAC under
// the newest secret. Errors are ErrInvalidParameter.
func (b *Binder) Bind(c *Challenge) error {
	if err := c.validate(); err != nil {
		return err
	}
	s := b.keys[0].pool.Get().(*binderState)
	defer b.keys[0].pool.Put(s)
	s.compute(c)
	c.ID = string(s.enc[:])
	return nil
}

// Verify reports whether c.ID is the HMAC of c's other parameters (as
// echoed, never re-encoded) under any of the secrets, comparing in
// constant time.
func (b *Binder) Verify(c *Challenge) bool {
	if len(c.ID) != idLen {
		return false
	}
	for _, k := range b.keys {
		s := k.pool.Get().(*binderState)
		s.compute(c)
		copy(s.id[:], c.ID)
		ok := hmac.Equal(s.enc[:], s.id[:])
		k.pool.Put(s)
		if ok {
			return true
		}
	}
	return false
}

// compute writes the id of c under the state's key to s.enc.
func (s *binderState) compute(c *Challenge) {
	s.input = appendHMACInput(s.input[:0], c)
	s.mac.Reset()
	s.mac.Write(s.input)
	base64.RawURLEncoding.Encode(s.enc[:], s.mac.Sum(s.sum[:0]))
	if cap(s.input) > MaxCredentialLen {
		s.input = nil // do not keep a huge buffer in the pool
	}
}
