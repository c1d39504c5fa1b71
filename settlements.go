package lightning

import (
	"context"
	"sync"
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

	following sync.Once // the app starts following the node's stream once
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
