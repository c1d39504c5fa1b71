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
	expires time.Time       // when the token stops opening the paywall
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
	if !ok || c.keys != keys || !now.Before(c.expires) || revoked(c.id) {
		return verifiedCredential{}, false
	}
	return c, true
}

// add remembers a credential that keys just verified for service, under a
// checker with maxAge.
func (v *verifiedCredentials) add(value, token, service string, maxAge time.Duration, keys *l402.Keyring, id l402.Identifier, settled bool) {
	expires, ok := credentialExpiry(token, service, maxAge)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen.put(value, verifiedCredential{keys: keys, id: id, expires: expires, settled: settled})
}

// credentialExpiry is when the token stops opening a paywall of service
// whose checker has maxAge: its earliest <service>_valid_until, or its
// earliest <service>_issued_at plus maxAge if that comes first (far in the
// future without either). ok is false if the token cannot be read.
func credentialExpiry(token, service string, maxAge time.Duration) (time.Time, bool) {
	t, err := l402.DecodeToken(token)
	if err != nil {
		return time.Time{}, false
	}
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
