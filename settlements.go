package lightning

import (
	"context"
	"encoding/hex"
	"sync"
	"sync/atomic"

	"github.com/caddyserver/caddy/v2"
	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/lnd"
)

// settlementMemory bounds how many settled invoices are remembered: enough
// for the tokens in use, bounded so memory does not grow with traffic.
const settlementMemory = 50_000

// settlements remembers invoices the node settled, learned from its invoice
// stream or from a lookup, and wakes whoever waits for one. Settled is
// final, so a remembered settlement never needs the node again. Memory is
// bounded by keeping two generations and dropping the older one.
type settlements struct {
	mu      sync.Mutex
	settled *generations[[32]byte, [32]byte] // payment hash -> preimage
	waiters map[[32]byte][]chan [32]byte

	// Invoices issued and not yet seen settled: payment hash -> service
	// (for metrics), bounded the same way.
	issued *generations[[32]byte, string]
}

func newSettlements() *settlements {
	return &settlements{
		settled: newGenerations[[32]byte, [32]byte](settlementMemory),
		waiters: make(map[[32]byte][]chan [32]byte),
		issued:  newGenerations[[32]byte, string](settlementMemory),
	}
}

// noteIssued records that this Caddy issued the invoice with hash for
// service.
func (s *settlements) noteIssued(hash [32]byte, service string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.issued.put(hash, service)
}

// add records a settlement and wakes its waiters. If the invoice was
// issued here and this is the first news of its settlement, it returns
// the service it was issued for and true.
func (s *settlements) add(hash, preimage [32]byte) (service string, issued bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settled.put(hash, preimage)
	for _, ch := range s.waiters[hash] {
		ch <- preimage
	}
	delete(s.waiters, hash)
	return s.issued.take(hash)
}

// preimage returns the remembered preimage of a settled invoice.
func (s *settlements) preimage(hash [32]byte) ([32]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settled.get(hash)
}

// wait blocks until the invoice with hash settles or ctx ends.
func (s *settlements) wait(ctx context.Context, hash [32]byte) ([32]byte, bool) {
	s.mu.Lock()
	if p, ok := s.settled.get(hash); ok {
		s.mu.Unlock()
		return p, true
	}
	ch := make(chan [32]byte, 1)
	s.waiters[hash] = append(s.waiters[hash], ch)
	s.mu.Unlock()

	select {
	case p := <-ch:
		return p, true
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		list := s.waiters[hash]
		for i, c := range list {
			if c == ch {
				list = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.waiters, hash)
		} else {
			s.waiters[hash] = list
		}
		select {
		case p := <-ch: // settled while we gave up
			return p, true
		default:
			return [32]byte{}, false
		}
	}
}

// feeds holds one settlementFeed per node (keyed like the node clients),
// shared by the configs that use the node. A reload provisions and starts
// the new config before it stops the old one, so the stream never stops
// and the pages that wait on the old config hear of the payments too.
var feeds = caddy.NewUsagePool()

// settlementFeed is a node's settlements, fed by its invoice stream while
// at least one config that uses it runs.
type settlementFeed struct {
	*settlements

	mu      sync.Mutex
	running int                // started and not yet stopped apps
	cancel  context.CancelFunc // stops the stream
	done    chan struct{}      // closed when the stream has stopped

	reporter atomic.Pointer[App] // the app last started: it logs and emits settlements
}

func newSettlementFeed() *settlementFeed {
	return &settlementFeed{settlements: newSettlements()}
}

// start follows the node's invoice stream, unless a config started that
// already, and makes app the one that reports settlements.
func (f *settlementFeed) start(app *App) {
	f.reporter.Store(app)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.running++
	if f.running > 1 {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.done = cancel, make(chan struct{})
	client, logger := app.client, app.logger
	go func() {
		defer close(f.done)
		client.SubscribeSettlements(ctx, func(s lnd.Settlement) {
			f.record(s.PaymentHash, s.Preimage, s.AmountSat)
		}, func(err error) {
			logger.Warn("invoice stream interrupted; reconnecting", zap.Error(err))
		})
	}()
}

// stop undoes one start; the last one stops the stream and waits for it.
func (f *settlementFeed) stop(app *App) {
	f.reporter.CompareAndSwap(app, nil)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running == 0 {
		return
	}
	f.running--
	if f.running == 0 {
		f.cancel()
		<-f.done
	}
}

// Destruct stops the stream if an app never stopped it.
func (f *settlementFeed) Destruct() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.running > 0 {
		f.running = 0
		f.cancel()
		<-f.done
	}
	return nil
}

// record remembers a settlement and, the first time an invoice this Caddy
// issued is seen settled, counts it and has the current app log it and
// emit the lightning_invoice_settled event.
func (f *settlementFeed) record(hash, preimage [32]byte, amountSat int64) {
	service, issued := f.add(hash, preimage)
	if !issued {
		return
	}
	invoicesSettled.WithLabelValues(service).Inc()
	satsReceived.WithLabelValues(service).Add(float64(amountSat))
	app := f.reporter.Load()
	if app == nil {
		return
	}
	hashHex := hex.EncodeToString(hash[:])
	app.logger.Info("invoice settled", zap.String("payment_hash", hashHex),
		zap.String("service", service), zap.Int64("amount_sat", amountSat))
	app.emit("lightning_invoice_settled", map[string]any{
		"payment_hash": hashHex, "service": service, "amount_sat": amountSat,
	})
}
