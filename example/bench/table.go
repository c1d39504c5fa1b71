package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// Targets of the issue "Benchmarks and speed targets".
const (
	targetPaidThroughput = 0.95 // paid req/s over baseline req/s, at least
	targetChallengeRate  = 0.90 // 402/s over direct AddInvoice/s, at least
	targetCheckGrowth    = 1.20 // checkinvoice p50 at the large count over the small, at most
	targetHeapGrowth     = 1.20 // HeapInuse after memLarge tokens over memSmall, at most

	// Targets of the issue "Pay per request for real".
	targetSellThroughput  = 0.90                 // per_request and prepaid (embedded) req/s over baseline, at least
	targetSellCPU         = 2 * time.Microsecond // added CPU per admitted request over a pass, at most
	targetRedisThroughput = 0.75                 // prepaid on Redis req/s over baseline, at least
)

// results is what the scenarios measured; nil or zero where a scenario
// did not run.
type results struct {
	ran        map[string]bool // scenario name -> completed
	began      time.Time
	loadBefore string // /proc/loadavg at the start of the measures
	loadAfter  string

	plain, preimage, token *loadResult
	control                *loadResult // /plain/ carrying the credential in a header Caddy drops
	preimageRPC, tokenRPC  rpcCounts   // node calls during the measured rounds
	tokenFirstRPC          rpcCounts   // node calls of the first request of each token-only credential
	tokenCount             int

	challenge, addInvoice *loadResult
	challengeRPC          rpcCounts
	challengeAddInvoice   time.Duration // mean AddInvoice latency as Caddy saw it
	challengeEvery        *loadResult   // 402s offering L402, charge and x402
	challengeEveryRPC     rpcCounts

	checkSmall, checkLarge       *loadResult
	lookupSmall, lookupLarge     *loadResult // the control: LookupInvoice straight to alice
	checkSmallRPC, checkLargeRPC rpcCounts
	checkSmallN, checkLargeN     uint64 // invoices on alice

	memSmall, memLarge             *loadResult
	heapBase, heapSmall, heapLarge uint64
	memRPC                         rpcCounts

	sellPlain, sellPass, sellFresh *loadResult // selling: the baseline and the passes
	sellOnce, sellPrepaid          *loadResult // per_request and prepaid, embedded ledger
	overspendOne                   overspendResult

	redisPlain, redisPrepaid *loadResult
	redisCommands            float64 // Redis commands per prepaid request
	redisRoundTrips          float64 // Redis round trips per prepaid request (the server's reads)
	overspendTwo             overspendResult
}

// verdict is PASS or FAIL.
func verdict(ok bool) string {
	if ok {
		return "PASS"
	}
	return "**FAIL**"
}

// ratio returns a / b, or 0 if b is 0.
func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// failures notes failed requests of a result, if any.
func failures(r *loadResult) string {
	if r.failures == 0 {
		return ""
	}
	return fmt.Sprintf("; %d failed: %v", r.failures, r.firstErr)
}

// table writes the results as Markdown.
func (r *results) table(w io.Writer, o options) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## caddy-lightning load benchmark\n\n")
	fmt.Fprintf(&b, "- Machine: %d cores (runtime.NumCPU), GOMAXPROCS %d, %s/%s, load average %s at start, %s at end\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, r.loadBefore, r.loadAfter)
	fmt.Fprintf(&b, "- Go: %s; date: %s\n", runtime.Version(), r.began.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- Load: %d keep-alive client goroutines on loopback; Caddy, the upstream (1 KiB answer) and the client in one process "+
		"(CPU/request is that process's user+system time); lnd and btcd beside it\n", o.concurrency)
	fmt.Fprintf(&b, "- Interleaved: %d rounds of up to %s or %d requests per scenario (throughput); %d rounds of up to %s or %d (invoices); "+
		"ratios are medians of per-round ratios (scenarios of a round run back to back, in rotating order)\n\n",
		o.rounds, o.roundTime, o.roundRequests, o.invoiceRounds, o.invoiceRoundTime, o.invoiceRoundRequests)
	b.WriteString("| Measure | Result | Target | Status |\n|---|---|---|---|\n")
	row := func(measure, result, target, status string) {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", measure, result, target, status)
	}

	if r.ran["throughput"] {
		base := r.plain.rate()
		row("`/plain/` reverse_proxy (baseline)", fmt.Sprintf("%s; CPU %s/request; %s%s",
			r.plain.summary(), formatLatency(r.plain.cpuPerRequest()), formatAllocs(r.plain), failures(r.plain)), "", "")
		for _, s := range []struct {
			name string
			res  *loadResult
		}{{"`/paid/` token + preimage", r.preimage}, {"`/paid/` token only (cookie mode, after first request)", r.token}} {
			q := pairedRatio(s.res, r.plain)
			row(s.name, fmt.Sprintf("%s; **%.3fx** baseline (median of %d paired rounds; totals %.3fx); CPU %s/request (%+.1f µs); %s%s",
				s.res.summary(), q, len(s.res.rounds), ratio(s.res.rate(), base),
				formatLatency(s.res.cpuPerRequest()), float64(s.res.cpuPerRequest()-r.plain.cpuPerRequest())/float64(time.Microsecond),
				formatAllocs(s.res), failures(s.res)),
				fmt.Sprintf("≥ %.2fx baseline", targetPaidThroughput), verdict(q >= targetPaidThroughput && s.res.failures == 0))
		}
		row("Control: `/plain/` + the same credential in `Proxy-Authorization` (dropped by Caddy)",
			fmt.Sprintf("%s; %.3fx baseline (median of %d paired rounds); CPU %s/request (%+.1f µs); %s%s",
				r.control.summary(), pairedRatio(r.control, r.plain), len(r.control.rounds),
				formatLatency(r.control.cpuPerRequest()), float64(r.control.cpuPerRequest()-r.plain.cpuPerRequest())/float64(time.Microsecond),
				formatAllocs(r.control), failures(r.control)), "", "")
		pre := r.preimageRPC.total()
		row("Node RPCs per preimage-verified request", fmt.Sprintf("%.4g (%g in %d requests: %s)",
			ratio(pre, float64(r.preimage.requests)), pre, r.preimage.requests, r.preimageRPC), "0", verdict(pre == 0))
		first, steady := r.tokenFirstRPC.total(), r.tokenRPC.total()
		perToken := ratio(first+steady, float64(r.tokenCount))
		row("Node RPCs per token, token-only mode", fmt.Sprintf("%.3g (first request of %d tokens: %s; then %s in %d requests)",
			perToken, r.tokenCount, r.tokenFirstRPC, r.tokenRPC, r.token.requests), "≤ 1 per token", verdict(perToken <= 1))
	}
	if r.ran["challenges"] {
		q := pairedRatio(r.challenge, r.addInvoice)
		row("402 challenges through Caddy", fmt.Sprintf("%s; **%.3fx** direct (median of %d paired rounds; totals %.3fx); node RPCs: %s, AddInvoice mean %s as Caddy saw it; this process's CPU %s/request%s",
			r.challenge.summary(), q, len(r.challenge.rounds), ratio(r.challenge.rate(), r.addInvoice.rate()),
			r.challengeRPC, formatLatency(r.challengeAddInvoice), formatLatency(r.challenge.cpuPerRequest()), failures(r.challenge)),
			fmt.Sprintf("≥ %.2fx direct AddInvoice", targetChallengeRate), verdict(q >= targetChallengeRate && r.challenge.failures == 0))
		qe := pairedRatio(r.challengeEvery, r.addInvoice)
		perChallenge := ratio(r.challengeEveryRPC["AddInvoice"], float64(r.challengeEvery.requests))
		row("402 with every offer (L402 + Payment charge + x402, `/once/`)", fmt.Sprintf("%s; **%.3fx** direct (median of %d paired rounds; totals %.3fx); **%.3g AddInvoice per 402**; node RPCs: %s; this process's CPU %s/request%s",
			r.challengeEvery.summary(), qe, len(r.challengeEvery.rounds), ratio(r.challengeEvery.rate(), r.addInvoice.rate()),
			perChallenge, r.challengeEveryRPC, formatLatency(r.challengeEvery.cpuPerRequest()), failures(r.challengeEvery)),
			fmt.Sprintf("≥ %.2fx direct AddInvoice, 1 AddInvoice per 402", targetChallengeRate),
			verdict(qe >= targetChallengeRate && perChallenge == 1 && r.challengeEvery.failures == 0))
		row("AddInvoice straight to alice (gRPC)", fmt.Sprintf("%s, mean %s; this process's CPU %s/request%s",
			r.addInvoice.summary(), formatLatency(r.addInvoice.latency.mean()), formatLatency(r.addInvoice.cpuPerRequest()), failures(r.addInvoice)), "", "")
	}
	if r.ran["checkinvoice"] {
		row(fmt.Sprintf("checkinvoice, %d invoices on alice", r.checkSmallN), checkSummary(r.checkSmall, r.lookupSmall, r.checkSmallRPC), "", "")
		q := ratio(float64(r.checkLarge.latency.quantile(0.5)), float64(r.checkSmall.latency.quantile(0.5)))
		qd := ratio(float64(r.lookupLarge.latency.quantile(0.5)), float64(r.lookupSmall.latency.quantile(0.5)))
		row(fmt.Sprintf("checkinvoice, %d invoices on alice", r.checkLargeN),
			fmt.Sprintf("%s; p50 %.2fx (direct %.2fx)", checkSummary(r.checkLarge, r.lookupLarge, r.checkLargeRPC), q, qd),
			fmt.Sprintf("p50 ≤ %.1fx at %d", targetCheckGrowth, r.checkSmallN),
			verdict(q <= targetCheckGrowth && r.checkSmall.failures == 0 && r.checkLarge.failures == 0))
	}
	if r.ran["memory"] {
		row(fmt.Sprintf("HeapInuse after %s paid requests, distinct tokens", formatCount(float64(r.memSmall.requests))),
			fmt.Sprintf("%s (before: %s)%s", formatBytes(r.heapSmall), formatBytes(r.heapBase), failures(r.memSmall)), "", "")
		q := ratio(float64(r.heapLarge), float64(r.heapSmall))
		row(fmt.Sprintf("HeapInuse after %s paid requests, distinct tokens", formatCount(float64(r.memLarge.requests))),
			fmt.Sprintf("%s (%.3fx); %s/s; node RPCs: %s%s", formatBytes(r.heapLarge), q, formatCount(r.memLarge.rate()), r.memRPC, failures(r.memLarge)),
			fmt.Sprintf("≤ %.1fx after %s", targetHeapGrowth, formatCount(float64(r.memSmall.requests))),
			verdict(q <= targetHeapGrowth && r.memLarge.failures == 0))
	}
	if r.ran["selling"] {
		r.sellingRows(row)
	}
	if r.ran["redis"] {
		q := pairedRatio(r.redisPrepaid, r.redisPlain)
		row("`/plain/` reverse_proxy (Redis phase baseline)", fmt.Sprintf("%s; CPU %s/request%s",
			r.redisPlain.summary(), formatLatency(r.redisPlain.cpuPerRequest()), failures(r.redisPlain)), "", "")
		row("`/bal/` prepaid on Redis (loopback), 1 sat drawn per request", fmt.Sprintf("%s; **%.3fx** baseline (median of %d paired rounds; totals %.3fx); "+
			"**%.3g Redis commands and %.3g round trips/request** (concurrent requests share pipelines); CPU %s/request (%+.1f µs, this process only: Redis's own is apart); %s%s",
			r.redisPrepaid.summary(), q, len(r.redisPrepaid.rounds), ratio(r.redisPrepaid.rate(), r.redisPlain.rate()), r.redisCommands, r.redisRoundTrips,
			formatLatency(r.redisPrepaid.cpuPerRequest()), float64(pairedCPUDelta(r.redisPrepaid, r.redisPlain))/float64(time.Microsecond),
			formatAllocs(r.redisPrepaid), failures(r.redisPrepaid)),
			fmt.Sprintf("≥ %.2fx baseline", targetRedisThroughput), verdict(q >= targetRedisThroughput && r.redisPrepaid.failures == 0))
		row("Overspend: two `cmd/caddy` instances sharing the Redis ledger", r.overspendTwo.String(), "admitted = paid", verdict(r.overspendTwo.ok()))
	}
	for _, name := range scenarioNames {
		if !r.ran[name] {
			row(name, "not run", "", "")
		}
	}
	if r.ran["throughput"] || r.ran["challenges"] || r.ran["selling"] || r.ran["redis"] {
		b.WriteString("\nRequests/s per round (interleaved):\n\n")
		for _, s := range []struct {
			name string
			res  *loadResult
		}{{"plain", r.plain}, {"preimage", r.preimage}, {"token only", r.token}, {"plain+header", r.control}, {"402", r.challenge}, {"402 every offer", r.challengeEvery}, {"AddInvoice", r.addInvoice},
			{"selling: plain", r.sellPlain}, {"selling: pass", r.sellPass}, {"selling: pass, fresh credential", r.sellFresh},
			{"selling: per_request", r.sellOnce}, {"selling: prepaid", r.sellPrepaid}, {"redis: plain", r.redisPlain}, {"redis: prepaid", r.redisPrepaid}} {
			if s.res != nil {
				fmt.Fprintf(&b, "- %s: %s\n", s.name, formatRounds(s.res.rounds))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// sellingRows writes the rows of the selling scenario.
func (r *results) sellingRows(row func(measure, result, target, status string)) {
	base := r.sellPlain
	row("`/plain/` reverse_proxy (selling baseline)", fmt.Sprintf("%s; CPU %s/request%s",
		base.summary(), formatLatency(base.cpuPerRequest()), failures(base)), "", "")
	line := func(res *loadResult) string {
		return fmt.Sprintf("%s; **%.3fx** baseline (median of %d paired rounds; totals %.3fx); CPU %s/request; %s%s",
			res.summary(), pairedRatio(res, base), len(res.rounds), ratio(res.rate(), base.rate()),
			formatLatency(res.cpuPerRequest()), formatAllocs(res), failures(res))
	}
	row("`/paid/` pass, remembered credential", line(r.sellPass), "", "")
	row("`/fresh/` pass, a fresh credential every request", line(r.sellFresh), "", "")
	for _, s := range []struct {
		name     string
		res, vs  *loadResult
		baseline string
	}{
		{"`/once/` per_request, embedded ledger, a fresh payment every request", r.sellOnce, r.sellFresh, "a pass with a fresh credential"},
		{"`/bal/` prepaid, embedded ledger, 1 sat drawn per request", r.sellPrepaid, r.sellPass, "a pass with a remembered credential"},
	} {
		q := pairedRatio(s.res, base)
		row(s.name, line(s.res), fmt.Sprintf("≥ %.2fx baseline", targetSellThroughput), verdict(q >= targetSellThroughput && s.res.failures == 0))
		added := pairedCPUDelta(s.res, s.vs)
		row("  added CPU per admitted request over "+s.baseline, fmt.Sprintf("%+.1f µs (median of per-round differences; whole process)", float64(added)/float64(time.Microsecond)),
			fmt.Sprintf("≤ %s", formatLatency(targetSellCPU)), verdict(added <= targetSellCPU))
	}
	row(fmt.Sprintf("Overspend: one instance, embedded ledger, %d clients at once", overspendClients), r.overspendOne.String(), "admitted = paid", verdict(r.overspendOne.ok()))
}

// String is the overspend check in one line.
func (o overspendResult) String() string {
	return fmt.Sprintf("a paid balance of %s requests: **%s admitted**; %d per_request payments, each presented by %d clients at once: **%d admitted** (%s requests over %d instance(s))",
		formatCount(float64(o.balancePaid)), formatCount(float64(o.balanceAdmitted)), o.perRequestPaid, overspendClients, o.perRequestUsed,
		formatCount(float64(o.requests)), o.instances)
}

// checkSummary is a checkinvoice result, and its direct control, in one
// line.
func checkSummary(r, direct *loadResult, rpc rpcCounts) string {
	return fmt.Sprintf("p50 %s, p99 %s over %d checks; node RPCs per check %.3g (%s); direct LookupInvoice p50 %s, p99 %s%s",
		formatLatency(r.latency.quantile(0.5)), formatLatency(r.latency.quantile(0.99)), r.requests,
		ratio(rpc.total(), float64(r.requests)), rpc,
		formatLatency(direct.latency.quantile(0.5)), formatLatency(direct.latency.quantile(0.99)), failures(r))
}

// formatAllocs prints heap allocations per request.
func formatAllocs(r *loadResult) string {
	b, o := r.allocsPerRequest()
	return fmt.Sprintf("%.1f KiB in %.0f allocs/request", b/1024, o)
}

// formatRounds lists per-round rates.
func formatRounds(rates []float64) string {
	parts := make([]string, len(rates))
	for i, v := range rates {
		parts[i] = formatCount(v)
	}
	return strings.Join(parts, ", ")
}

// formatCount prints a count or rate with thousands separators.
func formatCount(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatLatency prints a latency with three significant digits.
func formatLatency(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.3g s", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.3g ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.3g µs", float64(d)/float64(time.Microsecond))
	}
}

// formatBytes prints a size in MiB.
func formatBytes(n uint64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// loadAverage returns the 1, 5 and 15 minute load averages, or "?".
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
