package lightning

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"

	"github.com/lightningcaddy/caddy-lightning/ledger"
)

// Prometheus collectors. They are created once and registered into each
// config's metrics registry, so they count across config reloads.
var (
	invoicesIssued = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "invoices_issued_total",
		Help: "Invoices issued, by paywall service (lightning_api for the API's generateinvoice).",
	}, []string{"service"})
	invoicesSettled = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "invoices_settled_total",
		Help: "Invoices issued by this Caddy and settled, by paywall service.",
	}, []string{"service"})
	satsReceived = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "received_sats_total",
		Help: "Satoshis received on settled invoices, by paywall service.",
	}, []string{"service"})
	challenges = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_challenges_total",
		Help: "Paywall answers other than admission, by service and HTTP status (402, 401, 403, 429, 500, 503, 504).",
	}, []string{"service", "status"})
	verifications = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_verifications_total",
		Help: "Paywall credential checks, by service and result (preimage, settled, unpaid, invalid, none; " +
			"used: a per_request payment presented again; exhausted: a balance short of the price; underpaid: a credential paid less than the price).",
	}, []string{"service", "result"})
	admittedRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_admitted_total",
		Help: "Requests the paywalls admitted, by service and mode (pass, per_request, prepaid).",
	}, []string{"service", "mode"})
	dialectRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_dialect_total",
		Help: "Credentials by service, dialect (l402, charge, x402, session) and result (admitted; used: a payment redeemed before, under any dialect; refused: invalid, unpaid or for another route or price).",
	}, []string{"service", "dialect", "result"})
	balanceDraws = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_balance_draws_total",
		Help: "Charges to prepaid balances (a price drawn at admission, or a reported cost charged when the answer ended), by service.",
	}, []string{"service"})
	drawnSats = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_drawn_sats_total",
		Help: "Satoshis charged to prepaid balances, by service.",
	}, []string{"service"})
	creditedSats = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_credited_sats_total",
		Help: "Satoshis credited to prepaid balances (once per payment), by service.",
	}, []string{"service"})
	reportedCosts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_reported_costs_total",
		Help: "Answers whose cost the upstream reports, by service and outcome (reported, capped, missing: the price charged, invalid: max_cost charged, free: 5xx or aborted).",
	}, []string{"service", "outcome"})
	reportedCostSats = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "paywall_reported_cost_sats_total",
		Help: "Satoshis charged for answers whose cost the upstream reports, by service.",
	}, []string{"service"})
	ledgerErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "ledger_errors_total",
		Help: "Failed ledger operations, by backend (embedded, redis) and kind (unavailable, corrupt, other).",
	}, []string{"backend", "kind"})
	payments = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "payments_total",
		Help: "Outgoing payments, by kind (invoice, keysend) and result (succeeded, repeated, failed, refused, unknown).",
	}, []string{"kind", "result"})
	paymentSats = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "payment_sats_total",
		Help: "Satoshis of succeeded outgoing payments, fees included, by kind and result.",
	}, []string{"kind", "result"})
	nodeCallSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "node_call_duration_seconds",
		Help:    "Latency of calls to the LND node, by RPC method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"method"})
	nodeCallErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "caddy", Subsystem: "lightning", Name: "node_call_errors_total",
		Help: "Failed calls to the LND node, by RPC method and gRPC code.",
	}, []string{"method", "code"})
)

// registerMetrics adds the collectors to a config's registry.
func registerMetrics(registry *prometheus.Registry) error {
	if registry == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{
		invoicesIssued, invoicesSettled, satsReceived, challenges, verifications,
		admittedRequests, dialectRequests, balanceDraws, drawnSats, creditedSats, reportedCosts, reportedCostSats, ledgerErrors,
		payments, paymentSats, nodeCallSeconds, nodeCallErrors,
	} {
		var already prometheus.AlreadyRegisteredError
		if err := registry.Register(c); err != nil && !errors.As(err, &already) {
			return err
		}
	}
	return nil
}

// observeNodeCall records one call to the node.
func observeNodeCall(method string, took time.Duration, err error) {
	nodeCallSeconds.WithLabelValues(method).Observe(took.Seconds())
	if err != nil {
		nodeCallErrors.WithLabelValues(method, status.Code(err).String()).Inc()
	}
}

// paywallMetrics are one paywall's counters, resolved once so the request
// path does no label lookups.
type paywallMetrics struct {
	service                                  string
	issued                                   prometheus.Counter
	preimage, settled, unpaid, invalid, none prometheus.Counter
	used, exhausted, underpaid               prometheus.Counter
	admitted                                 prometheus.Counter
	draws, drawnSats, creditedSats           prometheus.Counter
	reportedSats                             prometheus.Counter
	reportedBy                               map[string]prometheus.Counter    // by outcome
	byDialect                                map[[2]string]prometheus.Counter // by dialect and result
}

// Results of a credential, by dialect (paywall_dialect_total).
const (
	resultAdmitted = "admitted"
	resultUsed     = "used"
	resultRefused  = "refused"
)

func newPaywallMetrics(service, mode string) paywallMetrics {
	v := func(result string) prometheus.Counter { return verifications.WithLabelValues(service, result) }
	m := paywallMetrics{
		service:      service,
		issued:       invoicesIssued.WithLabelValues(service),
		preimage:     v("preimage"),
		settled:      v("settled"),
		unpaid:       v("unpaid"),
		invalid:      v("invalid"),
		none:         v("none"),
		used:         v("used"),
		exhausted:    v("exhausted"),
		underpaid:    v("underpaid"),
		admitted:     admittedRequests.WithLabelValues(service, mode),
		draws:        balanceDraws.WithLabelValues(service),
		drawnSats:    drawnSats.WithLabelValues(service),
		creditedSats: creditedSats.WithLabelValues(service),
		reportedSats: reportedCostSats.WithLabelValues(service),
		reportedBy:   map[string]prometheus.Counter{},
	}
	for _, outcome := range []string{"reported", "capped", "missing", "invalid", "free"} {
		m.reportedBy[outcome] = reportedCosts.WithLabelValues(service, outcome)
	}
	m.byDialect = map[[2]string]prometheus.Counter{}
	for _, d := range []string{offerL402, offerCharge, offerX402, dialectSession} {
		for _, result := range []string{resultAdmitted, resultUsed, resultRefused} {
			m.byDialect[[2]string{d, result}] = dialectRequests.WithLabelValues(service, d, result)
		}
	}
	return m
}

// dialect counts a credential of dialect with its result.
func (m paywallMetrics) dialect(dialect, result string) {
	m.byDialect[[2]string{dialect, result}].Inc()
}

// refused counts a refused credential of dialect.
func (m paywallMetrics) refused(dialect string) {
	m.invalid.Inc()
	m.dialect(dialect, resultRefused)
}

// challenge counts an answer other than admission.
func (m paywallMetrics) challenge(httpStatus int) {
	challenges.WithLabelValues(m.service, strconv.Itoa(httpStatus)).Inc()
}

// reported counts a reported cost charged.
func (m paywallMetrics) reported(outcome string, cost int64) {
	m.reportedBy[outcome].Inc()
	if cost > 0 {
		m.draws.Inc()
		m.drawnSats.Add(float64(cost))
		m.reportedSats.Add(float64(cost))
	}
}

// countLedgerError counts a failed ledger operation.
func countLedgerError(backend string, err error) {
	kind := "other"
	switch {
	case errors.Is(err, ledger.ErrUnavailable):
		kind = "unavailable"
	case errors.Is(err, ledger.ErrCorrupt):
		kind = "corrupt"
	}
	ledgerErrors.WithLabelValues(backend, kind).Inc()
}
