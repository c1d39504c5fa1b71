package lightning

import (
	"errors"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/time/rate"
)

// maxTrackedClients bounds the per-client limiters kept in memory.
const maxTrackedClients = 10_000

// Rate is a number of events per window.
type Rate struct {
	// Events is how many events the window allows; 0 means no limit.
	Events int `json:"events"`
	// Window is the time the events are counted over.
	Window caddy.Duration `json:"window,omitempty"`
}

// invoiceLimits bounds how fast new invoices are issued, per client and in
// total, with token buckets whose burst is the window's event count.
type invoiceLimits struct {
	total     *rate.Limiter // nil: no limit
	perClient Rate

	mu      sync.Mutex
	clients map[string]*rate.Limiter
}

func newInvoiceLimits(perClient, total *Rate) (*invoiceLimits, error) {
	if perClient == nil {
		perClient = &Rate{Events: 60, Window: caddy.Duration(time.Minute)}
	}
	if total == nil {
		total = &Rate{Events: 100, Window: caddy.Duration(time.Second)}
	}
	for _, r := range []*Rate{perClient, total} {
		if r.Events < 0 || r.Events > 0 && r.Window <= 0 {
			return nil, errors.New("a rate needs a non-negative number of events and a positive window")
		}
	}
	l := &invoiceLimits{perClient: *perClient, clients: make(map[string]*rate.Limiter)}
	if total.Events > 0 {
		l.total = total.limiter()
	}
	return l, nil
}

func (r Rate) limiter() *rate.Limiter {
	return rate.NewLimiter(rate.Every(time.Duration(r.Window)/time.Duration(r.Events)), r.Events)
}

// allow takes one invoice from the client's and the total budget, or
// says how long to wait.
func (l *invoiceLimits) allow(client string) (time.Duration, bool) {
	if l.perClient.Events > 0 {
		if wait, ok := take(l.clientLimiter(client)); !ok {
			return wait, false
		}
	}
	if l.total != nil {
		return take(l.total)
	}
	return 0, true
}

func (l *invoiceLimits) clientLimiter(client string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.clients[client]
	if !ok {
		if len(l.clients) >= maxTrackedClients {
			l.forgetIdleLocked()
		}
		lim = l.perClient.limiter()
		l.clients[client] = lim
	}
	return lim
}

// forgetIdleLocked drops limiters whose bucket is full again: forgetting
// them changes nothing. If every client is active, it starts afresh.
func (l *invoiceLimits) forgetIdleLocked() {
	for client, lim := range l.clients {
		if lim.Tokens() >= float64(lim.Burst()) {
			delete(l.clients, client)
		}
	}
	if len(l.clients) >= maxTrackedClients {
		clear(l.clients)
	}
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
