package l402

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"sync"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// Checker says what a token must grant for the request at hand. Every caveat
// occurrence is checked on its own, so repeated caveats can only narrow.
type Checker struct {
	// Service is the service being accessed. It is required: the token must
	// carry at least one services caveat, and every services caveat must
	// list Service (any tier). Caveats <Service>_valid_until must not have
	// passed.
	Service string

	// Price, when non-zero, is the route's price in satoshis: the token must
	// carry a <Service>_price caveat and every one must equal Price.
	Price int64

	// MaxAge, when non-zero, bounds how long after it was minted a token is
	// accepted: the check time must be before every <Service>_issued_at
	// caveat plus MaxAge. A token without such a caveat is bounded by its
	// valid_until caveats alone.
	MaxAge time.Duration

	// Now returns the check time; nil means time.Now.
	Now func() time.Time

	// Revoked, when non-nil, reports whether a token whose signature
	// verified has been revoked; a revoked token fails with ErrRevoked.
	Revoked func(Identifier) bool

	// Extra, when non-nil, is called with the trimmed key and value of every
	// caveat the checks above do not handle (a caveat without '=' has an
	// empty value); an error rejects the token with ErrInvalidCaveat.
	// When nil, such caveats are ignored.
	Extra func(key, value string) error
}

// Verify verifies a token and its payment preimage: the macaroon signature
// under the keyring's key, the identifier version, every caveat through c,
// and sha256(preimage) against the payment hash (constant time). It returns
// the token's identifier, or the zero Identifier and an error of this
// package's kinds.
func (k *Keyring) Verify(token string, preimage [32]byte, c Checker) (Identifier, error) {
	return k.verify(token, &preimage, &c)
}

// VerifyToken verifies a token without a preimage (signature, version and
// caveats only) and returns its identifier, whose PaymentHash the caller
// must then find settled by other means before granting access.
func (k *Keyring) VerifyToken(token string, c Checker) (Identifier, error) {
	return k.verify(token, nil, &c)
}

// VerifyCredential verifies one credential from ParseAuthorization. A
// credential without preimage that otherwise verifies returns its
// identifier together with ErrPreimageRequired.
func (k *Keyring) VerifyCredential(cred Credential, c Checker) (Identifier, error) {
	if cred.HasPreimage {
		return k.verify(cred.Token, &cred.Preimage, &c)
	}
	id, err := k.verify(cred.Token, nil, &c)
	if err != nil {
		return Identifier{}, err
	}
	return id, ErrPreimageRequired
}

// Authenticate parses all Authorization header values and verifies every L402
// credential in them, in order. It returns the first credential with a
// preimage that verifies, and its identifier. Failing that, it returns the
// first token-only credential that verifies, with ErrPreimageRequired. Otherwise it returns ErrNoCredentials when no L402 or
// LSAT credential was offered (answer 402), or else the most telling error
// among the credentials (answer 401).
func (k *Keyring) Authenticate(values []string, c Checker) (Credential, Identifier, error) {
	var arr [4]Credential
	creds, err := appendAuthorization(arr[:0], values)
	if err != nil {
		return Credential{}, Identifier{}, err
	}
	var unpaid Identifier
	unpaidAt := -1
	var best error
	for i := range creds {
		id, err := k.VerifyCredential(creds[i], c)
		switch {
		case err == nil:
			return creds[i], id, nil
		case err == ErrPreimageRequired:
			if unpaidAt < 0 {
				unpaid, unpaidAt = id, i
			}
		case best == nil || errorRank(err) > errorRank(best):
			best = err
		}
	}
	if unpaidAt >= 0 {
		return creds[unpaidAt], unpaid, ErrPreimageRequired
	}
	return Credential{}, Identifier{}, best
}

// errorRank orders verification errors by how far the credential got.
func errorRank(err error) int {
	switch {
	case errors.Is(err, ErrMalformed):
		return 1
	case errors.Is(err, ErrUnsupportedVersion):
		return 2
	case errors.Is(err, ErrUnknownKey):
		return 3
	case errors.Is(err, ErrInvalidSignature):
		return 4
	}
	return 5
}

// scratch holds per-verification buffers; pooled so verification does not
// allocate.
type scratch struct {
	tmp [MaxTokenLen]byte
	buf [maxDecodedLen]byte
	h   hash.Hash
	pad [sha256.BlockSize]byte
	sum [2][sha256.Size]byte // HMAC inner and outer results
}

var scratchPool = sync.Pool{New: func() any { return &scratch{h: sha256.New()} }}

func (k *Keyring) verify(token string, preimage *[32]byte, c *Checker) (Identifier, error) {
	s := scratchPool.Get().(*scratch)
	defer scratchPool.Put(s)
	m, id, err := k.verifySignature(s, token)
	if err != nil {
		return Identifier{}, err
	}
	if c.Revoked != nil && c.Revoked(id) {
		return Identifier{}, ErrRevoked
	}
	if err := c.check(m.caveatIter()); err != nil {
		return Identifier{}, err
	}
	if preimage != nil {
		h := sha256.Sum256(preimage[:])
		if subtle.ConstantTimeCompare(h[:], id.PaymentHash[:]) != 1 {
			return Identifier{}, ErrPreimageMismatch
		}
	}
	return id, nil
}

// verifySignature decodes token into s and checks its signature and
// identifier, without looking at caveat contents.
func (k *Keyring) verifySignature(s *scratch, token string) (rawMacaroon, Identifier, error) {
	raw, err := decodeBase64(s.buf[:], s.tmp[:], token)
	if err != nil {
		return rawMacaroon{}, Identifier{}, err
	}
	m, err := parseMacaroon(raw)
	if err != nil {
		return rawMacaroon{}, Identifier{}, err
	}
	id, err := DecodeIdentifier(m.id)
	if err != nil {
		return rawMacaroon{}, Identifier{}, err
	}
	key := k.lookup(id.keyID())
	if key == nil {
		return rawMacaroon{}, Identifier{}, ErrUnknownKey
	}
	sig := s.mac(&key.derived, m.id)
	it := m.caveatIter()
	for cav, ok := it.next(); ok; cav, ok = it.next() {
		sig = s.mac(&sig, cav)
	}
	clear(s.pad[:])
	if subtle.ConstantTimeCompare(sig[:], m.sig) != 1 {
		return rawMacaroon{}, Identifier{}, ErrInvalidSignature
	}
	return m, id, nil
}

// mac returns HMAC-SHA256(key, msg), the macaroon chaining step, reusing
// one hash (crypto/hmac would allocate for every key).
func (s *scratch) mac(key *[32]byte, msg []byte) [32]byte {
	subtle.XORBytes(s.pad[:32], key[:], ipad[:32])
	copy(s.pad[32:], ipad[32:])
	s.h.Reset()
	s.h.Write(s.pad[:])
	s.h.Write(msg)
	s.h.Sum(s.sum[0][:0])
	subtle.XORBytes(s.pad[:32], key[:], opad[:32])
	copy(s.pad[32:], opad[32:])
	s.h.Reset()
	s.h.Write(s.pad[:])
	s.h.Write(s.sum[0][:])
	s.h.Sum(s.sum[1][:0])
	return s.sum[1]
}

// HMAC pads.
var ipad, opad = fill(0x36), fill(0x5c)

func fill(b byte) (p [sha256.BlockSize]byte) {
	for i := range p {
		p[i] = b
	}
	return p
}

// check runs every caveat through the checker.
func (c *Checker) check(it caveatIter) error {
	if c.Service == "" {
		return errdetail.New(ErrWrongService, "no service to check against")
	}
	var now time.Time
	haveNow, sawServices, sawPrice := false, false, false
	for cav, ok := it.next(); ok; cav, ok = it.next() {
		key, value := splitCaveat(cav)
		switch {
		case string(key) == CaveatServices:
			sawServices = true
			found, err := servicesContain(value, c.Service)
			if err != nil {
				return err
			}
			if !found {
				return errdetail.New(ErrWrongService, "services "+errdetail.Quote(string(value))+" do not include "+strconv.Quote(c.Service))
			}
		case isServiceKey(key, c.Service, SuffixValidUntil):
			until, ok := parseDecimal(value)
			if !ok {
				return errdetail.New(ErrInvalidCaveat, "malformed "+errdetail.Quote(string(key)))
			}
			if !haveNow {
				now, haveNow = c.now(), true
			}
			if !now.Before(time.Unix(until, 0)) {
				return errdetail.New(ErrExpired, "valid until "+strconv.FormatInt(until, 10))
			}
		case c.MaxAge != 0 && isServiceKey(key, c.Service, SuffixIssuedAt):
			issued, ok := parseDecimal(value)
			if !ok {
				return errdetail.New(ErrInvalidCaveat, "malformed "+errdetail.Quote(string(key)))
			}
			if !haveNow {
				now, haveNow = c.now(), true
			}
			if !now.Before(time.Unix(issued, 0).Add(c.MaxAge)) {
				return errdetail.New(ErrExpired, "issued at "+strconv.FormatInt(issued, 10)+", older than this route allows")
			}
		case isServiceKey(key, c.Service, SuffixPrice):
			if c.Price == 0 {
				break
			}
			sawPrice = true
			price, ok := parseDecimal(value)
			if !ok {
				return errdetail.New(ErrInvalidCaveat, "malformed "+errdetail.Quote(string(key)))
			}
			if price != c.Price {
				return errdetail.New(ErrWrongPrice, "token price "+strconv.FormatInt(price, 10)+" sats, route price "+strconv.FormatInt(c.Price, 10)+" sats")
			}
		case c.Extra != nil:
			if err := c.Extra(string(key), string(value)); err != nil {
				return fmt.Errorf("%w: %s: %w", ErrInvalidCaveat, errdetail.Quote(string(key)), err)
			}
		}
	}
	if !sawServices {
		return errdetail.New(ErrWrongService, "token has no services caveat")
	}
	if c.Price != 0 && !sawPrice {
		return errdetail.New(ErrWrongPrice, "token has no price caveat")
	}
	return nil
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// isServiceKey reports whether key is service+suffix, without allocating.
func isServiceKey(key []byte, service, suffix string) bool {
	return len(key) == len(service)+len(suffix) &&
		string(key[:len(service)]) == service &&
		string(key[len(service):]) == suffix
}
