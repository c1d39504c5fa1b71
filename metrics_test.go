package lightning

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// metricValue reads one sample from a Prometheus text exposition.
func metricValue(t *testing.T, exposition, name string, labels ...string) float64 {
	t.Helper()
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(line, l) {
				match = false
			}
		}
		if match {
			fields := strings.Fields(line)
			v, _ := strconv.ParseFloat(fields[len(fields)-1], 64)
			return v
		}
	}
	return 0
}

func TestMetrics(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), `	route /paid/* {
		paywall 250 {
			service shop
		}
		respond "content"
	}
	route /v1/lightning/* {
		lightning {
			max_payment 1000
		}
	}
	metrics /metrics`)
	scrape := func() string {
		_, body := get(t, base+"/metrics", nil)
		return body
	}
	before := scrape()

	c := getChallenge(t, base+"/paid/", nil, http.StatusPaymentRequired)
	getChallenge(t, base+"/paid/", auth("L402 bogus:00"), http.StatusUnauthorized)
	preimage := settleAndProve(t, node, c)
	get(t, base+"/paid/", auth(l402Auth(c.Body.Token, preimage)))
	invoice, _ := node.NewPayableInvoice(100)
	post(t, base+"/v1/lightning/payinvoice", map[string]any{"invoice": invoice})

	delta := func(after, name string, labels ...string) float64 {
		return metricValue(t, after, name, labels...) - metricValue(t, before, name, labels...)
	}
	var after string
	deadline := time.Now().Add(10 * time.Second)
	for { // the settlement arrives through the node's invoice stream
		after = scrape()
		if delta(after, "caddy_lightning_invoices_settled_total", `service="shop"`) == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, check := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"caddy_lightning_invoices_issued_total", []string{`service="shop"`}, 2},
		{"caddy_lightning_invoices_settled_total", []string{`service="shop"`}, 1},
		{"caddy_lightning_received_sats_total", []string{`service="shop"`}, 250},
		{"caddy_lightning_paywall_challenges_total", []string{`service="shop"`, `status="402"`}, 1},
		{"caddy_lightning_paywall_challenges_total", []string{`service="shop"`, `status="401"`}, 1},
		{"caddy_lightning_paywall_verifications_total", []string{`service="shop"`, `result="preimage"`}, 1},
		{"caddy_lightning_paywall_verifications_total", []string{`service="shop"`, `result="invalid"`}, 1},
		{"caddy_lightning_paywall_verifications_total", []string{`service="shop"`, `result="none"`}, 1},
		{"caddy_lightning_payments_total", []string{`kind="invoice"`, `result="succeeded"`}, 1},
		{"caddy_lightning_payment_sats_total", []string{`kind="invoice"`, `result="succeeded"`}, 101},
		{"caddy_lightning_node_call_duration_seconds_count", []string{`method="AddInvoice"`}, 2},
		{"caddy_lightning_node_call_duration_seconds_count", []string{`method="SendPaymentV2"`}, 1},
	} {
		if got := delta(after, check.name, check.labels...); got != check.want {
			t.Errorf("%s%v grew by %v, want %v", check.name, check.labels, got, check.want)
		}
	}
	if m := regexp.MustCompile(`(?m)^caddy_lightning_.*`).FindAllString(after, -1); len(m) < 10 {
		t.Errorf("few lightning metrics exposed: %v", m)
	}
}
