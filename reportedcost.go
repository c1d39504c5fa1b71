package lightning

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/lightningcaddy/caddy-lightning/ledger"
)

// settleTimeout bounds charging a reported cost when an answer ends.
const settleTimeout = 5 * time.Second

// meter charges a prepaid request what its upstream reports it cost: the
// price is held at admission, and the cost the upstream puts in the
// cost_header response header (or trailer, for streamed answers) is
// charged, capped at max_cost, when the answer ends. The client never sees
// the header or trailer.
//
// What is charged:
//   - a plain whole number n: n, at most max_cost ("reported", "capped");
//   - no report: the price held ("missing");
//   - anything else (negative, a fraction, text, several values, or both
//     a header and a trailer): max_cost, and a warning in the log
//     ("invalid"): a broken report is never free;
//   - an answer of 500 or more, an error of the rest of the route, or an
//     aborted request (the client or the upstream went away mid-answer):
//     nothing, unless charge_failures ("free").
type meter struct {
	p    *Paywall
	hold ledger.Hold

	headerSeen bool
	status     int
	reported   []string // the cost header's values, taken out of the header
	inTrailer  bool     // the upstream announced the cost as a trailer
}

// header runs when the answer's header is written: it takes the cost out
// of the header and out of the trailer announcement, and returns the
// balance to tell the client: what remains once this cost is charged, or,
// when the cost comes in a trailer, once the price is.
func (m *meter) header(h http.Header, status int) int64 {
	m.headerSeen, m.status = true, status
	key := m.p.costKey
	if v, ok := h[key]; ok {
		m.reported = append(m.reported, v...)
		delete(h, key)
	}
	if announced, ok := h["Trailer"]; ok {
		var kept []string
		for _, name := range directiveList(announced) {
			if http.CanonicalHeaderKey(name) == key {
				m.inTrailer = true
			} else {
				kept = append(kept, name)
			}
		}
		if len(kept) == 0 {
			delete(h, "Trailer")
		} else {
			h["Trailer"] = []string{strings.Join(kept, ", ")}
		}
	}
	if m.inTrailer {
		return m.hold.Remaining
	}
	cost, _ := m.charge(false)
	return m.hold.Remaining + m.hold.Sats - cost
}

// finish charges the cost once the rest of the route returned (completed)
// or panicked (the answer was aborted), and takes a trailer with the cost
// out of the answer; for a cost from a trailer it adds the balance as a
// trailer.
func (m *meter) finish(r *http.Request, h http.Header, completed bool, routeErr error) {
	if !m.headerSeen {
		m.header(h, http.StatusOK) // nothing was written: the server sends 200
	}
	for _, key := range []string{m.p.costKey, http.TrailerPrefix + m.p.costKey} {
		if v, ok := h[key]; ok {
			m.reported = append(m.reported, v...)
			delete(h, key)
		}
	}
	failed := !completed || routeErr != nil || r.Context().Err() != nil
	cost, outcome := m.charge(failed)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), settleTimeout)
	defer cancel()
	remaining, err := m.p.led.Settle(ctx, m.hold, cost)
	if err != nil {
		countLedgerError(m.p.led.backend, err)
		m.p.led.trouble.log(m.p.logger, "ledger: cannot charge a reported cost; the hold is released when it expires", err,
			zap.String("account", m.hold.Account), zap.Int64("cost", cost), zap.String("request_id", requestID(r)))
		return
	}
	m.p.metrics.reported(outcome, cost)
	if outcome == "invalid" {
		m.p.logger.Warn("paywall: the upstream's cost report is not a whole number of sats; charged max_cost",
			zap.String("header", m.p.CostHeader), zap.Strings("values", truncated(m.reported)), zap.Int64("max_cost", m.p.maxCost))
	}
	if m.inTrailer && completed {
		h[http.TrailerPrefix+balanceHeader] = []string{strconv.FormatInt(remaining, 10)}
	}
}

// charge returns the cost to charge and what it came from.
func (m *meter) charge(failed bool) (int64, string) {
	failed = failed || m.status >= 500
	switch {
	case failed && !m.p.ChargeFailures:
		return 0, "free"
	case len(m.reported) == 0:
		return m.hold.Sats, "missing"
	case len(m.reported) > 1:
		return m.p.maxCost, "invalid"
	}
	v := strings.Trim(m.reported[0], " \t")
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return m.p.maxCost, "invalid"
	}
	cost, err := strconv.ParseInt(v, 10, 64)
	if err != nil || cost > m.p.maxCost { // err: too large for int64
		return m.p.maxCost, "capped"
	}
	return cost, "reported"
}

// truncated shortens values for a log line.
func truncated(values []string) []string {
	out := make([]string, 0, min(len(values), 4))
	for _, v := range values[:min(len(values), 4)] {
		out = append(out, truncateUTF8(v, 32))
	}
	return out
}
