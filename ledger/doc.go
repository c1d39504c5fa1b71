// Package ledger counts what a paywall must count: single-use payments,
// prepaid balances and Lightning sessions. Ledger is the contract; Memory
// is the embedded backend (in memory, persisted to a Storage such as
// Caddy's), and package redisledger the backend for several instances.
// ledgertest holds the conformance suite both pass. No Caddy types here.
//
// # One write decides
//
// Every operation is one atomic step of its backend (one mutex in Memory,
// one Lua script in Redis) that checks and changes in the same step, so
// concurrent presentations of one credential, on one instance or (with
// Redis) several, never admit more than was paid. A payment hash is
// redeemed once: claimed (per-request L402, Payment charge, x402) or
// credited to one account or session, never both.
//
// # Prepaid balances
//
// A request presenting a paid credential draws its price from the
// credential's account: Draw; on ErrNotFound (first use) Credit the
// payment, then Draw again. Credit is idempotent per payment hash, so a
// credential presented twice, even at once, is credited once. A Draw the
// balance cannot cover takes nothing and returns an *InsufficientError
// with the shortfall: a plain draw never takes a balance below zero.
//
// A request whose cost the upstream reports reserves its price at
// admission (Reserve) and settles the reported cost when the response ends
// (Settle; cost 0 releases the hold, for upstream 5xx and aborts). A cost
// above the hold is charged in full: the balance may go below zero by that
// overage (at most the paywall's cost cap minus the price), no further
// draw or reservation passes until a credit covers the debt, and the
// account's next credit pays it first. So the operator is paid what the
// upstream reported, within the cap it configured; capping the charge at
// the balance instead would let a client run up costs it never pays. On a
// closed session the charge is capped at the hold, since the rest was
// refunded.
//
// # Sessions
//
// OpenSession credits the deposit once and keeps the return invoice;
// Draw, Reserve and Settle work on the session's id as on an account;
// TopUp credits an open session once per payment hash. CloseSession marks
// the session closed and returns its refund (deposit minus spent minus
// held) in the same step, exactly once: a second close gets ErrClosed and
// nothing to pay. The caller pays the refund only when CloseSession
// returned nil, then records the outcome (RecordRefund). A refund still
// pending after a restart may or may not have been paid: look it up by the
// return invoice's payment hash, never pay it again blindly. Closed
// sessions are kept. IdleSessions lists the open sessions an idle closer
// should close.
//
// # Memory: durability and the crash bound
//
// Credits and session changes (open, top-up, close, refund outcome) are
// stored before they return: a crash loses none. Claims and draws (and
// settled costs) are stored by the flusher (Memory.Run) every
// FlushInterval, so a crash loses those made since the last completed
// flush: at most
//
//	lost ≤ min(R × (FlushInterval + W), MaxUnsaved)
//
// operations, where R is the rate of per-request claims and prepaid draws
// and W the time one flush takes to write. A lost claim is a single-use
// credential that can be redeemed once more (served twice); a lost draw
// is a request that went unbilled. Run flushes early once half of
// MaxUnsaved waits, and at MaxUnsaved claims and draws fail closed
// (ErrUnavailable) until a flush succeeds, so even a failing storage
// cannot widen the window. Holds are not stored: a crash releases them,
// and requests in flight at the crash are not charged.
//
// Measured by TestCrashLossBound (storage taken as it is at 8 random
// instants while 4 goroutines claim and draw, then reloaded; figures on
// this project's 2-core test machine, busy with other builds):
//
//	FlushInterval  rate (ops/s)  worst loss (ops)  = ms of traffic  R × FlushInterval
//	10ms            72,362              700             9.7                724
//	100ms          107,863           12,150           112.6             10,786
//	500ms          118,136           36,450           308.5             59,068 (early flush at 50,000)
//
// With the default FlushInterval of 1s, a server admitting 1,000
// per-request or prepaid requests a second loses at most about 1,000 of
// them (plus those of one flush's write time) in a crash.
//
// Memory is exact within one process. Several Memory ledgers on one
// Storage (several Caddy instances sharing file storage) are each durable
// but not exact together: each admits from its own copy of a balance, and
// the last writer of an account wins. Exact across instances means Redis.
package ledger
