package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
	caddyfmt "github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc"

	"github.com/lightningcaddy/caddy-lightning/internal/caddyrun"
	"github.com/lightningcaddy/caddy-lightning/internal/regtest"
)

// upstreamBodySize is the size of the upstream's answer.
const upstreamBodySize = 1024

// Settings of the paywall under test.
const (
	paywallPrice   = 10
	paywallService = "bench"
	invoiceExpiry  = 10 * time.Minute // the paywall's default invoice_expiry
)

// upstream is the content server behind both /plain/ and /paid/: a fixed
// 1 KiB answer, as cheap as an HTTP server gets.
type upstream struct {
	addr   string
	server *http.Server
}

// startUpstream serves the fixed body on a free loopback port.
func startUpstream() (*upstream, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("start upstream: %w", err)
	}
	body := bytes.Repeat([]byte("x"), upstreamBodySize)
	u := &upstream{addr: l.Addr().String()}
	u.server = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "1024")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = u.server.Serve(l) }() // returns http.ErrServerClosed on stop
	return u, nil
}

// stop shuts the upstream down.
func (u *upstream) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := u.server.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("stop upstream: %w", err)
	}
	return nil
}

// Services and prices of the selling paywalls under test: a pass seeing a
// fresh credential on every request (the baseline of per_request), one
// payment per request, and a prepaid balance at 1 sat a request.
const (
	freshService    = "fresh"
	onceService     = "once"
	balanceService  = "bal"
	balancePrice    = 1
	balanceSold     = 2000 // sats one prepaid payment buys
	perRequestPrice = paywallPrice
)

// caddyfile is the configuration under test: the same upstream behind
// /plain/ (the baseline) and behind paywalls (rate limits off): /paid/ and
// /fresh/ (passes), /once/ (per_request) and /bal/ (prepaid), the
// Lightning API and the metrics. ledger is the lightning app's ledger
// block ("" for the embedded default). Caddy's logs go to logPath, not
// stdout.
func caddyfile(dir, logPath string, port int, alice *regtest.Node, up string, rootKey []byte, ledger string) string {
	key := hex.EncodeToString(rootKey)
	paywall := func(path, settings string) string {
		return fmt.Sprintf(`	route %s {
		paywall {
%s
			root_key %s
			invoices_per_client off
			invoices_total off
		}
		reverse_proxy %s
	}
`, path, settings, key, up)
	}
	// Caddy warns about (and caddyrun refuses) unformatted input.
	return string(caddyfmt.Format([]byte(fmt.Sprintf(`{
	admin off
	persist_config off
	default_bind 127.0.0.1
	grace_period 2s
	storage file_system %s
	log default {
		output file %s
		format json
	}
	lightning {
		lnd {
			address %s
			tls_cert %s
			macaroon %s
		}
%s
	}
}

http://127.0.0.1:%d {
	route /plain/* {
		reverse_proxy %s
	}
%s%s%s%s	route /v1/lightning/* {
		lightning
	}
	metrics /metrics
}
`, quote(filepath.Join(dir, "caddy")), quote(logPath),
		alice.GRPCAddr, quote(alice.TLSCertPath), quote(alice.MacaroonPath), ledger,
		port, up,
		paywall("/paid/*", fmt.Sprintf("\t\t\tprice %d\n\t\t\tservice %s", paywallPrice, paywallService)),
		paywall("/fresh/*", fmt.Sprintf("\t\t\tprice %d\n\t\t\tservice %s", paywallPrice, freshService)),
		paywall("/once/*", fmt.Sprintf("\t\t\tprice %d\n\t\t\tmode per_request\n\t\t\tservice %s", perRequestPrice, onceService)),
		paywall("/bal/*", fmt.Sprintf("\t\t\tprice %d\n\t\t\tmode prepaid\n\t\t\tbalance %d\n\t\t\tservice %s", balancePrice, balanceSold, balanceService))))))
}

// quote makes s one Caddyfile token.
func quote(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `\"`) + `"`
}

// startCaddy loads the configuration in this process. Caddy's default
// logger buffers until the config opens its log file; if loading fails,
// the buffered logs go to stderr.
func startCaddy(config string) error {
	_, stderrLogger, _ := caddy.BufferedLog()
	if err := caddyrun.Load(config); err != nil {
		caddy.UnbufferDefaultLogger(stderrLogger)
		return fmt.Errorf("start Caddy: %w", err)
	}
	return nil
}

// alice is a direct gRPC client of the node behind Caddy, for what the
// benchmark does without Caddy: creating invoices.
type alice struct {
	conn *grpc.ClientConn
	ln   lnrpc.LightningClient
}

// dialAlice connects to alice with the admin macaroon.
func dialAlice(ctx context.Context, node *regtest.Node) (*alice, error) {
	conn, err := node.Dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to alice: %w", err)
	}
	return &alice{conn: conn, ln: lnrpc.NewLightningClient(conn)}, nil
}

// addInvoice creates an invoice like the paywall's: its price, a memo of
// the same length and its expiry.
func (a *alice) addInvoice(ctx context.Context, memo string) (*lnrpc.AddInvoiceResponse, error) {
	resp, err := a.ln.AddInvoice(ctx, &lnrpc.Invoice{
		Value:  paywallPrice,
		Memo:   memo,
		Expiry: int64(invoiceExpiry / time.Second),
	})
	if err != nil {
		return nil, fmt.Errorf("alice: add invoice: %w", err)
	}
	return resp, nil
}

func (a *alice) close() error {
	return a.conn.Close()
}
