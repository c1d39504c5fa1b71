package lightning

import (
	"math"
	"sync"
	"time"

	"github.com/lightningcaddy/caddy-lightning/l402"
)

// verifiedMemory bounds how many credentials a paywall remembers as
// verified: enough for the tokens its active clients reuse, few enough that
// memory stays flat whatever the traffic.
const verifiedMemory = 2048

// verifiedCredentials remembers Authorization values that opened the route:
// a token with its preimage, or a token alone whose invoice the node
// settled (settled is final). A token reused for many requests pays for the
// signature and caveat checks once. A remembered value still stops working
// the moment its token expires or is revoked, or the keys that verified it
// change. Two generations bound its size.
type verifiedCredentials struct {
	mu   sync.RWMutex
	seen *generations[string, verifiedCredential]
}

type verifiedCredential struct {
	keys    *l402.Keyring   // the keys that verified it
	id      l402.Identifier // the token's identifier
	proof   proof           // what it proves: payment, amount, expiry, account
	settled bool            // proven by the node's settlement, not a preimage
}

func newVerifiedCredentials() *verifiedCredentials {
	return &verifiedCredentials{seen: newGenerations[string, verifiedCredential](verifiedMemory)}
}

// lookup returns a remembered credential that is still good under keys at
// now.
func (v *verifiedCredentials) lookup(value string, keys *l402.Keyring, revoked func(l402.Identifier) bool, now time.Time) (verifiedCredential, bool) {
	v.mu.RLock()
	c, ok := v.seen.get(value)
	v.mu.RUnlock()
	if !ok || c.keys != keys || !now.Before(c.proof.expires) || revoked(c.id) {
		return verifiedCredential{}, false
	}
	return c, true
}

// add remembers a credential that c.keys just verified.
func (v *verifiedCredentials) add(value string, c verifiedCredential) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen.put(value, c)
}

// credentialExpiry is when the token stops opening a paywall of service
// whose checker has maxAge (see tokenExpiry); ok is false if the token
// cannot be read.
func credentialExpiry(token, service string, maxAge time.Duration) (time.Time, bool) {
	t, err := l402.DecodeToken(token)
	if err != nil {
		return time.Time{}, false
	}
	return tokenExpiry(t, service, maxAge)
}

// tokenExpiry is when t stops opening a paywall of service whose checker
// has maxAge: its earliest <service>_valid_until, or its earliest
// <service>_issued_at plus maxAge if that comes first (far in the future
// without either). ok is false if a caveat is malformed.
func tokenExpiry(t *l402.Token, service string, maxAge time.Duration) (time.Time, bool) {
	expires := time.Unix(math.MaxInt64, 0)
	validUntil, _, found, err := t.ValidUntil(service)
	if err != nil {
		return time.Time{}, false
	}
	if found {
		expires = validUntil
	}
	issued, _, found, err := t.IssuedAt(service)
	if err != nil {
		return time.Time{}, false
	}
	if found && maxAge > 0 && issued.Add(maxAge).Before(expires) {
		expires = issued.Add(maxAge)
	}
	return expires, true
}
