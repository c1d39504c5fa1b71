package lightning

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/modules/caddyhttp"
	"golang.org/x/time/rate"
)

// maxTrackedClients bounds the per-client limiters kept in memory. When it
// is reached the clients not seen for the longest are forgotten, never the
// active ones.
const maxTrackedClients = 10_000

// defaultIPv6Prefix is how many leading bits of an IPv6 address name one
// client: a /64 is what one subscriber gets, and its 2^64 addresses are
// one client, not 2^64.
const defaultIPv6Prefix = 64

// Rate is a number of events per window.
type Rate struct {
	// Events is how many events the window allows; 0 means no limit.
	Events int `json:"events"`
	// Window is the time the events are counted over.
	Window caddy.Duration `json:"window,omitempty"`
}

// validate reports whether the rate can be enforced.
func (r *Rate) validate() error {
	if r != nil && (r.Events < 0 || r.Events > 0 && r.Window <= 0) {
		return errors.New("a rate needs a non-negative number of events and a positive window")
	}
	return nil
}

// enabled reports whether the rate limits anything.
func (r *Rate) enabled() bool { return r != nil && r.Events > 0 && r.Window > 0 }

func (r Rate) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Every(time.Duration(r.Window)/time.Duration(r.Events)), r.Events)
}

// clientKey is what per-client limits count by: the client's address as
// Caddy determined it (trusted proxies considered) in the request context
// ctx, an IPv4 address whole, an IPv6 address cut to its first ipv6Prefix
// bits. Requests without an address Caddy could parse share the zero key.
func clientKey(ctx context.Context, ipv6Prefix int) netip.Prefix {
	ip, _ := caddyhttp.GetVar(ctx, caddyhttp.ClientIPVarKey).(string)
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return netip.Prefix{}
	}
	addr = addr.Unmap().WithZone("")
	bits := 32
	if addr.Is6() {
		bits = ipv6Prefix
	}
	p, _ := addr.Prefix(bits)
	return p
}

// clientLimits gives every client a token bucket of the same rate, whose
// burst is the window's event count. It remembers up to maxTrackedClients
// in two generations: a client seen during the current generation survives
// the next turnover, so a flood of new clients only ever evicts those idle
// the longest, and nobody's limit is reset for the others.
type clientLimits struct {
	rate Rate // Events 0: no limit

	mu      sync.Mutex
	clients *generations[netip.Prefix, *rate.Limiter]
}

func newClientLimits(r *Rate) *clientLimits {
	c := &clientLimits{clients: newGenerations[netip.Prefix, *rate.Limiter](maxTrackedClients)}
	if r.enabled() {
		c.rate = *r
	}
	return c
}

// allow takes one event from the client's budget, or says how long until
// one is free.
func (c *clientLimits) allow(client netip.Prefix) (time.Duration, bool) {
	if c.rate.Events == 0 {
		return 0, true
	}
	c.mu.Lock()
	lim, ok := c.clients.promote(client)
	if !ok {
		lim = c.rate.limiter()
		c.clients.put(client, lim)
	}
	c.mu.Unlock()
	return take(lim)
}

// invoiceLimits bounds how fast new invoices are issued, per client and in
// total.
type invoiceLimits struct {
	perClient *clientLimits
	total     *rate.Limiter // nil: no limit
}

// newInvoiceLimits returns the limits, with the defaults (60 per minute per
// client, 100 per second in total) for rates not given.
func newInvoiceLimits(perClient, total *Rate) *invoiceLimits {
	if perClient == nil {
		perClient = &Rate{Events: 60, Window: caddy.Duration(time.Minute)}
	}
	if total == nil {
		total = &Rate{Events: 100, Window: caddy.Duration(time.Second)}
	}
	l := &invoiceLimits{perClient: newClientLimits(perClient)}
	if total.enabled() {
		l.total = total.limiter()
	}
	return l
}

// allow takes one invoice from the client's and the total budget, or
// says how long to wait.
func (l *invoiceLimits) allow(client netip.Prefix) (time.Duration, bool) {
	if wait, ok := l.perClient.allow(client); !ok {
		return wait, false
	}
	if l.total != nil {
		return take(l.total)
	}
	return 0, true
}

// take reserves one event now, or returns how long until one is free.
func take(lim *rate.Limiter) (time.Duration, bool) {
	res := lim.Reserve()
	if delay := res.Delay(); delay > 0 {
		res.Cancel()
		return delay, false
	}
	return 0, true
}
