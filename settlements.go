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
	recent  map[[32]byte][32]byte // payment hash -> preimage
	older   map[[32]byte][32]byte
	waiters map[[32]byte][]chan [32]byte

	// Invoices issued and not yet seen settled: payment hash -> service
	// (for metrics), bounded the same way.
	issued, issuedOlder map[[32]byte]string

	following sync.Once // the app starts following the node's stream once
}

func newSettlements() *settlements {
	return &settlements{
		recent:  make(map[[32]byte][32]byte),
		waiters: make(map[[32]byte][]chan [32]byte),
		issued:  make(map[[32]byte]string),
	}
}

// noteIssued records that this Caddy issued the invoice with hash for
// service.
func (s *settlements) noteIssued(hash [32]byte, service string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.issued) >= settlementMemory/2 {
		s.issuedOlder, s.issued = s.issued, make(map[[32]byte]string)
	}
	s.issued[hash] = service
}

// add records a settlement and wakes its waiters. If the invoice was
// issued here and this is the first news of its settlement, it returns
// the service it was issued for and true.
func (s *settlements) add(hash, preimage [32]byte) (service string, issued bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recent) >= settlementMemory/2 {
		s.older, s.recent = s.recent, make(map[[32]byte][32]byte)
	}
	s.recent[hash] = preimage
	for _, ch := range s.waiters[hash] {
		ch <- preimage
	}
	delete(s.waiters, hash)
	if service, issued = s.issued[hash]; issued {
		delete(s.issued, hash)
	} else if service, issued = s.issuedOlder[hash]; issued {
		delete(s.issuedOlder, hash)
	}
	return service, issued
}

// preimage returns the remembered preimage of a settled invoice.
func (s *settlements) preimage(hash [32]byte) ([32]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookupLocked(hash)
}

func (s *settlements) lookupLocked(hash [32]byte) ([32]byte, bool) {
	if p, ok := s.recent[hash]; ok {
		return p, true
	}
	p, ok := s.older[hash]
	return p, ok
}

// wait blocks until the invoice with hash settles or ctx ends.
func (s *settlements) wait(ctx context.Context, hash [32]byte) ([32]byte, bool) {
	s.mu.Lock()
	if p, ok := s.lookupLocked(hash); ok {
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
