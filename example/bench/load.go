package main

import (
	"context"
	"fmt"
	"math/bits"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// subBucketBits sets the histogram's precision: 2^subBucketBits buckets
// per power of two, so a recorded latency is off by less than 1%.
const subBucketBits = 7

// histogramBuckets covers latencies up to 2^40 ns (about 18 minutes).
const histogramBuckets = (40 - subBucketBits + 1) << subBucketBits

// histogram counts latencies in log-linear buckets (as HdrHistogram does):
// fixed size, no allocation per sample, mergeable.
type histogram struct {
	counts [histogramBuckets]uint64
	total  uint64
	sum    time.Duration
	max    time.Duration
}

// bucketOf returns the bucket index of a latency in nanoseconds.
func bucketOf(ns int64) int {
	if ns < 1<<subBucketBits {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	shift := bits.Len64(uint64(ns)) - subBucketBits - 1
	i := (shift+1)<<subBucketBits + int(ns>>shift) - 1<<subBucketBits
	if i >= histogramBuckets {
		return histogramBuckets - 1
	}
	return i
}

// bucketMid returns the middle of the latencies bucket i holds.
func bucketMid(i int) time.Duration {
	if i < 1<<subBucketBits {
		return time.Duration(i)
	}
	shift := i>>subBucketBits - 1
	low := int64(i&(1<<subBucketBits-1)+1<<subBucketBits) << shift
	return time.Duration(low + (int64(1)<<shift)/2)
}

// record adds one latency.
func (h *histogram) record(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.total++
	h.sum += d
	h.max = max(h.max, d)
}

// merge adds o's samples to h.
func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.max = max(h.max, o.max)
}

// mean returns the mean latency (0 without samples).
func (h *histogram) mean() time.Duration {
	if h.total == 0 {
		return 0
	}
	return h.sum / time.Duration(h.total)
}

// quantile returns the latency below which the fraction q of samples lie
// (0 without samples).
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(q*float64(h.total) + 0.5)
	rank = min(max(rank, 1), h.total)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(bucketMid(i), h.max)
		}
	}
	return h.max
}

// loadResult is what one run of a load, or several merged, measured.
type loadResult struct {
	requests int64           // completed requests (failed ones included)
	failures int64           // requests whose outcome was not the expected one
	firstErr error           // the first failure's error
	elapsed  time.Duration   // wall time, from the first request to the last answer
	latency  histogram       // of every completed request
	rounds   []float64       // requests per second of each merged round
	cpuRound []time.Duration // CPU time per request of each merged round
	cpu      time.Duration   // CPU time of this process (Caddy, upstream and client) during the run
	allocs   heapAllocs      // what this process allocated during the run
}

// heapAllocs counts heap allocations.
type heapAllocs struct {
	bytes, objects uint64
}

// allocSamples are the runtime/metrics that heapAllocs reads.
var allocSamples = []string{"/gc/heap/allocs:bytes", "/gc/heap/allocs:objects"}

// processAllocs returns what this process allocated so far, without
// stopping the world.
func processAllocs() heapAllocs {
	s := make([]metrics.Sample, len(allocSamples))
	for i, name := range allocSamples {
		s[i].Name = name
	}
	metrics.Read(s)
	var a heapAllocs
	if s[0].Value.Kind() == metrics.KindUint64 {
		a.bytes = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		a.objects = s[1].Value.Uint64()
	}
	return a
}

// allocsPerRequest returns bytes and objects allocated per request.
func (r *loadResult) allocsPerRequest() (bytes, objects float64) {
	if r.requests == 0 {
		return 0, 0
	}
	return float64(r.allocs.bytes) / float64(r.requests), float64(r.allocs.objects) / float64(r.requests)
}

// cpuPerRequest returns the process's CPU time per request.
func (r *loadResult) cpuPerRequest() time.Duration {
	if r.requests == 0 {
		return 0
	}
	return r.cpu / time.Duration(r.requests)
}

// processCPU returns the CPU time (user and system) this process used so
// far, or 0 if the system does not say.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rate returns requests per second.
func (r *loadResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.requests) / r.elapsed.Seconds()
}

// add merges another run into r, as one more round.
func (r *loadResult) add(o *loadResult) {
	r.requests += o.requests
	r.failures += o.failures
	if r.firstErr == nil {
		r.firstErr = o.firstErr
	}
	r.elapsed += o.elapsed
	r.cpu += o.cpu
	r.allocs.bytes += o.allocs.bytes
	r.allocs.objects += o.allocs.objects
	r.latency.merge(&o.latency)
	r.rounds = append(r.rounds, o.rate())
	r.cpuRound = append(r.cpuRound, o.cpuPerRequest())
}

// pairedCPUDelta returns the median, over rounds, of r's CPU time per
// request minus base's in the same round (0 if the rounds do not pair up).
func pairedCPUDelta(r, base *loadResult) time.Duration {
	if len(r.cpuRound) == 0 || len(r.cpuRound) != len(base.cpuRound) {
		return 0
	}
	deltas := make([]time.Duration, len(r.cpuRound))
	for i, c := range r.cpuRound {
		deltas[i] = c - base.cpuRound[i]
	}
	slices.Sort(deltas)
	n := len(deltas)
	if n%2 == 1 {
		return deltas[n/2]
	}
	return (deltas[n/2-1] + deltas[n/2]) / 2
}

// pairedRatio returns the median, over rounds, of r's rate over base's rate
// in the same round: scenarios of one round run back to back, so this
// cancels most of the machine's drift between rounds. It returns 0 if the
// rounds do not pair up.
func pairedRatio(r, base *loadResult) float64 {
	if len(r.rounds) == 0 || len(r.rounds) != len(base.rounds) {
		return 0
	}
	ratios := make([]float64, 0, len(r.rounds))
	for i, v := range r.rounds {
		if base.rounds[i] > 0 {
			ratios = append(ratios, v/base.rounds[i])
		}
	}
	if len(ratios) == 0 {
		return 0
	}
	slices.Sort(ratios)
	n := len(ratios)
	if n%2 == 1 {
		return ratios[n/2]
	}
	return (ratios[n/2-1] + ratios[n/2]) / 2
}

// summary is the result in one line: rate, p50 and p99.
func (r *loadResult) summary() string {
	return fmt.Sprintf("%s/s, p50 %s, p99 %s", formatCount(r.rate()),
		formatLatency(r.latency.quantile(0.5)), formatLatency(r.latency.quantile(0.99)))
}

// requestFunc makes request number i from worker and reports an error if
// its outcome is not the expected one.
type requestFunc func(ctx context.Context, worker int, i int64) error

// load is a closed-loop load: a fixed number of workers, each sending its
// next request when the previous one is answered.
type load struct {
	workers     int           // concurrent requests
	maxRequests int64         // stop after this many requests (0: no bound)
	maxTime     time.Duration // stop starting requests after this long (0: no bound)
}

// run sends requests with do until maxRequests were sent, maxTime passed
// or ctx ended, and returns what it measured. Requests in flight when time
// is up are finished and counted.
func (l load) run(ctx context.Context, do requestFunc) *loadResult {
	var (
		next     atomic.Int64
		mu       sync.Mutex
		res      = new(loadResult)
		wg       sync.WaitGroup
		deadline time.Time
	)
	start, cpu, allocs := time.Now(), processCPU(), processAllocs()
	if l.maxTime > 0 {
		deadline = start.Add(l.maxTime)
	}
	for w := range max(l.workers, 1) {
		wg.Go(func() {
			local := new(loadResult)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if l.maxRequests > 0 && i >= l.maxRequests {
					break
				}
				began := time.Now()
				if !deadline.IsZero() && began.After(deadline) {
					break
				}
				err := do(ctx, w, i)
				if ctx.Err() != nil && err != nil {
					break // interrupted, not a failure of the server
				}
				local.latency.record(time.Since(began))
				local.requests++
				if err != nil {
					local.failures++
					if local.firstErr == nil {
						local.firstErr = err
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			res.requests += local.requests
			res.failures += local.failures
			if res.firstErr == nil {
				res.firstErr = local.firstErr
			}
			res.latency.merge(&local.latency)
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	res.cpu = processCPU() - cpu
	end := processAllocs()
	res.allocs = heapAllocs{bytes: end.bytes - allocs.bytes, objects: end.objects - allocs.objects}
	return res
}
