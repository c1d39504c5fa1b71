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
	expires time.Time       // the token's earliest valid_until for the service
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

// add remembers a credential that keys just verified for service.
func (v *verifiedCredentials) add(value, token, service string, keys *l402.Keyring, id l402.Identifier, settled bool) {
	expires, ok := earliestValidUntil(token, service)
	if !ok {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.seen.put(value, verifiedCredential{keys: keys, id: id, expires: expires, settled: settled})
}

// earliestValidUntil is when the token expires for service: its earliest
// <service>_valid_until (far in the future without one). ok is false if the
// token cannot be read.
func earliestValidUntil(token, service string) (time.Time, bool) {
	t, err := l402.DecodeToken(token)
	if err != nil {
		return time.Time{}, false
	}
	earliest, _, found, err := t.ValidUntil(service)
	switch {
	case err != nil:
		return time.Time{}, false
	case !found:
		return time.Unix(math.MaxInt64, 0), true
	}
	return earliest, true
}
