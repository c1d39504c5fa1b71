package lightning

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"gopkg.in/macaroon.v2"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// The fuzz targets of this package. Under `go test` they run their seeds;
// scripts/fuzz.sh runs them for longer. FuzzRESTRequest and
// FuzzPaywallAuthorization go through a real Caddy in this process (one per
// fuzz worker), in front of a fake node, so they hold whatever the handlers
// become.

// fuzzCaddy runs Caddy in this process on a free loopback port, logging
// errors only, until the end of the fuzz target. It returns the base URL.
func fuzzCaddy(tb testing.TB, globalOptions, siteBody string) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfg := fmt.Sprintf(`{
	admin off
	auto_https off
	persist_config off
	storage file_system %s
	log {
		level ERROR
	}
%s
}

http://127.0.0.1:%d {
%s
}
`, tb.TempDir(), globalOptions, port, siteBody)
	cfgJSON, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(cfg), nil)
	if err != nil {
		tb.Fatalf("adapt Caddyfile: %v\n%s", err, cfg)
	}
	if err := caddy.Load(cfgJSON, true); err != nil {
		tb.Fatalf("load config: %v", err)
	}
	tb.Cleanup(func() { _ = caddy.Stop() })
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// fuzzClient bounds every fuzz request: an input that hangs the server
// fails instead of stalling the fuzzer.
var fuzzClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 16},
}

// FuzzRESTRequest sends arbitrary bodies to arbitrary method names of the
// REST API. Every answer must be a success or an error in grpc-gateway's
// shape with a gRPC code of 1 to 16 and its HTTP status, never a dropped
// connection or a 500. The fake node refuses every call that would change
// or look up state (Unavailable), so fuzzing neither grows it nor pays;
// GetInfo answers, so invoices are decoded against regtest.
func FuzzRESTRequest(f *testing.F) {
	node := lndtest.Start(f)
	for _, m := range []string{"AddInvoice", "LookupInvoice", "SendPaymentV2", "TrackPaymentV2"} {
		node.SetError(m, status.Error(codes.Unavailable, "fuzzing: the node takes no such calls"))
	}
	base := fuzzCaddy(f, lndOption(node), "\tlightning {\n\t\tmax_payment 1000\n\t\tbudget 2100000000000000 1s\n\t}")

	payable, _ := node.NewPayableInvoice(500)
	zero, _ := node.NewPayableInvoice(0)
	mainnet, _ := lndtest.Start(f, lndtest.WithNetwork("mainnet")).NewPayableInvoice(10)
	for _, s := range []struct{ method, body string }{
		{"generateinvoice", `{"amount": 1000, "memo": "coffee"}`},
		{"generateinvoice", `{"amount": "2500", "unknown_field": [1, {"a": null}]}`},
		{"generateinvoice", `{"amount": 1e3}`},
		{"generateinvoice", `{"amount": "9223372036854775808"}`},
		{"generateinvoice", `{"amount": 0}`},
		{"generateinvoice", `{"amount": 1, "memo": "` + strings.Repeat("m", 640) + `"}`},
		{"generateinvoice", `{"amount": 1, "memo": "caf\u00e9 \ud83d\ude00"}`},
		{"generateinvoice", `{"amount": 1} trailing`},
		{"generateinvoice", ``},
		{"generateinvoice", `null`},
		{"generateinvoice", `[[[[`},
		{"payinvoice", `{"invoice": "` + payable + `"}`},
		{"payinvoice", `{"invoice": "lightning:` + strings.ToUpper(payable) + `"}`},
		{"payinvoice", `{"invoice": "` + zero + `"}`},
		{"payinvoice", `{"invoice": "` + mainnet + `"}`},
		{"payinvoice", `{"invoice": "lnbcrt1qqqqqqqq"}`},
		{"payinvoice", `{"invoice": ""}`},
		{"checkinvoice", `{"invoice": "` + payable + `"}`},
		{"keysend", `{"pubkey": "` + node.PeerPubkey() + `", "amount": 10}`},
		{"keysend", `{"pubkey": "` + node.PeerPubkey() + `", "amount": "1001"}`},
		{"keysend", `{"pubkey": "02abcd", "amount": 21}`},
		{"keysend", `{"pubkey": "` + node.PeerPubkey() + `", "amount": 0}`},
		{"sendcoins", `{}`},
		{"", `{}`},
		{"payinvoice/extra", `{}`},
		{"../../admin", ``},
	} {
		f.Add(s.method, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, method string, body []byte) {
		u := base + (&url.URL{Path: "/v1/lightning/" + method}).EscapedPath()
		req, err := http.NewRequest(http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			t.Skipf("no such URL %q: %v", u, err)
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := fuzzClient.Do(req)
		if err != nil {
			t.Fatalf("POST %q %q: no answer: %v", method, body, err)
		}
		raw, err := readAll(resp)
		if err != nil {
			t.Fatalf("POST %q %q: %v", method, body, err)
		}
		if resp.StatusCode == http.StatusOK {
			if !json.Valid(raw) {
				t.Fatalf("POST %q %q: 200 with invalid JSON %q", method, body, raw)
			}
			return
		}
		var e struct {
			Code    *int
			Message string
			Details []any
		}
		if err := json.Unmarshal(raw, &e); err != nil || e.Code == nil || e.Details == nil {
			t.Fatalf("POST %q %q: %d %q is not a grpc-gateway error", method, body, resp.StatusCode, raw)
		}
		code := codes.Code(*e.Code)
		if code < 1 || code > 16 || e.Message == "" || len(e.Details) != 0 {
			t.Fatalf("POST %q %q: bad error %q", method, body, raw)
		}
		want := runtime.HTTPStatusFromCode(code)
		if resp.StatusCode != want && !(resp.StatusCode == http.StatusRequestEntityTooLarge && code == codes.InvalidArgument) {
			t.Fatalf("POST %q %q: status %d for code %s, want %d", method, body, resp.StatusCode, code, want)
		}
		if resp.StatusCode >= 500 && code != codes.Unavailable && code != codes.DeadlineExceeded {
			t.Fatalf("POST %q %q: server error for client input: %d %s", method, body, resp.StatusCode, raw)
		}
	})
}

func readAll(resp *http.Response) ([]byte, error) {
	defer resp.Body.Close()
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// FuzzLoadCredentials feeds arbitrary tls_cert and macaroon values to the
// loaders: they must not panic, must be deterministic, and must not return
// an empty certificate without an error. Values naming something other
// than a small regular file (devices, pipes, /proc) are skipped: reading
// them could block or never end, which only an operator can ask for.
func FuzzLoadCredentials(f *testing.F) {
	node := lndtest.Start(f)
	dir := f.TempDir()
	hexFile := filepath.Join(dir, "mac.hex")
	if err := os.WriteFile(hexFile, []byte(node.MacaroonHex()+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	macRaw, _ := hex.DecodeString(node.MacaroonHex())
	for _, s := range []string{
		string(node.TLSCertPEM()),
		"  " + string(node.TLSCertPEM()) + "\n",
		hex.EncodeToString(node.TLSCertPEM()),
		hex.EncodeToString([]byte("not DER")),
		node.TLSCertPath(),
		node.MacaroonHex(),
		strings.ToUpper(node.MacaroonHex()),
		node.MacaroonPath(),
		hexFile,
		string(macRaw),
		"", " \t\n", "zz", "0", "00", "-----BEGIN", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
		"/nonexistent/tls.cert", ".", "..", dir,
		"\x00\x01\x02", "caf\xe9",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		if !fuzzSafePath(strings.TrimSpace(value)) {
			t.Skip("not a small regular file")
		}
		cert, _, err := loadCert(value)
		if err == nil && len(cert) == 0 {
			t.Fatalf("loadCert(%q) returned nothing without an error", value)
		}
		if err != nil && err.Error() == "" {
			t.Fatalf("loadCert(%q): empty error", value)
		}
		again, _, err2 := loadCert(value)
		if !bytes.Equal(cert, again) || (err == nil) != (err2 == nil) {
			t.Fatalf("loadCert(%q) is not deterministic", value)
		}
		mac, err := loadMacaroon(value)
		if err != nil && err.Error() == "" {
			t.Fatalf("loadMacaroon(%q): empty error", value)
		}
		again, err2 = loadMacaroon(value)
		if !bytes.Equal(mac, again) || (err == nil) != (err2 == nil) {
			t.Fatalf("loadMacaroon(%q) is not deterministic", value)
		}
		if err == nil && strings.TrimSpace(value) != "" {
			if raw, herr := hex.DecodeString(strings.TrimSpace(value)); herr == nil && !bytes.Equal(raw, mac) {
				t.Fatalf("loadMacaroon(%q) = %x, want the hex decoded", value, mac)
			}
		}
	})
}

// fuzzSafePath reports whether value, read as a path, is absent or a
// regular file of at most 1 MiB outside /proc, /sys and /dev.
func fuzzSafePath(value string) bool {
	if value == "" || strings.ContainsRune(value, 0) {
		return true
	}
	abs, err := filepath.Abs(value)
	if err != nil {
		return false
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		abs = real
	}
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if abs == p || strings.HasPrefix(abs, p+"/") {
			return false
		}
	}
	fi, err := os.Stat(abs)
	return err != nil || fi.IsDir() || fi.Mode().IsRegular() && fi.Size() <= 1<<20
}

// FuzzPaywallAuthorization sends arbitrary Authorization headers and Cookie
// headers to a paywall. Only tokens minted with its root key for a paid
// invoice may open it; everything else gets 401, 402 or 429 with a JSON
// message. New invoices are limited to one per fuzz worker, so rejected
// requests do not grow the fake node.
func FuzzPaywallAuthorization(f *testing.F) {
	node := lndtest.Start(f)
	rootKey := bytes.Repeat([]byte{0x42}, l402.RootKeySize)
	base := fuzzCaddy(f, lndOption(node), fmt.Sprintf(`	route /paid/* {
		paywall 100 {
			service api
			root_key %x
			invoices_per_client off
			invoices_total 1 1000h
		}
		respond "ADMITTED {http.paywall.token_id} {http.paywall.payment_hash}" 200
	}
	respond "outside" 404`, rootKey))

	// A paid and an unpaid invoice on the node, and tokens for them.
	ln := lnrpc.NewLightningClient(node.Dial(f))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	invoice := func() (hash, preimage [32]byte) {
		added, err := ln.AddInvoice(ctx, &lnrpc.Invoice{Value: 100, Memo: "fuzz"})
		if err != nil {
			f.Fatal(err)
		}
		inv, err := ln.LookupInvoice(ctx, &lnrpc.PaymentHash{RHash: added.RHash})
		if err != nil {
			f.Fatal(err)
		}
		copy(hash[:], added.RHash)
		copy(preimage[:], inv.RPreimage)
		return hash, preimage
	}
	paidHash, preimage := invoice()
	unpaidHash, _ := invoice()
	if err := node.Settle(paidHash); err != nil {
		f.Fatal(err)
	}
	keys, err := l402.NewKeyring(rootKey)
	if err != nil {
		f.Fatal(err)
	}
	otherKeys, err := l402.NewKeyring(l402.NewRootKey())
	if err != nil {
		f.Fatal(err)
	}
	later := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	good := []l402.Caveat{l402.ServicesCaveat(l402.Service{Name: "api"}), l402.ValidUntilCaveat("api", later), l402.PriceCaveat("api", 100)}
	mint := func(k *l402.Keyring, hash [32]byte, caveats ...l402.Caveat) string {
		tok, _, err := k.Mint(hash, caveats...)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	paid := mint(keys, paidHash, good...)
	paidExtra := mint(keys, paidHash, append(good, l402.Caveat{Key: "tier", Value: "gold"})...)
	unpaid := mint(keys, unpaidHash, good...)
	foreign := mint(otherKeys, paidHash, good...)
	expired := mint(keys, paidHash, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.ValidUntilCaveat("api", time.Unix(1, 0)), l402.PriceCaveat("api", 100))
	cheap := mint(keys, paidHash, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.ValidUntilCaveat("api", later), l402.PriceCaveat("api", 1))
	pre := hex.EncodeToString(preimage[:])
	const cookie = "l402_api_100" // the access cookie of service api at 100 sats

	for _, s := range [][3]string{
		{"L402 " + paid + ":" + pre, "", ""},
		{"lsat " + paid + " : " + strings.ToUpper(pre), "", ""},
		{"L402 " + paidExtra + ":" + pre, "", ""},
		{"", "", cookie + "=" + paid + ":" + pre},
		{"L402 " + paid, "", ""},
		{"", "", "theme=dark; " + cookie + "=" + paid},
		{"L402 " + unpaid, "", ""},
		{"L402 " + unpaid + ":" + pre, "", ""},
		{"L402 " + foreign + ":" + pre, "", ""},
		{"L402 " + expired + ":" + pre, "", ""},
		{"L402 " + cheap + ":" + pre, "", ""},
		{"Basic dXNlcjpwYXNz", "L402 " + paid + ":" + pre, ""},
		{"L402 AAAA, " + paid + " :" + pre, "", ""},
		{"L402 " + paid + ":" + pre[:62], "", cookie + "="},
		{"L402 :", "LSAT a:b:c", cookie + "=" + strings.Repeat("A", 5000)},
		{"L402 " + strings.Repeat("A", 9000), "", ""},
		{"Bearer x", "", ""},
		{"", "", ""},
	} {
		f.Add(s[0], s[1], s[2])
	}
	// The harness admits what it should.
	for _, h := range []http.Header{
		{"Authorization": {"L402 " + paid + ":" + pre}},
		{"Cookie": {cookie + "=" + paidExtra + ":" + pre}},
	} {
		req, _ := http.NewRequest(http.MethodGet, base+"/paid/x", nil)
		req.Header = h
		resp, err := fuzzClient.Do(req)
		if err != nil {
			f.Fatal(err)
		}
		if raw, _ := readAll(resp); resp.StatusCode != http.StatusOK {
			f.Fatalf("paid token with %v: %d %s", h, resp.StatusCode, raw)
		}
	}
	f.Fuzz(func(t *testing.T, auth1, auth2, cookies string) {
		req, err := http.NewRequest(http.MethodGet, base+"/paid/x", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []string{auth1, auth2} {
			if v != "" {
				req.Header.Add("Authorization", v)
			}
		}
		if cookies != "" {
			req.Header.Set("Cookie", cookies)
		}
		resp, err := fuzzClient.Do(req)
		if err != nil {
			if strings.Contains(err.Error(), "invalid header field value") {
				t.Skip("not a valid header value: no server would see it")
			}
			t.Fatalf("%q %q %q: no answer: %v", auth1, auth2, cookies, err)
		}
		raw, err := readAll(resp)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusOK {
			fields := strings.Fields(string(raw))
			if len(fields) != 3 || fields[0] != "ADMITTED" ||
				!fuzzPaidCredential(req, cookie, rootKey, fields[1], fields[2], paidHash) {
				t.Fatalf("%q %q %q opened the paywall with %q: no credential minted with its key for a paid invoice", auth1, auth2, cookies, raw)
			}
			return
		}
		switch resp.StatusCode {
		case http.StatusUnauthorized, http.StatusPaymentRequired, http.StatusTooManyRequests:
		default:
			t.Fatalf("%q %q %q: status %d: %s", auth1, auth2, cookies, resp.StatusCode, raw)
		}
		var body struct{ Message string }
		if err := json.Unmarshal(raw, &body); err != nil || body.Message == "" || bytes.Contains(raw, []byte("ADMITTED")) {
			t.Fatalf("%q %q %q: %d %q is not a JSON message", auth1, auth2, cookies, resp.StatusCode, raw)
		}
	})
}

// fuzzPaidCredential reports whether req carries a credential that should
// open the paywall with token id tokenID (hex) for hashHex, checked with the
// reference macaroon library rather than the paywall's own code: a token
// signed with rootKey whose caveats grant service api at 100 sats now, with
// a preimage of its payment hash or, without one, for the invoice the node
// settled (settled).
func fuzzPaidCredential(req *http.Request, cookieName string, rootKey []byte, tokenID, hashHex string, settled [32]byte) bool {
	values := req.Header.Values("Authorization")
	if c, err := req.Cookie(cookieName); err == nil {
		values = append(values, "L402 "+c.Value)
	}
	creds, _ := l402.ParseAuthorization(values)
	for _, cred := range creds {
		b, err := macaroon.Base64Decode([]byte(cred.Token))
		if err != nil {
			continue
		}
		var m macaroon.Macaroon
		if m.UnmarshalBinary(b) != nil || len(m.Id()) != 66 {
			continue
		}
		id := m.Id()
		if hex.EncodeToString(id[34:]) != tokenID || hex.EncodeToString(id[2:34]) != hashHex {
			continue
		}
		conditions, err := m.VerifySignature(rootKey, nil)
		if err != nil || !fuzzGrants(conditions) {
			continue
		}
		var hash [32]byte
		copy(hash[:], id[2:34])
		if cred.HasPreimage && sha256.Sum256(cred.Preimage[:]) == hash || !cred.HasPreimage && hash == settled {
			return true
		}
	}
	return false
}

// fuzzGrants reports whether caveat conditions grant service api at 100
// sats now: a services caveat listing api, and every api_price and
// api_valid_until caveat satisfied.
func fuzzGrants(conditions []string) bool {
	services := false
	for _, c := range conditions {
		key, value, _ := strings.Cut(c, "=")
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "services":
			for _, s := range strings.Split(value, ",") {
				if name, _, _ := strings.Cut(strings.TrimSpace(s), ":"); name == "api" {
					services = true
				}
			}
		case "api_price":
			if value != "100" {
				return false
			}
		case "api_valid_until":
			until, err := strconv.ParseInt(value, 10, 64)
			if err != nil || time.Now().Unix() >= until {
				return false
			}
		}
	}
	return services
}

// fuzzWithin runs fn and fails if it takes longer than d: the native
// fuzzer has no per-input timeout, so a hang would only stall it.
func fuzzWithin(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s: no result after %s (a hang)", what, d)
	}
}

// FuzzCaddyfile puts arbitrary text in the blocks of the lightning global
// option, the lightning directive and the paywall directive. Parsing must
// not panic or hang, and whatever it accepts must be in range and survive
// a JSON round trip. (caddyfile.NewTestDispenser exits the process on a
// lexer error, so this tokenizes first, as it does, and skips such input.)
func FuzzCaddyfile(f *testing.F) {
	for _, s := range []string{
		"",
		"max_payment 5000\nmax_fee 50\ninvoice_expiry 1h\npayment_timeout 60s\nbudget 10000 24h\napi_key {env.KEY}",
		"price 100\nvalid_for 1h\nmemo \"API {http.request.host}\"\ninvoice_expiry 10m\nservice api\nroot_key " + strings.Repeat("ab", 32) + "\nkeep_credentials\ninvoices_per_client 60 1m\ninvoices_total off",
		"lnd {\n\taddress 127.0.0.1:10009\n\ttls_cert /tls.cert\n\tmacaroon /admin.macaroon\n\ttimeout 15s\n}",
		"max_payment -1", "max_payment 2100000000000001", "budget 0", "budget 1 -1s", "budget 1 2 3",
		"valid_for 0s", "invoice_expiry 1d", "memo", "invoices_total 0 1s", "invoices_per_client 1 0s",
		"max_payment 1\nmax_payment 2", "lnd\nlnd", "lnd {\n\ttimeout 1s\n\ttimeout 2s\n}",
		"}\n}\n{", "{\n{\n{", "`unterminated", "<<EOF\nheredoc\nEOF", "\"quoted \\\"value\\\"\"",
		"# comment\nservice a-b_c", "import x", "{$ENV}", "{env.X} {file./etc/hostname}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, block string) {
		for _, c := range []struct {
			head      string
			unmarshal func(*caddyfile.Dispenser) (any, error)
		}{
			{"lightning {\n", func(d *caddyfile.Dispenser) (any, error) {
				a := new(App)
				return a, a.UnmarshalCaddyfile(d)
			}},
			{"lightning {\n", func(d *caddyfile.Dispenser) (any, error) {
				h := new(Handler)
				return h, h.UnmarshalCaddyfile(d)
			}},
			{"paywall 100 {\n", func(d *caddyfile.Dispenser) (any, error) {
				p := new(Paywall)
				return p, p.UnmarshalCaddyfile(d)
			}},
		} {
			var (
				v             any
				err, lexError error
			)
			fuzzWithin(t, 5*time.Second, c.head+block, func() {
				var tokens []caddyfile.Token
				if tokens, lexError = caddyfile.Tokenize([]byte(c.head+block+"\n}\n"), "Caddyfile"); lexError == nil {
					v, err = c.unmarshal(caddyfile.NewDispenser(tokens))
				}
			})
			if lexError != nil {
				continue
			}
			if err != nil {
				if err.Error() == "" {
					t.Fatalf("%s%s: empty error", c.head, block)
				}
				continue
			}
			if err := fuzzCheckConfig(v); err != nil {
				t.Fatalf("%s%s\naccepted as %+v: %v", c.head, block, v, err)
			}
			b, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s%s: marshal %+v: %v", c.head, block, v, err)
			}
			back := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := json.Unmarshal(b, back); err != nil {
				t.Fatalf("%s%s: unmarshal %s: %v", c.head, block, b, err)
			}
			if b2, _ := json.Marshal(back); !bytes.Equal(b, b2) {
				t.Fatalf("%s%s: JSON round trip %s -> %s", c.head, block, b, b2)
			}
		}
	})
}

// fuzzCheckConfig checks what the Caddyfile parsers accepted.
func fuzzCheckConfig(v any) error {
	sats := func(name string, n int64) error {
		if n < 0 || n > maxSats {
			return fmt.Errorf("%s %d out of range", name, n)
		}
		return nil
	}
	switch c := v.(type) {
	case *App:
		if c.LND != nil && c.LND.Timeout < 0 {
			return fmt.Errorf("negative timeout")
		}
	case *Handler:
		if err := sats("max_payment", c.MaxPayment); err != nil {
			return err
		}
		if err := sats("max_fee", c.MaxFee); err != nil {
			return err
		}
		if c.InvoiceExpiry < 0 || c.PaymentTimeout < 0 {
			return fmt.Errorf("negative duration")
		}
		if err := c.Budget.validate(); err != nil {
			return err
		}
	case *Paywall:
		if c.Price <= 0 {
			return fmt.Errorf("price %d", c.Price)
		}
		if c.ValidFor < 0 || c.InvoiceExpiry < 0 {
			return fmt.Errorf("negative duration")
		}
		for _, r := range []*Rate{c.InvoicesPerClient, c.InvoicesTotal} {
			if r != nil && (r.Events < 0 || r.Events > 0 && r.Window <= 0) {
				return fmt.Errorf("bad rate %+v", *r)
			}
		}
	}
	return nil
}
