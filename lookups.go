package lightning

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/caddyserver/caddy/v2"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/lnd"
)

// How often the node is asked about one unpaid token: at most once per
// interval, the interval doubling from the first to the last after each
// "not paid". Settlements the invoice stream reports need no lookup at
// all; lookups only find those it could have missed (made while Caddy was
// down, or while the stream reconnected).
const (
	firstRecheck = time.Second
	lastRecheck  = time.Minute
)

// Bounds on the payment page's long polls held at once, so that clients
// cannot pin down goroutines without limit. A poll over a bound is
// answered "not paid" at once; the page asks again a second later.
const (
	maxWaitsPerHash   = 4
	maxWaitsPerClient = 16
	maxWaits          = 4096
)

// errTooManyLookups is a client's lookup beyond its lookups_per_client.
var errTooManyLookups = errors.New("too many payment checks")

// unpaidRecord is when a token's invoice was last found unpaid.
type unpaidRecord struct {
	next     time.Time     // no lookup before then
	interval time.Duration // since the previous lookup
}

// lookupGuard bounds what tokens presented without their preimage cost the
// node: answers "not paid" are remembered, lookups are rate-limited per
// client and shared by concurrent requests for one payment hash, and
// long polls are capped per client, per payment hash and in total.
type lookupGuard struct {
	perClient *clientLimits
	group     singleflight.Group

	mu          sync.Mutex
	unpaid      *generations[[32]byte, unpaidRecord]
	waits       int
	clientWaits map[netip.Prefix]int
	hashWaits   map[[32]byte]int
}

func newLookupGuard(perClient *Rate) *lookupGuard {
	if perClient == nil {
		perClient = &Rate{Events: 60, Window: caddy.Duration(time.Minute)}
	}
	return &lookupGuard{
		perClient:   newClientLimits(perClient),
		unpaid:      newGenerations[[32]byte, unpaidRecord](settlementMemory),
		clientWaits: make(map[netip.Prefix]int),
		hashWaits:   make(map[[32]byte]int),
	}
}

// lookup asks the node, once for all concurrent callers with the same
// hash, whether the invoice with hash is settled. It does not ask if the
// invoice was found unpaid too recently, or if the client is over its
// lookups_per_client (then it returns errTooManyLookups unless lenient).
// The shared call runs on a context of its own: one caller hanging up does
// not fail the others.
func (g *lookupGuard) lookup(ctx context.Context, node *lnd.Client, hash [32]byte, client netip.Prefix, lenient bool) (lnd.InvoiceStatus, error) {
	g.mu.Lock()
	rec, asked := g.unpaid.get(hash)
	g.mu.Unlock()
	if asked && now().Before(rec.next) {
		return lnd.InvoiceStatus{}, nil
	}
	if _, ok := g.perClient.allow(client); !ok {
		if lenient {
			return lnd.InvoiceStatus{}, nil
		}
		return lnd.InvoiceStatus{}, errTooManyLookups
	}
	ch := g.group.DoChan(string(hash[:]), func() (any, error) {
		st, err := node.LookupInvoice(context.Background(), hash)
		if status.Code(err) == codes.NotFound {
			st, err = lnd.InvoiceStatus{}, nil
		}
		if err == nil && st.State != lnd.InvoiceSettled {
			g.noteUnpaid(hash)
		}
		return st, err
	})
	select {
	case res := <-ch:
		st, _ := res.Val.(lnd.InvoiceStatus)
		return st, res.Err
	case <-ctx.Done():
		return lnd.InvoiceStatus{}, ctx.Err()
	}
}

// noteUnpaid remembers that the invoice with hash was found unpaid now.
func (g *lookupGuard) noteUnpaid(hash [32]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rec, _ := g.unpaid.get(hash)
	rec.interval = min(max(2*rec.interval, firstRecheck), lastRecheck)
	rec.next = now().Add(rec.interval)
	g.unpaid.put(hash, rec)
}

// enterWait admits one more long poll for client and hash, if the bounds
// allow it; leaveWait must follow.
func (g *lookupGuard) enterWait(client netip.Prefix, hash [32]byte) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waits >= maxWaits || g.clientWaits[client] >= maxWaitsPerClient || g.hashWaits[hash] >= maxWaitsPerHash {
		return false
	}
	g.waits++
	g.clientWaits[client]++
	g.hashWaits[hash]++
	return true
}

func (g *lookupGuard) leaveWait(client netip.Prefix, hash [32]byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waits--
	if g.clientWaits[client]--; g.clientWaits[client] == 0 {
		delete(g.clientWaits, client)
	}
	if g.hashWaits[hash]--; g.hashWaits[hash] == 0 {
		delete(g.hashWaits, hash)
	}
}
