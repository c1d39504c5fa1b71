package lightning

import (
	"context"
	"encoding/hex"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/lightningcaddy/caddy-lightning/lnd"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// permissionLogs runs the startup permission check of an app on node with
// the macaroon of kind, configured with a paywall and a lightning handler
// (that can pay if payments), and returns what it logged.
func permissionLogs(t *testing.T, node *lndtest.Node, kind string, payments bool) []observer.LoggedEntry {
	t.Helper()
	return permissionLogsWith(t, node, kind, payments, &Paywall{})
}

// permissionLogsWith is permissionLogs with the given paywall.
func permissionLogsWith(t *testing.T, node *lndtest.Node, kind string, payments bool, paywall *Paywall) []observer.LoggedEntry {
	t.Helper()
	mac, err := hex.DecodeString(node.MacaroonHexFor(kind))
	if err != nil {
		t.Fatal(err)
	}
	client, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), Macaroon: mac})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	a := &App{client: client, logger: zap.New(core), paywalls: &paywallList{list: []*Paywall{paywall}}, uses: new(nodeUses)}
	a.useAPI(payments)
	a.checkPermissions(context.Background())
	return logs.AllUntimed()
}

// logLine finds the entry whose message starts with prefix.
func logLine(logs []observer.LoggedEntry, prefix string) (observer.LoggedEntry, bool) {
	for _, e := range logs {
		if strings.HasPrefix(e.Message, prefix) {
			return e, true
		}
	}
	return observer.LoggedEntry{}, false
}

func TestPermissionCheckAdmin(t *testing.T) {
	logs := permissionLogs(t, lndtest.Start(t), "admin", true)
	if len(logs) != 1 {
		t.Fatalf("logged %v, want only the summary", logs)
	}
	summary := logs[0]
	if summary.Level != zapcore.InfoLevel || summary.Message != "lnd macaroon permissions checked" ||
		summary.ContextMap()["source"] != "lnd (CheckMacaroonPermissions)" {
		t.Errorf("summary = %s %q %v", summary.Level, summary.Message, summary.ContextMap())
	}
	permitted := summary.ContextMap()["permitted"]
	for _, use := range []string{"paywall", "generateinvoice", "checkinvoice", "route_hints auto", "payinvoice and keysend", "admin status"} {
		if !strings.Contains(strings.Join(toStrings(permitted), ","), use) {
			t.Errorf("%q not permitted: %v", use, permitted)
		}
	}
}

// With lnd's invoice.macaroon the paywall and the invoice calls work;
// payments and the status's node details do not, and the log says so,
// with permissions read from the macaroon (it may not ask lnd).
func TestPermissionCheckInvoiceMacaroon(t *testing.T) {
	node := lndtest.Start(t)
	logs := permissionLogs(t, node, "invoice", true)
	pay, ok := logLine(logs, "payinvoice and keysend: the lnd macaroon lacks info:read offchain:read offchain:write")
	if !ok || pay.Level != zapcore.ErrorLevel {
		t.Errorf("no error for payments in %v", logs)
	}
	hints, ok := logLine(logs, "route_hints auto: the lnd macaroon lacks offchain:read")
	if !ok || hints.Level != zapcore.WarnLevel {
		t.Errorf("no warning for route hints in %v", logs)
	}
	status, ok := logLine(logs, "admin status: the lnd macaroon lacks info:read")
	if !ok || status.Level != zapcore.WarnLevel {
		t.Errorf("no warning for the admin status in %v", logs)
	}
	summary, ok := logLine(logs, "lnd macaroon permissions checked")
	if !ok {
		t.Fatalf("no summary in %v", logs)
	}
	fields := summary.ContextMap()
	if !strings.HasPrefix(fields["source"].(string), "the macaroon's identifier") || !strings.Contains(fields["source"].(string), "lacks macaroon:read") {
		t.Errorf("source = %q", fields["source"])
	}
	if got := strings.Join(toStrings(fields["permitted"]), ","); got != "paywall,generateinvoice,checkinvoice" {
		t.Errorf("permitted = %s", got)
	}
	if fields["bake"] != "lncli bakemacaroon info:read invoices:read invoices:write offchain:read offchain:write" {
		t.Errorf("bake = %q", fields["bake"])
	}
	for _, e := range logs {
		if strings.HasPrefix(e.Message, "paywall") || strings.HasPrefix(e.Message, "generateinvoice") || strings.HasPrefix(e.Message, "checkinvoice") {
			t.Errorf("unexpected complaint: %s", e.Message)
		}
	}
}

// A macaroon lnd rejects is reported as such.
func TestPermissionCheckRejected(t *testing.T) {
	node, stranger := lndtest.Start(t), lndtest.Start(t)
	mac, _ := hex.DecodeString(stranger.MacaroonHex())
	client, err := lnd.New(lnd.Config{Address: node.Addr(), TLSCert: node.TLSCertPEM(), Macaroon: mac})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	core, logs := observer.New(zapcore.DebugLevel)
	a := &App{client: client, logger: zap.New(core), paywalls: new(paywallList), uses: new(nodeUses)}
	a.checkPermissions(context.Background())
	if e, ok := logLine(logs.AllUntimed(), "cannot check the lnd macaroon's permissions"); !ok || e.Level != zapcore.ErrorLevel {
		t.Errorf("logged %v", logs.AllUntimed())
	}
}

func toStrings(v any) []string {
	switch v := v.(type) {
	case []string:
		return v
	case []any:
		var s []string
		for _, x := range v {
			s = append(s, x.(string))
		}
		return s
	}
	return nil
}
