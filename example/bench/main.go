// Command bench is the load benchmark of caddy-lightning: it starts a
// regtest Lightning network (internal/regtest), a tiny upstream and Caddy in
// this process, then measures, on loopback, in one run:
//
//  1. requests/s, p50/p99 latency, CPU time and allocations per request of
//     /plain/ (reverse_proxy only, the baseline) against /paid/ (paywall in
//     front of the same proxy) with a token and its preimage, and with the
//     token alone (cookie mode), in interleaved rounds; plus a control,
//     /plain/ carrying the same credential bytes in a header Caddy drops,
//     which separates the cost of sending a credential from the paywall's;
//  2. node RPCs per paid request, from Caddy's Prometheus metrics;
//  3. 402 challenges per second through Caddy against AddInvoice calls per
//     second made straight to the node, interleaved;
//  4. checkinvoice latency through Caddy with 1,000 and 20,000 invoices on
//     the node, beside the same lookups made straight to the node;
//  5. Caddy's heap after 1,000 and after 100,000 paid requests with
//     distinct tokens;
//  6. the ways to sell on the embedded ledger, interleaved with /plain/: a
//     pass with a remembered credential and with a fresh one on every
//     request, per_request (a fresh payment on every request) and prepaid
//     (a draw per request); then, with real payments and 32 clients at
//     once, that exactly what was paid is admitted;
//  7. prepaid on Redis (loopback) against /plain/, with Redis round trips
//     per request; then the overspend check again on two Caddy processes
//     (cmd/caddy) sharing the Redis;
//
// and prints a Markdown table of the results against the targets. Ratios
// are medians of per-round ratios: the scenarios of a round run back to
// back, in rotating order, so noise on the machine hits them alike.
//
//	go run ./example/bench                          # everything, about 2-4 minutes on 2 cores
//	go run ./example/bench --out bench.md           # also write the table to a file
//	go run ./example/bench --only throughput --cpuprofile cpu.out
//	go tool pprof -top cpu.out
//
// Progress goes to stderr, the table to stdout, Caddy's logs to caddy.log
// in the working directory (--dir, default a temporary one).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
	"github.com/lightningcaddy/caddy-lightning/l402"
)

// scenarioNames are the scenarios --only can select, in the order they run
// (checkinvoice measures its small count first and its large count after
// the others have added invoices).
var scenarioNames = []string{"throughput", "selling", "challenges", "checkinvoice", "memory", "redis"}

// options are the command-line flags.
type options struct {
	concurrency   int
	rounds        int
	roundTime     time.Duration
	roundRequests int64
	warmup        time.Duration

	sellRoundRequests int64
	tokens            int

	invoiceRounds        int
	invoiceRoundTime     time.Duration
	invoiceRoundRequests int64

	checks           int
	checkConcurrency int
	checkTime        time.Duration
	smallInvoices    int
	largeInvoices    int

	memSmall, memLarge int64
	memTime            time.Duration

	timeout    time.Duration
	only       string
	out        string
	cpuprofile string
	dir        string
}

func main() {
	var o options
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent keep-alive client goroutines")
	flag.IntVar(&o.rounds, "rounds", 30, "interleaved rounds of each throughput scenario")
	flag.DurationVar(&o.roundTime, "round-time", 750*time.Millisecond, "time bound of one throughput round")
	flag.Int64Var(&o.roundRequests, "round-requests", 100_000, "request bound of one throughput round")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up of each throughput scenario")
	flag.Int64Var(&o.sellRoundRequests, "sell-round-requests", 4000, "request bound of one selling round (fresh credentials are minted for every request beforehand)")
	flag.IntVar(&o.tokens, "tokens", 8, "paid invoices (tokens) per paid throughput scenario")
	flag.IntVar(&o.invoiceRounds, "invoice-rounds", 12, "interleaved rounds of 402 challenges and direct AddInvoice")
	flag.DurationVar(&o.invoiceRoundTime, "invoice-round-time", 500*time.Millisecond, "time bound of one invoice round")
	flag.Int64Var(&o.invoiceRoundRequests, "invoice-round-requests", 1000, "request bound of one invoice round")
	flag.IntVar(&o.checks, "checks", 500, "checkinvoice calls measured at each invoice count")
	flag.IntVar(&o.checkConcurrency, "check-concurrency", 1, "concurrent checkinvoice calls")
	flag.DurationVar(&o.checkTime, "check-time", time.Minute, "time bound of the checks at each invoice count")
	flag.IntVar(&o.smallInvoices, "small-invoices", 1000, "invoices on the node for the first checkinvoice measure")
	flag.IntVar(&o.largeInvoices, "large-invoices", 20_000, "invoices on the node for the second checkinvoice measure")
	flag.Int64Var(&o.memSmall, "mem-small", 1000, "paid requests with distinct tokens before the first heap measure")
	flag.Int64Var(&o.memLarge, "mem-large", 100_000, "paid requests with distinct tokens before the second heap measure")
	flag.DurationVar(&o.memTime, "mem-time", 2*time.Minute, "time bound of the memory scenario")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Minute, "bound of the whole run")
	flag.StringVar(&o.only, "only", "", "comma-separated scenarios to run: "+strings.Join(scenarioNames, ",")+" (default: all)")
	flag.StringVar(&o.out, "out", "", "also write the table to this file")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the measures (Caddy and the load, in this process) to this file")
	flag.StringVar(&o.dir, "dir", "", "directory for the network's data and Caddy's log, kept (default: a temporary directory, removed unless the run fails)")
	flag.Parse()
	if err := o.validate(); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// validate checks the flags.
func (o *options) validate() error {
	switch {
	case o.concurrency < 1 || o.checkConcurrency < 1:
		return errors.New("--concurrency and --check-concurrency must be at least 1")
	case o.rounds < 1 || o.invoiceRounds < 1:
		return errors.New("--rounds and --invoice-rounds must be at least 1")
	case o.roundTime <= 0 || o.invoiceRoundTime <= 0 || o.checkTime <= 0 || o.memTime <= 0 || o.timeout <= 0:
		return errors.New("durations must be positive")
	case o.roundRequests < 1 || o.invoiceRoundRequests < 1 || o.checks < 1 || o.sellRoundRequests < 1:
		return errors.New("--round-requests, --invoice-round-requests, --sell-round-requests and --checks must be at least 1")
	case o.tokens < 1:
		return errors.New("--tokens must be at least 1")
	case o.smallInvoices < 1 || o.largeInvoices <= o.smallInvoices:
		return errors.New("--large-invoices must exceed --small-invoices, which must be at least 1")
	case o.memSmall < 1 || o.memLarge <= o.memSmall:
		return errors.New("--mem-large must exceed --mem-small, which must be at least 1")
	}
	for name := range strings.SplitSeq(o.only, ",") {
		if name = strings.TrimSpace(name); name != "" && !slices.Contains(scenarioNames, name) {
			return fmt.Errorf("--only: unknown scenario %q (have %s)", name, strings.Join(scenarioNames, ", "))
		}
	}
	return nil
}

// selected reports whether --only selects the scenario.
func (o *options) selected(name string) bool {
	if strings.TrimSpace(o.only) == "" {
		return true
	}
	for s := range strings.SplitSeq(o.only, ",") {
		if strings.TrimSpace(s) == name {
			return true
		}
	}
	return false
}

// run sets everything up, runs the selected scenarios and prints the table.
func run(o options) (err error) {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	b := &bench{opts: o, log: os.Stderr, res: results{ran: map[string]bool{}}}

	dir, removeDir, err := workDir(o.dir)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			fmt.Fprintf(os.Stderr, "bench: logs kept in %s\n", dir)
			return
		}
		err = removeDir()
	}()

	began := time.Now()
	network, err := regtest.Start(ctx, regtest.Options{Dir: filepath.Join(dir, "regtest"), Log: os.Stderr})
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, network.Stop()) }()
	b.network = network
	b.progress("network ready in %s", time.Since(began).Round(100*time.Millisecond))

	up, err := startUpstream()
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, up.stop()) }()
	if b.alice, err = dialAlice(ctx, network.Alice); err != nil {
		return err
	}
	defer func() { err = errors.Join(err, b.alice.close()) }()
	b.memo = "Access to 127.0.0.1" // what the paywall's default memo becomes here

	// Paid before Caddy starts: Caddy's invoice stream will not report
	// these settlements, so token-only requests make it ask the node.
	b.progress("paying %d invoices with bob before Caddy starts", o.tokens)
	if err := b.prepay(ctx, o.tokens); err != nil {
		return fmt.Errorf("prepay: %w", err)
	}

	rootKey := make([]byte, l402.RootKeySize)
	if _, err := rand.Read(rootKey); err != nil {
		return fmt.Errorf("root key: %w", err)
	}
	if b.keys, err = l402.NewKeyring(rootKey); err != nil {
		return fmt.Errorf("root key: %w", err)
	}
	port, err := caddyrun.FreePort()
	if err != nil {
		return err
	}
	logPath := filepath.Join(dir, "caddy.log")
	b.config = func(ledger string) string {
		return caddyfile(dir, logPath, port, network.Alice, up.addr, rootKey, ledger)
	}
	b.upstream, b.rootKey, b.dir = up.addr, rootKey, dir
	if err := startCaddy(b.config("")); err != nil {
		return err
	}
	defer func() {
		if stopErr := caddyrun.Stop(); stopErr != nil {
			err = errors.Join(err, fmt.Errorf("stop Caddy: %w", stopErr))
		}
	}()
	b.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	transport := &http.Transport{
		MaxIdleConns:        4 * o.concurrency,
		MaxIdleConnsPerHost: 4 * o.concurrency,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	b.client = &http.Client{Transport: transport, Timeout: time.Minute}
	b.metrics = &scraper{client: &http.Client{Timeout: 10 * time.Second}, url: b.base + "/metrics"}
	b.progress("Caddy serves %s (log: %s)", b.base, logPath)

	if o.cpuprofile != "" {
		stop, err := startProfile(o.cpuprofile)
		if err != nil {
			return err
		}
		defer func() { err = errors.Join(err, stop()) }()
	}
	scenarioErr := b.runScenarios(ctx)
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", errors.Join(scenarioErr, context.Cause(ctx)))
	}
	b.res.loadAfter = loadAverage()
	if err := b.res.table(os.Stdout, o); err != nil {
		return err
	}
	if o.out != "" {
		if err := writeTable(o.out, &b.res, o); err != nil {
			return err
		}
	}
	return scenarioErr
}

// runScenarios runs the selected scenarios in order. A failed scenario is
// reported and the others still run.
func (b *bench) runScenarios(ctx context.Context) error {
	b.res.began = time.Now()
	b.res.loadBefore = loadAverage()
	var errs []error
	step := func(name string, fn func(context.Context) error) {
		if !b.opts.selected(name) || ctx.Err() != nil {
			return
		}
		if err := fn(ctx); err != nil {
			b.progress("%s failed: %v", name, err)
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	// checkinvoice needs its small count before the other scenarios add
	// invoices, and its large count after them.
	step("checkinvoice", b.checkSmall)
	step("throughput", b.throughput)
	step("selling", b.selling)
	step("challenges", b.challenges)
	if b.res.checkSmall != nil {
		step("checkinvoice", b.checkLarge)
	}
	step("memory", b.memory)
	step("redis", b.redis) // last: it reloads Caddy with the Redis ledger
	return errors.Join(errs...)
}

// startProfile starts a CPU profile into path and returns its stop.
func startProfile(path string) (func() error, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// writeTable writes the table to path.
func writeTable(path string, r *results, o options) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	if err := r.table(f, o); err != nil {
		f.Close()
		return fmt.Errorf("write table: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// workDir returns the benchmark's directory, creating a temporary one if
// dir is empty, and a function that removes it if it was created here.
func workDir(dir string) (string, func() error, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "caddy-lightning-bench-")
		if err != nil {
			return "", nil, fmt.Errorf("create work directory: %w", err)
		}
		return tmp, func() error { return os.RemoveAll(tmp) }, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", nil, fmt.Errorf("work directory: %w", err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return "", nil, fmt.Errorf("create work directory: %w", err)
	}
	return abs, func() error { return nil }, nil
}
