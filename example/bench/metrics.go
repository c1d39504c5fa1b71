package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// nodeCallMetric is the histogram of Caddy's calls to the node, by RPC
// method: its _count counts calls, its _sum adds up their seconds.
const nodeCallMetric = "caddy_lightning_node_call_duration_seconds"

// rpcCounts maps an RPC method (e.g. "LookupInvoice") to a number of calls.
type rpcCounts map[string]float64

// total returns the calls of every method.
func (c rpcCounts) total() float64 {
	var t float64
	for _, v := range c {
		t += v
	}
	return t
}

// sub returns c - o, keeping only methods that changed.
func (c rpcCounts) sub(o rpcCounts) rpcCounts {
	d := rpcCounts{}
	for m, v := range c {
		if v != o[m] {
			d[m] = v - o[m]
		}
	}
	return d
}

// add adds o to c.
func (c rpcCounts) add(o rpcCounts) {
	for m, v := range o {
		c[m] += v
	}
}

// String lists the counts by method, e.g. "LookupInvoice 8, GetInfo 1".
func (c rpcCounts) String() string {
	if len(c) == 0 {
		return "none"
	}
	methods := make([]string, 0, len(c))
	for m := range c {
		methods = append(methods, m)
	}
	sort.Strings(methods)
	parts := make([]string, len(methods))
	for i, m := range methods {
		parts[i] = m + " " + strconv.FormatFloat(c[m], 'f', -1, 64)
	}
	return strings.Join(parts, ", ")
}

// nodeStats is what Caddy's metrics say of its node calls so far.
type nodeStats struct {
	calls   rpcCounts // by method
	seconds rpcCounts // total time of the calls, by method
}

// sub returns s - o.
func (s nodeStats) sub(o nodeStats) nodeStats {
	return nodeStats{calls: s.calls.sub(o.calls), seconds: s.seconds.sub(o.seconds)}
}

// add adds o to s.
func (s nodeStats) add(o nodeStats) {
	s.calls.add(o.calls)
	s.seconds.add(o.seconds)
}

// mean returns the mean latency of method's calls (0 without calls).
func (s nodeStats) mean(method string) time.Duration {
	if s.calls[method] == 0 {
		return 0
	}
	return time.Duration(s.seconds[method] / s.calls[method] * float64(time.Second))
}

// scraper reads the node call counters from Caddy's /metrics route.
type scraper struct {
	client *http.Client
	url    string
}

// nodeCalls returns Caddy's node calls so far.
func (s *scraper) nodeCalls(ctx context.Context) (nodeStats, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nodeStats{}, fmt.Errorf("scrape metrics: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nodeStats{}, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nodeStats{}, fmt.Errorf("scrape metrics: HTTP %d", resp.StatusCode)
	}
	stats, err := parseNodeCalls(resp.Body)
	if err != nil {
		return nodeStats{}, fmt.Errorf("scrape metrics: %w", err)
	}
	return stats, nil
}

// parseNodeCalls reads the nodeCallMetric _count and _sum samples of a
// Prometheus text exposition, e.g. `..._count{method="AddInvoice"} 12`.
func parseNodeCalls(r io.Reader) (nodeStats, error) {
	stats := nodeStats{calls: rpcCounts{}, seconds: rpcCounts{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var into rpcCounts
		rest, ok := strings.CutPrefix(line, nodeCallMetric+"_count{")
		if ok {
			into = stats.calls
		} else if rest, ok = strings.CutPrefix(line, nodeCallMetric+"_sum{"); ok {
			into = stats.seconds
		} else {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok {
			return nodeStats{}, fmt.Errorf("malformed sample %q", line)
		}
		method := ""
		for l := range strings.SplitSeq(labels, ",") {
			if v, ok := strings.CutPrefix(l, `method="`); ok {
				method = strings.TrimSuffix(v, `"`)
			}
		}
		fields := strings.Fields(value)
		if len(fields) == 0 {
			return nodeStats{}, fmt.Errorf("malformed sample %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nodeStats{}, fmt.Errorf("sample %q: %w", line, err)
		}
		into[method] += v
	}
	if err := sc.Err(); err != nil {
		return nodeStats{}, err
	}
	return stats, nil
}
