package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, 1000 * time.Microsecond}} {
		got := h.quantile(c.q)
		if d := float64(got-c.want) / float64(c.want); d < -0.01 || d > 0.01 {
			t.Errorf("quantile(%v) = %v, want %v ±1%%", c.q, got, c.want)
		}
	}
	for ns := int64(0); ns < 1<<20; ns += 997 {
		mid := int64(bucketMid(bucketOf(ns)))
		if d := float64(mid-ns) / float64(max(ns, 1)); ns > 128 && (d < -0.01 || d > 0.01) {
			t.Fatalf("bucketMid(bucketOf(%d)) = %d", ns, mid)
		}
	}
	if i := bucketOf(1 << 50); i != histogramBuckets-1 {
		t.Errorf("bucketOf(2^50) = %d, want the last bucket", i)
	}
}

func TestLoadBounds(t *testing.T) {
	res := load{workers: 4, maxRequests: 100}.run(context.Background(), func(context.Context, int, int64) error { return nil })
	if res.requests != 100 || res.latency.total != 100 {
		t.Errorf("requests = %d, samples = %d, want 100", res.requests, res.latency.total)
	}
	res = load{workers: 2, maxTime: 50 * time.Millisecond}.run(context.Background(), func(context.Context, int, int64) error {
		time.Sleep(time.Millisecond)
		return nil
	})
	if res.elapsed > time.Second || res.requests == 0 {
		t.Errorf("time-bound load: %d requests in %v", res.requests, res.elapsed)
	}
}

func TestParseNodeCalls(t *testing.T) {
	in := `# HELP caddy_lightning_node_call_duration_seconds Latency
caddy_lightning_node_call_duration_seconds_bucket{method="AddInvoice",le="0.001"} 1
caddy_lightning_node_call_duration_seconds_count{method="AddInvoice"} 12
caddy_lightning_node_call_duration_seconds_count{method="LookupInvoice"} 3
`
	st, err := parseNodeCalls(strings.NewReader(in + `caddy_lightning_node_call_duration_seconds_sum{method="AddInvoice"} 0.6
`))
	c := st.calls
	if err != nil || c["AddInvoice"] != 12 || c["LookupInvoice"] != 3 || c.total() != 15 {
		t.Fatalf("parseNodeCalls = %v, %v", c, err)
	}
	if m := st.mean("AddInvoice"); m < 49*time.Millisecond || m > 51*time.Millisecond {
		t.Errorf("mean = %v, want 50ms", m)
	}
	if d := c.sub(rpcCounts{"AddInvoice": 10, "LookupInvoice": 3}); d.String() != "AddInvoice 2" {
		t.Errorf("sub = %v", d)
	}
	var buf bytes.Buffer
	buf.WriteString(formatCount(1234567.4))
	if buf.String() != "1,234,567" {
		t.Errorf("formatCount = %s", buf.String())
	}
}

func TestPairedRatio(t *testing.T) {
	a := &loadResult{rounds: []float64{90, 50, 95}}
	b := &loadResult{rounds: []float64{100, 100, 100}}
	if q := pairedRatio(a, b); q != 0.9 {
		t.Errorf("pairedRatio = %v, want 0.9", q)
	}
	if q := pairedRatio(a, &loadResult{rounds: []float64{1}}); q != 0 {
		t.Errorf("unpaired rounds: %v, want 0", q)
	}
}
