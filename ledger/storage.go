package ledger

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
)

// Storage is where a Memory ledger keeps its state: byte blobs by
// slash-separated key. Its methods are those of certmagic.Storage, so
// Caddy's configured storage satisfies it as it is.
type Storage interface {
	// Store writes value at key, replacing what was there.
	Store(ctx context.Context, key string, value []byte) error
	// Load reads the value at key; a missing key is an error matching
	// fs.ErrNotExist.
	Load(ctx context.Context, key string) ([]byte, error)
	// Delete removes key.
	Delete(ctx context.Context, key string) error
	// List returns the keys under prefix (recursive: at any depth);
	// a missing prefix is no keys or an error matching fs.ErrNotExist.
	List(ctx context.Context, prefix string, recursive bool) ([]string, error)
}

// Stored layout, under MemoryOptions.Prefix:
//
//	accounts/<id>.json                       one JSON accountRecord per account or session
//	claims/<until ms>-<instance>-<seq>.bin   one flush's claims: claimsMagic, then per
//	                                         claim the hash and its until (unix ms,
//	                                         big-endian uint64); <until ms> is the
//	                                         latest of them
//
// Load skips other keys: a crash in the middle of a write may leave a
// storage's temporary file (certmagic.FileStorage names them with digits
// only) beside these.
const claimsMagic = "LCL1"

type accountRecord struct {
	Credited int64          `json:"credited"`
	Spent    int64          `json:"spent"`
	Payments []string       `json:"payments"`
	Session  *sessionRecord `json:"session,omitempty"`
}

type sessionRecord struct {
	ReturnInvoice string `json:"return_invoice"`
	Closed        bool   `json:"closed,omitempty"`
	OpenedAt      int64  `json:"opened_at"`
	LastActivity  int64  `json:"last_activity"`
	ClosedAt      int64  `json:"closed_at,omitempty"`
	Refund        int64  `json:"refund,omitempty"`
	RefundStatus  string `json:"refund_status,omitempty"`
	RefundPayment string `json:"refund_payment,omitempty"`
}

type claimEntry struct {
	hash  Hash
	until int64 // unix ms
}

// claimBatch is one stored blob of claims, deleted once all may be
// forgotten.
type claimBatch struct {
	key   string
	until int64
	data  []byte // the blob; nil for one loaded already expired
}

// Load reads the stored state. Call it once, before any other operation.
func (m *Memory) Load(ctx context.Context) error {
	accounts := make(map[string]*account)
	claims := make(map[Hash]int64)
	credits := make(map[Hash]*account)
	open := make(map[*account]struct{})
	keys, err := m.list(ctx, m.opt.Prefix+"/accounts")
	if err != nil {
		return err
	}
	for _, key := range keys {
		id, ok := strings.CutSuffix(path.Base(key), ".json")
		if !ok {
			continue
		}
		data, err := m.store.Load(ctx, key)
		if err != nil {
			return fmt.Errorf("%w: load %s: %v", ErrUnavailable, key, err)
		}
		a, err := decodeAccount(id, data)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, key, err)
		}
		accounts[id] = a
		if a.session != nil && !a.session.closed {
			open[a] = struct{}{}
		}
		for _, p := range a.payments {
			if _, dup := credits[p]; !dup { // two instances on one store may both have credited it
				credits[p] = a
			}
		}
	}

	now := m.opt.Now().UnixMilli()
	var batches []claimBatch
	keys, err = m.list(ctx, m.opt.Prefix+"/claims")
	if err != nil {
		return err
	}
	for _, key := range keys {
		until, ok := claimsUntil(path.Base(key))
		if !ok {
			continue
		}
		b := claimBatch{key: key, until: until}
		if until > now {
			data, err := m.store.Load(ctx, key)
			if err != nil {
				return fmt.Errorf("%w: load %s: %v", ErrUnavailable, key, err)
			}
			if !isClaims(data) {
				return fmt.Errorf("%w: %s: not a claims blob", ErrCorrupt, key)
			}
			eachClaim(data, func(h Hash, until int64) {
				if _, credited := credits[h]; !credited && until > now {
					claims[h] = until
				}
			})
			b.data = data
		}
		batches = append(batches, b)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded {
		return errors.New("ledger: memory ledger loaded twice")
	}
	m.accounts, m.claims, m.credits, m.open, m.batches = accounts, claims, credits, open, batches
	m.loaded = true
	return nil
}

// Run flushes every FlushInterval (and early when half of MaxUnsaved is
// reached) until ctx ends, then flushes a last time and returns that
// flush's error. Failed flushes in between go to OnFlushError.
func (m *Memory) Run(ctx context.Context) error {
	tick := time.NewTicker(m.opt.FlushInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			last, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			return m.Flush(last)
		case <-tick.C:
		case <-m.flushNow:
		}
		if err := m.Flush(ctx); err != nil && m.opt.OnFlushError != nil {
			m.opt.OnFlushError(err)
		}
	}
}

// Flush stores the claims and draws made since the last flush, and
// deletes stored claims that may be forgotten. What it could not store
// stays queued for the next flush.
func (m *Memory) Flush(ctx context.Context) error {
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.mu.Lock()
	if err := m.ready(); err != nil {
		m.mu.Unlock()
		return err
	}
	claims, dirty, mark := m.pending, m.dirty, m.ops
	m.pending, m.spare, m.dirty = m.spare[:0], nil, nil
	for _, a := range dirty {
		a.queued = false
	}
	m.mu.Unlock()

	var errs []error
	if len(claims) > 0 {
		err := m.storeClaims(ctx, claims)
		m.mu.Lock()
		if err != nil {
			errs = append(errs, err)
			m.pending = append(claims, m.pending...)
		} else {
			m.spare = claims[:0]
		}
		m.mu.Unlock()
	}
	for i, a := range dirty {
		m.writeMu.Lock()
		err := m.save(ctx, a)
		m.writeMu.Unlock()
		if err != nil {
			errs = append(errs, err)
			m.mu.Lock()
			for _, a := range dirty[i:] {
				if !a.queued {
					a.queued = true
					m.dirty = append(m.dirty, a)
				}
			}
			m.mu.Unlock()
			break
		}
	}
	if len(errs) == 0 {
		m.mu.Lock()
		m.savedOps = max(m.savedOps, mark)
		m.mu.Unlock()
	}
	if err := m.prune(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// save stores account a if it changed since it was last stored. m.writeMu
// is held, so writes of a never overtake each other.
func (m *Memory) save(ctx context.Context, a *account) error {
	m.mu.Lock()
	if a.removed || a.version == a.saved {
		m.mu.Unlock()
		return nil
	}
	version, rec := a.version, a.record()
	m.mu.Unlock()
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("ledger: encode account %s: %w", a.id, err)
	}
	if err := m.store.Store(ctx, m.opt.Prefix+"/accounts/"+a.id+".json", data); err != nil {
		return fmt.Errorf("%w: store account %s: %v", ErrUnavailable, a.id, err)
	}
	m.mu.Lock()
	a.saved = max(a.saved, version)
	m.mu.Unlock()
	return nil
}

// storeClaims writes one blob of claims.
func (m *Memory) storeClaims(ctx context.Context, claims []claimEntry) error {
	data := make([]byte, 0, len(claimsMagic)+len(claims)*claimSize)
	data = append(data, claimsMagic...)
	var until int64
	for _, c := range claims {
		data = append(data, c.hash[:]...)
		data = binary.BigEndian.AppendUint64(data, uint64(c.until))
		until = max(until, c.until)
	}
	m.mu.Lock()
	m.batchSeq++
	key := fmt.Sprintf("%s/claims/%d-%s-%d.bin", m.opt.Prefix, until, m.instance, m.batchSeq)
	m.mu.Unlock()
	if err := m.store.Store(ctx, key, data); err != nil {
		return fmt.Errorf("%w: store %d claims: %v", ErrUnavailable, len(claims), err)
	}
	m.mu.Lock()
	m.batches = append(m.batches, claimBatch{key: key, until: until, data: data})
	m.mu.Unlock()
	return nil
}

// prune deletes the stored claims that may all be forgotten, and forgets
// them.
func (m *Memory) prune(ctx context.Context) error {
	now := m.opt.Now().UnixMilli()
	m.mu.Lock()
	var due []claimBatch
	kept := m.batches[:0]
	for _, b := range m.batches {
		if b.until <= now {
			due = append(due, b)
		} else {
			kept = append(kept, b)
		}
	}
	m.batches = kept
	m.mu.Unlock()

	var errs []error
	for _, b := range due {
		if err := m.store.Delete(ctx, b.key); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("%w: delete %s: %v", ErrUnavailable, b.key, err))
			m.mu.Lock()
			m.batches = append(m.batches, b)
			m.mu.Unlock()
			continue
		}
		m.mu.Lock()
		eachClaim(b.data, func(h Hash, _ int64) {
			if until, ok := m.claims[h]; ok && until <= now {
				delete(m.claims, h)
			}
		})
		m.mu.Unlock()
	}
	return errors.Join(errs...)
}

// list lists prefix, a missing prefix being empty.
func (m *Memory) list(ctx context.Context, prefix string) ([]string, error) {
	keys, err := m.store.List(ctx, prefix, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: list %s: %v", ErrUnavailable, prefix, err)
	}
	return keys, nil
}

// record returns what is stored of a. m.mu is held.
func (a *account) record() accountRecord {
	r := accountRecord{Credited: a.credited, Spent: a.spent, Payments: make([]string, len(a.payments))}
	for i, p := range a.payments {
		r.Payments[i] = p.String()
	}
	if s := a.session; s != nil {
		r.Session = &sessionRecord{
			ReturnInvoice: s.returnInvoice,
			Closed:        s.closed,
			OpenedAt:      s.openedAt,
			LastActivity:  s.lastActivity,
			ClosedAt:      s.closedAt,
			Refund:        s.refund,
			RefundStatus:  string(s.refundStatus),
		}
		if s.refundPayment != (Hash{}) {
			r.Session.RefundPayment = s.refundPayment.String()
		}
	}
	return r
}

func decodeAccount(id string, data []byte) (*account, error) {
	if err := CheckAccount(id); err != nil {
		return nil, err
	}
	var r accountRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	if r.Credited < 0 || r.Spent < 0 || r.Credited > MaxSats || r.Spent > 2*MaxSats {
		return nil, fmt.Errorf("amounts out of range")
	}
	a := &account{id: id, credited: r.Credited, spent: r.Spent, payments: make([]Hash, len(r.Payments))}
	for i, p := range r.Payments {
		h, err := ParseHash(p)
		if err != nil {
			return nil, err
		}
		a.payments[i] = h
	}
	if s := r.Session; s != nil {
		a.session = &session{
			returnInvoice: s.ReturnInvoice,
			closed:        s.Closed,
			openedAt:      s.OpenedAt,
			lastActivity:  s.LastActivity,
			closedAt:      s.ClosedAt,
			refund:        s.Refund,
			refundStatus:  RefundStatus(s.RefundStatus),
		}
		switch a.session.refundStatus {
		case "", RefundPending, RefundSkipped, RefundSucceeded, RefundFailed, RefundUnknown:
		default:
			return nil, fmt.Errorf("unknown refund status %q", s.RefundStatus)
		}
		if s.RefundPayment != "" {
			h, err := ParseHash(s.RefundPayment)
			if err != nil {
				return nil, err
			}
			a.session.refundPayment = h
		}
	}
	return a, nil
}

// claimsUntil returns the until of a claims blob's name, and false for
// any other name.
func claimsUntil(name string) (int64, bool) {
	name, ok := strings.CutSuffix(name, ".bin")
	parts := strings.Split(name, "-")
	if !ok || len(parts) != 3 || parts[1] == "" || parts[2] == "" {
		return 0, false
	}
	until, err := strconv.ParseInt(parts[0], 10, 64)
	return until, err == nil
}

const claimSize = len(Hash{}) + 8

// isClaims reports whether data is a well-formed claims blob.
func isClaims(data []byte) bool {
	return bytes.HasPrefix(data, []byte(claimsMagic)) && (len(data)-len(claimsMagic))%claimSize == 0
}

// eachClaim calls f with each claim of a blob that isClaims accepted.
func eachClaim(data []byte, f func(h Hash, until int64)) {
	if len(data) < len(claimsMagic) {
		return
	}
	for data = data[len(claimsMagic):]; len(data) >= claimSize; data = data[claimSize:] {
		f(Hash(data[:len(Hash{})]), int64(binary.BigEndian.Uint64(data[len(Hash{}):])))
	}
}
