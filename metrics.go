package lightning

import (
	"errors"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/status"
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
		Help: "Paywall credential checks, by service and result (preimage, settled, unpaid, invalid, none).",
	}, []string{"service", "result"})
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
}

func newPaywallMetrics(service string) paywallMetrics {
	v := func(result string) prometheus.Counter { return verifications.WithLabelValues(service, result) }
	return paywallMetrics{
		service:  service,
		issued:   invoicesIssued.WithLabelValues(service),
		preimage: v("preimage"),
		settled:  v("settled"),
		unpaid:   v("unpaid"),
		invalid:  v("invalid"),
		none:     v("none"),
	}
}

// challenge counts an answer other than admission.
func (m paywallMetrics) challenge(httpStatus int) {
	challenges.WithLabelValues(m.service, strconv.Itoa(httpStatus)).Inc()
}
