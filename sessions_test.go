package lightning

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"go.uber.org/zap/zapcore"

	"github.com/lightningcaddy/caddy-lightning/internal/redistest"
	"github.com/lightningcaddy/caddy-lightning/ledger"
	"github.com/lightningcaddy/caddy-lightning/ledger/ledgertest"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
	mpp "github.com/lightningcaddy/caddy-lightning/payment"
)

// sessionSite is a route /s/* selling sessions at 10 sats a request with
// deposits of 100, and the upstream that echoes what it sees.
func sessionSite(sessionOptions string) string {
	return fmt.Sprintf("\troute /s/* {\n\t\tpaywall 10 {\n\t\t\tservice s\n\t\t\tsession {\n\t\t\t\tdeposit 100\n%s\t\t\t}\n\t\t}\n\t\t%s\n\t}\n\trespond \"free\"",
		sessionOptions, upstream)
}

// sessionChallenge gets a 402 at url and returns its session challenge.
func sessionChallenge(t testing.TB, url string) mpp.Challenge {
	t.Helper()
	resp, body := fetch(t, url, http.Header{"Accept": {"application/json"}})
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("status %d, want 402: %s", resp.StatusCode, body)
	}
	return sessionChallengeOf(t, resp.Header)
}

func sessionChallengeOf(t testing.TB, h http.Header) mpp.Challenge {
	t.Helper()
	for _, c := range mpp.ParseChallenges(h.Values("WWW-Authenticate")) {
		if c.Intent == mpp.IntentSession {
			return c
		}
	}
	t.Fatalf("no session challenge in %q", h.Values("WWW-Authenticate"))
	return mpp.Challenge{}
}

// payDeposit settles the challenge's deposit invoice on the fake node and
// returns its preimage.
func payDeposit(t testing.TB, node *lndtest.Node, c mpp.Challenge) [32]byte {
	t.Helper()
	req, err := mpp.DecodeSessionRequest(c.Request)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Settle(req.PaymentHash); err != nil {
		t.Fatal(err)
	}
	inv, err := lnrpc.NewLightningClient(node.Dial(t)).LookupInvoice(context.Background(), &lnrpc.PaymentHash{RHash: req.PaymentHash[:]})
	if err != nil {
		t.Fatal(err)
	}
	var preimage [32]byte
	copy(preimage[:], inv.RPreimage)
	return preimage
}

// fetch GETs url with header.
func fetch(t testing.TB, url string, header http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = header
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// sessionAuth is the Authorization header of a session credential.
func sessionAuth(t testing.TB, c mpp.Challenge, p mpp.SessionPayload) http.Header {
	t.Helper()
	payload, err := mpp.SessionPayloadJSON(p)
	if err != nil {
		t.Fatal(err)
	}
	cred := mpp.Credential{Challenge: c, Payload: payload}
	v, err := cred.Format()
	if err != nil {
		t.Fatal(err)
	}
	return auth(v)
}

// openedSession is a session a test opened: its id, the deposit's
// preimage (the bearer secret) and a challenge to echo.
type openedSession struct {
	id, preimage [32]byte
	echo         mpp.Challenge
}

func (s openedSession) auth(t testing.TB, action string) http.Header {
	return sessionAuth(t, s.echo, mpp.SessionPayload{Action: action, SessionID: s.id, Preimage: s.preimage})
}

// openSession opens a session at url, with a fresh return invoice of the
// fake node's peer, and checks that the open was served.
func openSession(t testing.TB, node *lndtest.Node, url string) (openedSession, string) {
	t.Helper()
	c := sessionChallenge(t, url)
	preimage := payDeposit(t, node, c)
	ret, _ := node.NewPayableInvoice(0, lndtest.InvoiceExpiry(24*time.Hour))
	resp, body := fetch(t, url, sessionAuth(t, c, mpp.SessionPayload{Action: mpp.ActionOpen, Preimage: preimage, ReturnInvoice: ret}))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(body, "paid 10 s") {
		t.Fatalf("open: %d %s", resp.StatusCode, body)
	}
	req, _ := mpp.DecodeSessionRequest(c.Request)
	return openedSession{id: req.PaymentHash, preimage: preimage, echo: c}, ret
}

// closeAnswer is the body of a close.
type closeAnswer struct {
	Status       string `json:"status"`
	RefundSats   int64  `json:"refundSats"`
	RefundStatus string `json:"refundStatus"`
}

func closeSession(t *testing.T, url string, s openedSession) (int, closeAnswer, http.Header) {
	t.Helper()
	resp, body := get(t, url, s.auth(t, mpp.ActionClose))
	var a closeAnswer
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal([]byte(body), &a); err != nil {
			t.Fatalf("close answer %q: %v", body, err)
		}
	}
	return resp.StatusCode, a, resp.Header
}

// refunds lists the fake node's payments.
func refunds(node *lndtest.Node) []lndtest.PaymentRecord { return node.Payments() }

// sessionState reads a session from the running ledger.
func sessionState(t *testing.T, service string, id [32]byte) ledger.Session {
	t.Helper()
	p := &Paywall{service: service}
	s, err := runningLedger(t).sessionLedger().Session(context.Background(), p.sessionAccount(id).String())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSessionLifecycle: a session opened with a deposit of 100 serves the
// open and three bearer requests at 10 sats each, takes a top-up of 100,
// and its close refunds exactly 200 - 40 to the return invoice, once; a
// second close and a later bearer request pay and admit nothing. The
// upstream never sees the credential; every success carries a receipt.
func TestSessionLifecycle(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), sessionSite(""))
	url := base + "/s/"
	admittedBefore, usedBefore := dialectCount(t, "s", dialectSession, resultAdmitted), dialectCount(t, "s", dialectSession, resultUsed)
	s, _ := openSession(t, node, url)
	for i := range 3 {
		resp, body := get(t, url, s.auth(t, mpp.ActionBearer))
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "auth=[]") {
			t.Fatalf("bearer %d: %d %s", i, resp.StatusCode, body)
		}
		if want := fmt.Sprint(80 - 10*i); resp.Header.Get(balanceHeader) != want {
			t.Errorf("bearer %d: balance %q, want %s", i, resp.Header.Get(balanceHeader), want)
		}
		rc, err := mpp.ParseReceipt(resp.Header.Get(mpp.ReceiptHeader))
		if err != nil || rc.Reference != fmt.Sprintf("%x", s.id) || rc.Method != "lightning" {
			t.Errorf("bearer receipt %+v %v", rc, err)
		}
	}
	topUp := sessionChallenge(t, url)
	topUpPreimage := payDeposit(t, node, topUp)
	h := sessionAuth(t, topUp, mpp.SessionPayload{Action: mpp.ActionTopUp, SessionID: s.id, Preimage: topUpPreimage})
	if resp, body := get(t, url, h); resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != `{"status":"ok"}` {
		t.Fatalf("top-up: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get(t, url, h); resp.StatusCode != http.StatusPaymentRequired {
		t.Errorf("the same top-up again: %d, want 402", resp.StatusCode)
	}
	if got := sessionState(t, "s", s.id); got.Deposit != 200 || got.Spent != 40 {
		t.Fatalf("before the close: %+v", got)
	}
	if admitted, used := dialectCount(t, "s", dialectSession, resultAdmitted)-admittedBefore, dialectCount(t, "s", dialectSession, resultUsed)-usedBefore; admitted != 4 || used != 1 {
		t.Errorf("paywall_dialect_total{dialect=session}: admitted %v, used %v; want 4 (open and 3 bearers) and 1 (the top-up again)", admitted, used)
	}

	code, a, hdr := closeSession(t, url, s)
	if code != http.StatusOK || a != (closeAnswer{"closed", 160, "succeeded"}) {
		t.Fatalf("close: %d %+v", code, a)
	}
	rc, err := mpp.ParseReceipt(hdr.Get(mpp.ReceiptHeader))
	if err != nil || rc.RefundStatus != "succeeded" || rc.RefundSats != 160 {
		t.Errorf("close receipt %+v %v", rc, err)
	}
	paid := refunds(node)
	if len(paid) != 1 || paid[0].ValueSat != 160 || paid[0].Status != lnrpc.Payment_SUCCEEDED || paid[0].Attempts != 1 {
		t.Fatalf("node payments after the close: %+v", paid)
	}
	if code, _, _ := closeSession(t, url, s); code != http.StatusPaymentRequired {
		t.Errorf("second close: %d, want 402", code)
	}
	resp, body := get(t, url, s.auth(t, mpp.ActionBearer))
	if resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "session-closed") {
		t.Errorf("bearer after the close: %d %s", resp.StatusCode, body)
	}
	if paid := refunds(node); len(paid) != 1 || paid[0].Attempts != 1 {
		t.Errorf("node payments after a second close: %+v", paid)
	}
	if st := sessionState(t, "s", s.id); st.RefundStatus != ledger.RefundSucceeded || st.Refund != 160 {
		t.Errorf("ledger after the close: %+v", st)
	}
}

// TestSessionOffer: the session challenge comes after the L402 lines (so
// clients that take the first line, such as Alby's fetch402 and lnget, find
// L402 as before), on 401s too; a paywall without a session block offers
// none and takes Payment credentials for nothing.
func TestSessionOffer(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), sessionSite("")+"\n\troute /plain/* {\n\t\tpaywall 10\n\t\t"+upstream+"\n\t}")
	for _, h := range []http.Header{nil, auth("L402 bogus:00")} {
		resp, _ := get(t, base+"/s/", h)
		lines := resp.Header.Values("WWW-Authenticate")
		if len(lines) != 3 || !strings.HasPrefix(lines[0], "LSAT ") || !strings.HasPrefix(lines[1], "L402 ") || !strings.HasPrefix(lines[2], "Payment ") {
			t.Errorf("%d: WWW-Authenticate %q", resp.StatusCode, lines)
		}
	}
	s, _ := openSession(t, node, base+"/s/")
	resp, body := get(t, base+"/plain/", s.auth(t, mpp.ActionBearer))
	if resp.StatusCode != http.StatusPaymentRequired || strings.HasPrefix(body, "paid") {
		t.Errorf("a session credential at a paywall without sessions: %d %s", resp.StatusCode, body)
	}
	for _, v := range resp.Header.Values("WWW-Authenticate") {
		if strings.HasPrefix(v, "Payment") {
			t.Errorf("a paywall without sessions offers one: %s", v)
		}
	}
}

// TestSessionRefundFailed: a refund that fails for certain is recorded as
// failed, once: the close says so, and a second close pays nothing.
func TestSessionRefundFailed(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), sessionSite(""))
	s, _ := openSession(t, node, base+"/s/")
	node.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NO_ROUTE)
	code, a, _ := closeSession(t, base+"/s/", s)
	if code != http.StatusOK || a != (closeAnswer{"closed", 90, "failed"}) {
		t.Fatalf("close: %d %+v", code, a)
	}
	node.SetPaymentFailure(lnrpc.PaymentFailureReason_FAILURE_REASON_NONE)
	if code, _, _ := closeSession(t, base+"/s/", s); code != http.StatusPaymentRequired {
		t.Errorf("second close: %d", code)
	}
	if paid := refunds(node); len(paid) != 1 || paid[0].Status != lnrpc.Payment_FAILED || paid[0].Attempts != 1 {
		t.Errorf("node payments: %+v", paid)
	}
	if st := sessionState(t, "s", s.id); st.RefundStatus != ledger.RefundFailed {
		t.Errorf("ledger: %+v", st)
	}
}

// TestSessionRefundFeeLimit: a refund goes out with refund_fee_limit as its
// fee limit: a route dearer than it fails the refund, a cheaper one pays
// it, the client getting the refund in full.
func TestSessionRefundFeeLimit(t *testing.T) {
	node := lndtest.Start(t, lndtest.WithRouteFee(3000))
	base := startCaddy(t, lndOption(node), sessionSite("\t\t\t\trefund_fee_limit 2\n")+"\n"+
		strings.ReplaceAll(strings.ReplaceAll(sessionSite("\t\t\t\trefund_fee_limit 3\n"), "/s/*", "/s3/*"), "service s\n", "service s3\n"))
	s, _ := openSession(t, node, base+"/s/")
	if code, a, _ := closeSession(t, base+"/s/", s); code != http.StatusOK || a.RefundStatus != "failed" {
		t.Errorf("refund over its fee limit: %d %+v", code, a)
	}
	s3, _ := openSession(t, node, base+"/s3/")
	if code, a, _ := closeSession(t, base+"/s3/", s3); code != http.StatusOK || a != (closeAnswer{"closed", 90, "succeeded"}) {
		t.Errorf("refund within its fee limit: %d %+v", code, a)
	}
	paid := refunds(node)
	if len(paid) != 2 || paid[0].Status != lnrpc.Payment_FAILED || paid[1].ValueSat != 90 || paid[1].FeeSat != 3 {
		t.Errorf("node payments: %+v", paid)
	}
}

// TestSessionRefundRetried: a refund that could not be sent (the node was
// down) stays owed: the app's closer pays it once the node is back, once.
func TestSessionRefundRetried(t *testing.T) {
	shortSweeps(t)
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), sessionSite(""))
	s, _ := openSession(t, node, base+"/s/")
	node.SetError("SendPaymentV2", status.Error(codes.Unavailable, "lndtest: the router is not taking payments"))
	code, a, _ := closeSession(t, base+"/s/", s)
	if code != http.StatusOK || a != (closeAnswer{"closed", 90, "pending"}) {
		t.Fatalf("close with the node refusing: %d %+v", code, a)
	}
	node.SetError("SendPaymentV2", nil)
	waitFor(t, "the refund", func() bool {
		return sessionStateNow(t, "s", s.id).RefundStatus == ledger.RefundSucceeded
	})
	if paid := refunds(node); len(paid) != 1 || paid[0].ValueSat != 90 || paid[0].Attempts != 1 {
		t.Errorf("node payments: %+v", paid)
	}
}

// TestSessionRefundUnknown: the node stops while the refund is in flight;
// the close answers pending, and once the node is back the closer learns
// that the payment succeeded and books it, without paying again.
func TestSessionRefundUnknown(t *testing.T) {
	shortSweeps(t)
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), sessionSite(""))
	s, _ := openSession(t, node, base+"/s/")
	node.SetPaymentLatency(500 * time.Millisecond)
	type result struct {
		code int
		a    closeAnswer
	}
	done := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/s/", nil)
		req.Header = s.auth(t, mpp.ActionClose)
		var r result
		if resp, err := http.DefaultClient.Do(req); err == nil {
			r.code = resp.StatusCode
			_ = json.NewDecoder(resp.Body).Decode(&r.a)
			resp.Body.Close()
		}
		done <- r
	}()
	waitFor(t, "the refund in flight", func() bool {
		paid := refunds(node)
		return len(paid) == 1 && paid[0].Status == lnrpc.Payment_IN_FLIGHT
	})
	node.Stop()
	r := <-done
	if r.code != http.StatusOK || r.a != (closeAnswer{"closed", 90, "pending"}) {
		t.Fatalf("close with the node gone: %+v", r)
	}
	if err := node.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the refund booked", func() bool {
		return sessionStateNow(t, "s", s.id).RefundStatus == ledger.RefundSucceeded
	})
	if paid := refunds(node); len(paid) != 1 || paid[0].ValueSat != 90 || paid[0].Attempts != 1 {
		t.Errorf("node payments: %+v", paid)
	}
}

// TestSessionIdleClose: a session unused for its idle timeout is closed
// and refunded by the app's closer.
func TestSessionIdleClose(t *testing.T) {
	shortSweeps(t)
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), sessionSite("\t\t\t\tidle_timeout 1s\n"))
	s, _ := openSession(t, node, base+"/s/")
	waitFor(t, "the idle close", func() bool {
		paid := refunds(node)
		return len(paid) == 1 && paid[0].Status == lnrpc.Payment_SUCCEEDED
	})
	if paid := refunds(node); paid[0].ValueSat != 90 {
		t.Errorf("refund %+v, want 90", paid[0])
	}
	if resp, body := get(t, base+"/s/", s.auth(t, mpp.ActionBearer)); resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "session-closed") {
		t.Errorf("bearer after the idle close: %d %s", resp.StatusCode, body)
	}
}

// TestSessionAcrossRestart: a session outlives a restart of Caddy, with
// the embedded ledger and with Redis: its balance is what it was, and the
// close refunds exactly what is left.
func TestSessionAcrossRestart(t *testing.T) {
	for _, backend := range []string{"embedded", "redis"} {
		t.Run(backend, func(t *testing.T) {
			node := lndtest.Start(t)
			options := lndOption(node)
			if backend == "redis" {
				srv := redistest.Start(t, redistest.Options{})
				options = lndOptionWith(node, fmt.Sprintf("\n\t\tledger redis {\n\t\t\turl %s\n\t\t}", srv.URL))
			}
			storage, port := t.TempDir(), freePort(t)
			url := fmt.Sprintf("http://127.0.0.1:%d/s/", port)
			loadCaddyfile(t, testCaddyfile("off", storage, options, port, sessionSite("")))
			t.Cleanup(func() { _ = caddy.Stop() })
			s, _ := openSession(t, node, url)
			get(t, url, s.auth(t, mpp.ActionBearer))
			if err := caddy.Stop(); err != nil {
				t.Fatal(err)
			}
			loadCaddyfile(t, testCaddyfile("off", storage, options, port, sessionSite("")))
			http.DefaultClient.CloseIdleConnections()
			if resp, _ := get(t, url, s.auth(t, mpp.ActionBearer)); resp.StatusCode != http.StatusOK || resp.Header.Get(balanceHeader) != "70" {
				t.Fatalf("after the restart: %d, balance %q, want 70", resp.StatusCode, resp.Header.Get(balanceHeader))
			}
			code, a, _ := closeSession(t, url, s)
			if code != http.StatusOK || a != (closeAnswer{"closed", 70, "succeeded"}) {
				t.Fatalf("close: %d %+v", code, a)
			}
			if paid := refunds(node); len(paid) != 1 || paid[0].ValueSat != 70 {
				t.Errorf("node payments: %+v", paid)
			}
		})
	}
}

// TestSessionRefundAfterCrash: a close noted in storage whose refund was
// never sent (Caddy stopped between the two) is refunded by the next
// run's closer, once.
func TestSessionRefundAfterCrash(t *testing.T) {
	node := lndtest.Start(t)
	storage, port := t.TempDir(), freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/s/", port)
	loadCaddyfile(t, testCaddyfile("off", storage, lndOption(node), port, sessionSite("")))
	t.Cleanup(func() { _ = caddy.Stop() })
	s, _ := openSession(t, node, url)
	// What close does before it pays: the note, then the ledger's close.
	id := (&Paywall{service: "s"}).sessionAccount(s.id).String()
	if err := os.MkdirAll(filepath.Join(storage, refundsPrefix), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(storage, refundsPrefix, id), []byte(id), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runningLedger(t).sessionLedger().CloseSession(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	if err := caddy.Stop(); err != nil {
		t.Fatal(err)
	}
	if len(refunds(node)) != 0 {
		t.Fatal("paid before the restart")
	}
	shortSweeps(t)
	loadCaddyfile(t, testCaddyfile("off", storage, lndOption(node), port, sessionSite("")))
	waitFor(t, "the refund after the restart, and its note gone", func() bool {
		_, err := os.Stat(filepath.Join(storage, refundsPrefix, id))
		return os.IsNotExist(err)
	})
	if st := sessionStateNow(t, "s", s.id); st.RefundStatus != ledger.RefundSucceeded {
		t.Errorf("ledger: %+v", st)
	}
	if paid := refunds(node); len(paid) != 1 || paid[0].ValueSat != 90 || paid[0].Attempts != 1 {
		t.Errorf("node payments: %+v", paid)
	}
}

// shortSweeps makes the session closer look every 20 ms.
func shortSweeps(t *testing.T) {
	old := sessionSweepInterval
	sessionSweepInterval = 20 * time.Millisecond
	t.Cleanup(func() { sessionSweepInterval = old })
}

// sessionStateNow reads a session, or the zero state if it cannot yet.
func sessionStateNow(t *testing.T, service string, id [32]byte) ledger.Session {
	t.Helper()
	p := &Paywall{service: service}
	app, err := caddy.ActiveContext().App("lightning")
	if err != nil {
		return ledger.Session{}
	}
	l := app.(*App).usedLedger()
	if l == nil {
		return ledger.Session{}
	}
	s, _ := l.sessionLedger().Session(context.Background(), p.sessionAccount(id).String())
	return s
}

// TestSessionBadInput: credentials of the session intent that must not
// admit anything get 402 (with a fresh session challenge and a problem
// naming what is wrong) or 400, admit nothing, draw nothing and move no
// sats. Three paywalls: /s/ (service s, 10 sats), /t/ (another service:
// another realm) and /p/ (service s at 20 sats).
func TestSessionBadInput(t *testing.T) {
	node := lndtest.Start(t)
	site := func(path, service string, price int) string {
		return fmt.Sprintf("\troute /%s/* {\n\t\tpaywall %d {\n\t\t\tservice %s\n\t\t\tsession {\n\t\t\t\tdeposit 100\n\t\t\t}\n\t\t}\n\t\t%s\n\t}\n", path, price, service, upstream)
	}
	base := startCaddy(t, lndOption(node), site("s", "s", 10)+site("t", "t", 10)+site("p", "s", 20))
	s, _ := openSession(t, node, base+"/s/")
	before := sessionState(t, "s", s.id)

	// An open whose return invoice is unusable does not use the deposit.
	c := sessionChallenge(t, base+"/s/")
	preimage := payDeposit(t, node, c)
	withAmount, _ := node.NewPayableInvoice(5, lndtest.InvoiceExpiry(24*time.Hour))
	good, _ := node.NewPayableInvoice(0, lndtest.InvoiceExpiry(24*time.Hour))
	soon, _ := node.NewPayableInvoice(0, lndtest.InvoiceExpiry(time.Minute))
	open := func(ch mpp.Challenge, pre [32]byte, ret string) http.Header {
		return sessionAuth(t, ch, mpp.SessionPayload{Action: mpp.ActionOpen, Preimage: pre, ReturnInvoice: ret})
	}
	tampered := c
	tampered.Request = sessionChallenge(t, base+"/s/").Request
	other := sessionChallenge(t, base+"/t/")
	pricier := sessionChallenge(t, base+"/p/")
	otherMethod := c
	otherMethod.Method = "stablecoin"
	var wrongPreimage [32]byte
	wrongPreimage[0] = 1

	for _, tt := range []struct {
		name    string
		url     string
		header  http.Header
		status  int
		problem string
	}{
		{"malformed: not base64url", "/s/", auth("Payment !!!"), 402, "lightning/malformed-credential"},
		{"malformed: no payload", "/s/", auth("Payment " + mpp.EncodeBase64URL([]byte(`{"challenge":{"id":"a","realm":"s","method":"lightning","intent":"session","request":"e30"}}`))), 402, "lightning/malformed-credential"},
		{"two credentials", "/s/", auth(s.auth(t, mpp.ActionBearer).Get("Authorization"), s.auth(t, mpp.ActionBearer).Get("Authorization")), 400, "malformed-credential"},
		{"another method", "/s/", open(otherMethod, preimage, good), 400, "method-unsupported"},
		{"tampered request", "/s/", open(tampered, preimage, good), 402, "lightning/unknown-challenge"},
		{"wrong preimage (open)", "/s/", open(c, wrongPreimage, good), 402, "lightning/invalid-preimage"},
		{"wrong preimage (bearer)", "/s/", sessionAuth(t, s.echo, mpp.SessionPayload{Action: mpp.ActionBearer, SessionID: s.id, Preimage: wrongPreimage}), 402, "lightning/invalid-preimage"},
		{"wrong realm", "/s/", open(other, preimage, good), 402, "lightning/unknown-challenge"},
		{"wrong amount", "/s/", open(pricier, preimage, good), 402, "verification-failed"},
		{"cross-route bearer", "/t/", sessionAuth(t, other, mpp.SessionPayload{Action: mpp.ActionBearer, SessionID: s.id, Preimage: s.preimage}), 402, "lightning/session-not-found"},
		{"cross-route close", "/t/", sessionAuth(t, other, mpp.SessionPayload{Action: mpp.ActionClose, SessionID: s.id, Preimage: s.preimage}), 402, "lightning/session-not-found"},
		{"return invoice with an amount", "/s/", open(c, preimage, withAmount), 402, "lightning/invalid-return-invoice"},
		{"return invoice expiring soon", "/s/", open(c, preimage, soon), 402, "lightning/invalid-return-invoice"},
		{"return invoice not BOLT 11", "/s/", open(c, preimage, "lnbcrt1garbage"), 402, "lightning/invalid-return-invoice"},
		{"replayed open", "/s/", open(s.echo, s.preimage, good), 402, "lightning/unknown-challenge"},
		{"deposit as a top-up", "/s/", sessionAuth(t, s.echo, mpp.SessionPayload{Action: mpp.ActionTopUp, SessionID: s.id, Preimage: s.preimage}), 402, "lightning/unknown-challenge"},
		{"top-up of no session", "/s/", sessionAuth(t, c, mpp.SessionPayload{Action: mpp.ActionTopUp, SessionID: wrongPreimage, Preimage: preimage}), 402, "lightning/session-not-found"},
	} {
		resp, body := get(t, base+tt.url, tt.header)
		var prob mpp.Problem
		_ = json.Unmarshal([]byte(body), &prob)
		if resp.StatusCode != tt.status || prob.Type != mpp.ProblemBase+tt.problem || strings.HasPrefix(body, "paid") {
			t.Errorf("%s: %d %s, want %d %s", tt.name, resp.StatusCode, body, tt.status, tt.problem)
			continue
		}
		if tt.status == http.StatusPaymentRequired && prob.ChallengeID != sessionChallengeOf(t, resp.Header).ID {
			t.Errorf("%s: the problem names challenge %q, not the fresh one", tt.name, prob.ChallengeID)
		}
	}

	// Expired: the same open two hours later (the invoice expired after 10m, the challenge valid_for 1h after that).
	now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	resp, body := get(t, base+"/s/", open(c, preimage, good))
	now = time.Now
	if resp.StatusCode != http.StatusPaymentRequired || !strings.Contains(body, "lightning/challenge-expired") {
		t.Errorf("expired: %d %s", resp.StatusCode, body)
	}

	if after := sessionState(t, "s", s.id); after.Spent != before.Spent || after.Deposit != before.Deposit || after.Closed {
		t.Errorf("the session moved: %+v, was %+v", after, before)
	}
	if paid := refunds(node); len(paid) != 0 {
		t.Errorf("sats moved: %+v", paid)
	}
	// The deposit refused above still opens a session with a good
	// return invoice.
	if resp, body := get(t, base+"/s/", open(c, preimage, good)); resp.StatusCode != http.StatusOK {
		t.Errorf("open after the refusals: %d %s", resp.StatusCode, body)
	}
}

// TestSessionConfig: the session block's defaults, and the values it
// refuses when the config is adapted or validated.
func TestSessionConfig(t *testing.T) {
	node := lndtest.Start(t)
	paywall := func(block string) string {
		return "\troute /paid/* {\n\t\tpaywall {\n" + block + "\n\t\t}\n\t\trespond \"x\"\n\t}"
	}
	for _, tt := range []struct{ name, site, want string }{
		{"deposit below the price", paywall("price 50\nsession {\ndeposit 40\n}"), "deposit 40 is below the price 50"},
		{"deposit below max_price", paywall("price {vars.p}\nmax_price 50\nsession {\ndeposit 40\n}"), "deposit 40 is below the price 50"},
		{"idle_timeout below 1s", paywall("price 5\nsession {\nidle_timeout 500ms\n}"), "idle_timeout must be at least 1s"},
		{"invoice_expiry above 24h", paywall("price 5\ninvoice_expiry 25h\nsession"), "session: invoice_expiry may be at most 24h0m0s"},
		{"unknown option", paywall("price 5\nsession {\nrefund_to me\n}"), "unrecognized session option 'refund_to'"},
		{"argument", paywall("price 5\nsession on"), "wrong argument count"},
		{"bad fee limit", paywall("price 5\nsession {\nrefund_fee_limit -1\n}"), "not a positive amount"},
		{"option twice", paywall("price 5\nsession {\ndeposit 10\ndeposit 20\n}"), "deposit may be given only once"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := validateConfig(t, node, "", tt.site)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
	if err := validateConfig(t, node, "", paywall("price 5\nsession {\ndeposit 500\nidle_timeout 10m\nrefund_fee_limit 20\n}")); err != nil {
		t.Errorf("a valid config: %v", err)
	}
	cfgJSON, _, err := adaptCaddyfile(":80 {\n\tpaywall 7 {\n\t\tsession\n\t}\n}\n")
	if err != nil || !strings.Contains(string(cfgJSON), `"session":{}`) {
		t.Fatalf("an empty session block: %s %v", cfgJSON, err)
	}
	p := &Paywall{price: 7, Session: new(SessionConfig)}
	if err := p.provisionSession(&App{payments: newPaymentLedger(nil), ledger: &ledgerUse{build: func() (*sharedLedger, error) { return &sharedLedger{}, nil }}}); err != nil {
		t.Fatal(err)
	}
	if p.Session.deposit != 140 || time.Duration(p.Session.IdleTimeout) != 5*time.Minute {
		t.Errorf("defaults: deposit %d, idle_timeout %v", p.Session.deposit, time.Duration(p.Session.IdleTimeout))
	}
}

// TestPermissionCheckSessions: sessions make payments (refunds), and the
// startup check says so when the macaroon cannot.
func TestPermissionCheckSessions(t *testing.T) {
	logs := permissionLogsWith(t, lndtest.Start(t), "invoice", false, &Paywall{Session: &SessionConfig{}})
	e, ok := logLine(logs, "session refunds: the lnd macaroon lacks info:read offchain:read offchain:write")
	if !ok || e.Level != zapcore.ErrorLevel {
		t.Errorf("no error for session refunds in %v", logs)
	}
}

// TestSessionConcurrency: 20 bearer requests at once on a session left
// with 90 sats at 10 a request admit exactly 9; 5 closes at once of an
// empty session refund nothing, of a session holding 90 refund 90 once.
func TestSessionConcurrency(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), sessionSite(""))
	s, _ := openSession(t, node, base+"/s/")
	statuses, _ := concurrently(t, 20, base+"/s/", s.auth(t, mpp.ActionBearer))
	if ok := count(statuses, http.StatusOK); ok != 9 || count(statuses, http.StatusPaymentRequired) != 11 {
		t.Errorf("20 bearer requests on 90 sats at 10: %d admitted (%v)", ok, statuses)
	}
	statuses, _ = concurrently(t, 5, base+"/s/", s.auth(t, mpp.ActionClose))
	if count(statuses, http.StatusOK) != 1 || count(statuses, http.StatusPaymentRequired) != 4 {
		t.Errorf("5 closes at once: %v", statuses)
	}
	if paid := refunds(node); len(paid) != 0 {
		t.Errorf("an empty session refunded: %+v", paid)
	}
	if st := sessionState(t, "s", s.id); st.RefundStatus != ledger.RefundSkipped || st.Spent != 100 {
		t.Errorf("ledger: %+v", st)
	}
	full, _ := openSession(t, node, base+"/s/")
	statuses, _ = concurrently(t, 5, base+"/s/", full.auth(t, mpp.ActionClose))
	if count(statuses, http.StatusOK) != 1 || count(statuses, http.StatusPaymentRequired) != 4 {
		t.Errorf("5 closes at once: %v", statuses)
	}
	if paid := refunds(node); len(paid) != 1 || paid[0].ValueSat != 90 || paid[0].Attempts != 1 {
		t.Errorf("5 closes at once: node payments %+v", paid)
	}
}

// FuzzSessionAuthorization sends any Authorization value to a paywall
// selling sessions, beside a real open session. Whatever the value: the
// answer is 200, 400, 402 or 429, never a failure of the paywall; an
// answer other than 200 changes no session and pays nothing; an admitted
// request draws exactly the price and never shows the upstream a Payment
// credential.
func FuzzSessionAuthorization(f *testing.F) {
	node := lndtest.Start(f)
	base := fuzzCaddy(f, lndOption(node), "\troute /s/* {\n\t\tpaywall 10 {\n\t\t\tservice s\n\t\t\tinvoices_per_client off\n\t\t\tsession {\n\t\t\t\tdeposit 1000000\n\t\t\t}\n\t\t}\n\t\t"+upstream+"\n\t}")
	s, _ := openSession(f, node, base+"/s/")
	for _, action := range []string{mpp.ActionBearer, mpp.ActionOpen, mpp.ActionTopUp} {
		payload, _ := mpp.SessionPayloadJSON(mpp.SessionPayload{Action: action, SessionID: s.id, Preimage: s.preimage, ReturnInvoice: "lnbcrt1x"})
		cred := mpp.Credential{Challenge: s.echo, Payload: payload}
		v, err := cred.Format()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(v)
		f.Add(strings.ToLower(v[:8]) + v[8:] + ", Basic eA==")
	}
	f.Add("Payment")
	f.Add("Payment e30")
	f.Add("L402 x:y, Payment eyJjaGFsbGVuZ2UiOnt9fQ")
	account := (&Paywall{service: "s"}).sessionAccount(s.id).String()
	f.Fuzz(func(t *testing.T, value string) {
		led := runningLedger(t).sessionLedger()
		before, err := led.Session(context.Background(), account)
		if err != nil {
			t.Fatal(err)
		}
		req, err := http.NewRequest(http.MethodGet, base+"/s/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header["Authorization"] = []string{value}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Skip("the client refuses this header value")
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		after, err := led.Session(context.Background(), account)
		if err != nil {
			t.Fatal(err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			if strings.HasPrefix(string(body), "paid") && after.Spent != before.Spent+10 && after.Spent != before.Spent {
				t.Errorf("admitted, drawing %d sats", after.Spent-before.Spent)
			}
			if i := strings.Index(string(body), "auth=["); i >= 0 && strings.Contains(strings.ToLower(string(body[i:])), "payment ") {
				t.Errorf("the upstream saw a Payment credential: %s", body)
			}
		case http.StatusBadRequest, http.StatusPaymentRequired, http.StatusUnauthorized, http.StatusTooManyRequests:
			if after.Spent != before.Spent || after.Deposit != before.Deposit || after.Closed != before.Closed {
				t.Errorf("status %d moved the session: %+v -> %+v", resp.StatusCode, before, after)
			}
		default:
			t.Errorf("status %d: %s", resp.StatusCode, body)
		}
		if paid := node.Payments(); len(paid) != 0 && !after.Closed {
			t.Errorf("the node paid for an open session: %+v", paid)
		}
	})
}

// BenchmarkSessionBearer is a bearer request on the embedded ledger:
// parsing and verifying the Payment credential (HMAC, sha256), a draw, the
// receipt. BenchmarkPaywallPrepaid is the L402 counterpart.
func BenchmarkSessionBearer(b *testing.B) {
	p, _ := benchSellingPaywall(b, modePass, benchMemoryLedger(b))
	p.price = 1
	p.Session = &SessionConfig{deposit: 1000, IdleTimeout: caddy.Duration(time.Minute)}
	var preimage [32]byte
	preimage[0] = 7
	id := sha256.Sum256(preimage[:])
	if _, err := p.led.sessionLedger().OpenSession(b.Context(), p.sessionAccount(id), ledger.MaxSats, "lnbcrt1return"); err != nil {
		b.Fatal(err)
	}
	snap, err := p.tokens.current(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	request, err := (&mpp.SessionRequest{Amount: 1, PaymentHash: id}).Encode()
	if err != nil {
		b.Fatal(err)
	}
	c := mpp.Challenge{Realm: p.service, Method: mpp.MethodLightning, Intent: mpp.IntentSession, Request: request}
	if err := snap.challenges.binder.Bind(&c); err != nil {
		b.Fatal(err)
	}
	authz := sessionAuth(b, c, mpp.SessionPayload{Action: mpp.ActionBearer, SessionID: id, Preimage: preimage}).Get("Authorization")
	req := httptest.NewRequest(http.MethodGet, "/paid", nil)
	ledgertest.Bench(b, func() {
		for range b.N {
			req.Header.Set("Authorization", authz)
			rec := httptest.NewRecorder()
			if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusOK {
				b.Fatalf("bearer request: %d %v %s", rec.Code, err, rec.Body)
			}
		}
	})
}

// BenchmarkPaywallChallengeSession is a 402 that offers a session beside
// L402: two invoices from the node (BenchmarkPaywallChallenge makes one).
func BenchmarkPaywallChallengeSession(b *testing.B) {
	p, _ := benchPaywall(b)
	p.Session = &SessionConfig{deposit: 2000, IdleTimeout: caddy.Duration(5 * time.Minute)}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodGet, "/paid", nil)
		rec := httptest.NewRecorder()
		if err := p.ServeHTTP(rec, req, okHandler); err != nil || rec.Code != http.StatusPaymentRequired {
			b.Fatalf("challenge: %d %v", rec.Code, err)
		}
	}
}
