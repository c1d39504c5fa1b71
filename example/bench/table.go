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

	checkSmall, checkLarge       *loadResult
	lookupSmall, lookupLarge     *loadResult // the control: LookupInvoice straight to alice
	checkSmallRPC, checkLargeRPC rpcCounts
	checkSmallN, checkLargeN     uint64 // invoices on alice

	memSmall, memLarge             *loadResult
	heapBase, heapSmall, heapLarge uint64
	memRPC                         rpcCounts
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
	for _, name := range scenarioNames {
		if !r.ran[name] {
			row(name, "not run", "", "")
		}
	}
	if r.ran["throughput"] || r.ran["challenges"] {
		b.WriteString("\nRequests/s per round (interleaved):\n\n")
		for _, s := range []struct {
			name string
			res  *loadResult
		}{{"plain", r.plain}, {"preimage", r.preimage}, {"token only", r.token}, {"plain+header", r.control}, {"402", r.challenge}, {"AddInvoice", r.addInvoice}} {
			if s.res != nil {
				fmt.Fprintf(&b, "- %s: %s\n", s.name, formatRounds(s.res.rounds))
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
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
