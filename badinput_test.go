package lightning

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"github.com/lightningnetwork/lnd/lnwire"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"gopkg.in/macaroon.v2"

	"github.com/lightningcaddy/caddy-lightning/l402"
	"github.com/lightningcaddy/caddy-lightning/lightningpb"
	"github.com/lightningcaddy/caddy-lightning/lnd/lndtest"
)

// badUpstream is what only the paywall's upstream serves.
const badUpstream = "UPSTREAM-CONTENT"

// badRootKey signs the paywall's tokens, so the test can mint tokens that
// the paywall would accept but for one thing.
var badRootKey = bytes.Repeat([]byte{0x5a}, l402.RootKeySize)

// badRequest is one malformed request and the answer it must get.
type badRequest struct {
	name    string
	method  string // HTTP method; POST for the API and GET for the paywall if empty
	path    string // from the site root
	header  http.Header
	body    string
	chunked bool // send the body without a Content-Length
	status  int
	code    codes.Code // API rows: the gRPC code in the error body
	message string     // part of the error message
	sends   int        // SendPaymentV2 calls the row makes; each must fail
	paywall bool
}

// TestBadInput sends malformed requests to the Lightning API and to a
// paywall in front of one Caddy and one fake node. Each must get a 4xx with
// a JSON error that says what is wrong, no upstream content, and no money
// may move: after the table no invoice it named has a payment on the node,
// the only SendPaymentV2 calls are the rows' that fail at the node, and the
// whole 5000 sat budget is still there (four payments of 1000 fit).
//
// Decisions this test documents:
//   - The body is JSON whatever the Content-Type (as grpc-gateway's default
//     marshaler does), so text/plain with valid JSON works; form and
//     multipart bodies are invalid JSON. application/grpc over HTTP/1.1 is
//     REST.
//   - int64 fields follow proto3 JSON: "1e3" and 1e3 are 1000.
//   - A keysend pubkey of the right length that is not on the curve reaches
//     the node (lnd checks only the length) and fails there with no route.
//   - The paywall's per-client invoice limit is off, so every rejected
//     request gets a fresh challenge (401 or 402) rather than a 429.
func TestBadInput(t *testing.T) {
	node := lndtest.Start(t)
	base := startCaddy(t, lndOption(node), fmt.Sprintf(`	route /v1/lightning/* {
		lightning {
			max_payment 1000
			budget 5000
		}
	}
	route /paid/* {
		paywall 100 {
			service api
			root_key %x
			invoices_per_client off
		}
		respond "%s {http.paywall.payment_hash}"
	}
	respond "free"`, badRootKey, badUpstream))
	api := "/v1/lightning/"
	client := &http.Client{Timeout: 15 * time.Second}

	// Invoices. None of them may ever be paid by the table.
	valid, _ := node.NewPayableInvoice(10)
	garbageTail, _ := node.NewPayableInvoice(10)
	expired, _ := node.NewPayableInvoice(10, lndtest.InvoiceTimestamp(time.Now().Add(-2*time.Hour)), lndtest.InvoiceExpiry(time.Hour))
	zero, _ := node.NewPayableInvoice(0)
	overMax, _ := node.NewPayableInvoice(1001)
	noPayAddr, _ := badForeignInvoice(t, &chaincfg.RegressionNetParams, 1000, false)
	unreachable, unreachableHash := badForeignInvoice(t, &chaincfg.RegressionNetParams, 10, true)
	foreign := map[string]string{}
	for _, network := range []string{"mainnet", "testnet", "signet"} {
		foreign[network], _ = lndtest.Start(t, lndtest.WithNetwork(network)).NewPayableInvoice(10)
	}
	ownResp := badSend(t, client, base, badRequest{path: api + "generateinvoice", body: `{"amount": 1000}`})
	var own struct{ Invoice string }
	if ownResp.status != http.StatusOK || json.Unmarshal([]byte(ownResp.raw), &own) != nil {
		t.Fatalf("generateinvoice: %d %s", ownResp.status, ownResp.raw)
	}
	mustNotPay := [][32]byte{paymentHash(t, valid), paymentHash(t, garbageTail), paymentHash(t, expired),
		paymentHash(t, zero), paymentHash(t, overMax), paymentHash(t, own.Invoice)}
	for _, inv := range foreign {
		mustNotPay = append(mustNotPay, badDecodeAnyNetwork(t, inv))
	}
	flipped := []byte(valid)
	if i := len(flipped) / 2; flipped[i] == 'q' {
		flipped[i] = 'p'
	} else {
		flipped[i] = 'q'
	}
	badChecksum := []byte(valid)
	if badChecksum[len(badChecksum)-1] == 'q' {
		badChecksum[len(badChecksum)-1] = 'p'
	} else {
		badChecksum[len(badChecksum)-1] = 'q'
	}
	rng := mrand.New(mrand.NewChaCha8([32]byte{1}))
	const bech32Chars = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
	randomBech32 := make([]byte, 300)
	for i := range randomBech32 {
		randomBech32[i] = bech32Chars[rng.IntN(len(bech32Chars))]
	}
	offCurve := badOffCurveKey(t)

	// Tokens: a paid one, an unpaid one, and variants of the paid one.
	c := getChallenge(t, base+"/paid/x", nil, http.StatusPaymentRequired)
	preimage := settleAndProve(t, node, c)
	unpaid := getChallenge(t, base+"/paid/x", nil, http.StatusPaymentRequired)
	hash := paymentHash(t, c.Body.Invoice)
	pre := hex.EncodeToString(preimage[:])
	if r := badSend(t, client, base, badRequest{path: "/paid/x", header: auth(l402Auth(c.Body.Token, preimage)), paywall: true}); r.status != http.StatusOK || !strings.Contains(r.raw, badUpstream) {
		t.Fatalf("the paid token does not open the paywall: %d %s", r.status, r.raw)
	}
	keys, err := l402.NewKeyring(badRootKey)
	if err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Hour)
	mint := func(k *l402.Keyring, caveats ...l402.Caveat) string {
		t.Helper()
		tok, _, err := k.Mint(hash, caveats...)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	otherKeys, err := l402.NewKeyring(l402.NewRootKey())
	if err != nil {
		t.Fatal(err)
	}
	fromOtherKey := mint(otherKeys, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.ValidUntilCaveat("api", future), l402.PriceCaveat("api", 100))
	expiredToken := mint(keys, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.ValidUntilCaveat("api", time.Now().Add(-time.Minute)), l402.PriceCaveat("api", 100))
	otherService := mint(keys, l402.ServicesCaveat(l402.Service{Name: "other"}), l402.ValidUntilCaveat("other", future), l402.PriceCaveat("other", 100))
	otherPrice := mint(keys, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.ValidUntilCaveat("api", future), l402.PriceCaveat("api", 10))
	noCaveats := mint(keys)
	if r := badSend(t, client, base, badRequest{path: "/paid/x", header: auth("L402 " + mint(keys, l402.ServicesCaveat(l402.Service{Name: "api"}), l402.PriceCaveat("api", 100)) + ":" + pre), paywall: true}); r.status != http.StatusOK {
		t.Fatalf("a token minted with the paywall's key does not open it: %d %s", r.status, r.raw)
	}
	m := badMacaroon(t, c.Body.Token)
	caveats := badCaveats(m)
	changed := append([]string(nil), caveats...)
	for i, cav := range changed {
		if strings.HasPrefix(cav, "api_valid_until=") {
			changed[i] = "api_valid_until=99999999999"
		}
	}
	var withoutPrice []string
	for _, cav := range caveats {
		if !strings.HasPrefix(cav, "api_price=") {
			withoutPrice = append(withoutPrice, cav)
		}
	}
	swappedID := append([]byte(nil), m.Id()...)
	unpaidHash := paymentHash(t, unpaid.Body.Invoice)
	copy(swappedID[2:34], unpaidHash[:])
	attenuate := func(tok, caveat string) string {
		t.Helper()
		m := badMacaroon(t, tok)
		if err := m.AddFirstPartyCaveat([]byte(caveat)); err != nil {
			t.Fatal(err)
		}
		return badEncode(t, m)
	}
	randomHeader := make([]byte, 200)
	for i := range randomHeader {
		b := byte(rng.IntN(256))
		if b < 0x20 || b == 0x7f {
			b = 'x' // the client refuses control characters
		}
		randomHeader[i] = b
	}
	randomToken := make([]byte, 120)
	for i := range randomToken {
		randomToken[i] = byte(rng.IntN(256))
	}
	var fiftyHeaders []string
	for i := range 50 {
		fiftyHeaders = append(fiftyHeaders, fmt.Sprintf("L402 AAAA%04d:%s", i, pre))
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	fmt.Fprintf(zw, `{"invoice": %q}`, valid)
	zw.Close()

	callAPI := func(name, method, body string, httpStatus int, code codes.Code, message string) badRequest {
		return badRequest{name: name, path: api + method, body: body, status: httpStatus, code: code, message: message}
	}
	badJSON := func(name, method, body string) badRequest {
		return callAPI(name, method, body, 400, codes.InvalidArgument, "invalid JSON")
	}
	pay := func(name, invoice string, httpStatus int, code codes.Code, message string) badRequest {
		body, _ := json.Marshal(map[string]string{"invoice": invoice})
		return callAPI(name, "payinvoice", string(body), httpStatus, code, message)
	}
	keysend := func(name, pubkey, amount string, httpStatus int, code codes.Code, message string) badRequest {
		return callAPI(name, "keysend", `{"pubkey": "`+pubkey+`", "amount": `+amount+`}`, httpStatus, code, message)
	}
	paywall := func(name string, header http.Header, httpStatus int, message string) badRequest {
		return badRequest{name: name, method: http.MethodGet, path: "/paid/x", header: header, status: httpStatus, message: message, paywall: true}
	}
	const cookieName = "l402_api_100" // the access cookie of service api at 100 sats
	cookie := func(value string) http.Header { return http.Header{"Cookie": {cookieName + "=" + value}} }
	with := func(r badRequest, f func(*badRequest)) badRequest { f(&r); return r }
	const bad = "invalid credentials"

	rows := []badRequest{
		// Broken JSON.
		badJSON("truncated JSON", "payinvoice", `{"invoice": "`+valid[:40]),
		badJSON("trailing garbage after the object", "payinvoice", `{"invoice": "`+garbageTail+`"} garbage`),
		badJSON("JSON string, not an object", "payinvoice", `"`+valid+`"`),
		badJSON("JSON number, not an object", "generateinvoice", `42`),
		badJSON("JSON array", "generateinvoice", `[{"amount": 1}]`),
		badJSON("JSON null", "generateinvoice", `null`),
		badJSON("10k open brackets", "generateinvoice", strings.Repeat("[", 10000)),
		badJSON("10001 nested arrays in an unknown field", "generateinvoice", `{"amount": 1, "x": `+strings.Repeat("[", 10001)+strings.Repeat("]", 10001)+`}`),
		badJSON("10001 nested objects in an unknown field", "generateinvoice", `{"amount": 1, "x": `+strings.Repeat(`{"a":`, 10001)+`1`+strings.Repeat("}", 10001)+`}`),
		// The error message quotes the body; it must still encode when the
		// body is not UTF-8 (writeError fell back to code 13 "internal
		// error" under status 400).
		badJSON("a lone invalid UTF-8 byte", "generateinvoice", "\xff"),
		badJSON("invalid UTF-8 after a number", "generateinvoice", "{\"amount\": 1\xff}"),
		badJSON("invalid UTF-8 in a key", "generateinvoice", "{\"amount\": 1, \"\xff\xfe\": 1}"),
		badJSON("NUL byte inside a string", "generateinvoice", "{\"amount\": 1, \"memo\": \"a\x00b\"}"),
		badJSON("NUL byte after the object", "generateinvoice", "{\"amount\": 1}\x00"),
		badJSON("duplicate field", "generateinvoice", `{"amount": 1, "amount": 2}`),
		callAPI("empty object", "payinvoice", `{}`, 400, codes.InvalidArgument, "invoice is required"),
		callAPI("body over 64 KiB", "generateinvoice", `{"amount": 1, "memo": "`+strings.Repeat("m", 70000)+`"}`, 413, codes.InvalidArgument, "larger than 65536 bytes"),
		callAPI("64 KiB of whitespace after valid JSON", "generateinvoice", `{"amount": 1}`+strings.Repeat(" ", 64<<10), 413, codes.InvalidArgument, "larger than"),
		with(callAPI("chunked body over 64 KiB", "payinvoice", `{"invoice": "`+strings.Repeat("q", 80000)+`"}`, 413, codes.InvalidArgument, "larger than"),
			func(r *badRequest) { r.chunked = true }),

		// Wrong types.
		badJSON("amount as object", "generateinvoice", `{"amount": {"value": 1}}`),
		badJSON("amount as array", "generateinvoice", `{"amount": [1]}`),
		badJSON("amount as bool", "generateinvoice", `{"amount": true}`),
		badJSON("amount as float 1.5", "generateinvoice", `{"amount": 1.5}`),
		badJSON("amount as hex string", "generateinvoice", `{"amount": "0x10"}`),
		badJSON("amount as word", "keysend", `{"pubkey": "`+node.PeerPubkey()+`", "amount": "ten"}`),
		badJSON("invoice as number", "payinvoice", `{"invoice": 12345}`),
		badJSON("pubkey as array", "keysend", `{"pubkey": ["02"], "amount": 1}`),
		// "1e4" is 10000 in proto3 JSON: refused for the amount, not read as 1.
		keysend("amount \"1e4\" is 10000, over max_payment", node.PeerPubkey(), `"1e4"`, 403, codes.PermissionDenied, "amount of 10000 sat exceeds"),

		// Amounts.
		callAPI("amount -1", "generateinvoice", `{"amount": -1}`, 400, codes.InvalidArgument, "amount must be between 1 and"),
		callAPI("amount 0", "generateinvoice", `{"amount": 0}`, 400, codes.InvalidArgument, "amount must be between 1 and"),
		badJSON("amount 2^63", "generateinvoice", `{"amount": 9223372036854775808}`),
		badJSON("amount \"9223372036854775808\"", "generateinvoice", `{"amount": "9223372036854775808"}`),
		callAPI("amount 21e14+1 (over the supply)", "generateinvoice", `{"amount": 2100000000000001}`, 400, codes.InvalidArgument, "amount must be between 1 and"),
		keysend("keysend amount -1", node.PeerPubkey(), `-1`, 400, codes.InvalidArgument, "positive"),
		keysend("keysend amount 0", node.PeerPubkey(), `0`, 400, codes.InvalidArgument, "positive"),
		keysend("keysend amount -2^63", node.PeerPubkey(), `"-9223372036854775808"`, 400, codes.InvalidArgument, "positive"),
		keysend("keysend amount 2^63-1", node.PeerPubkey(), `9223372036854775807`, 403, codes.PermissionDenied, "exceeds this server's max_payment of 1000"),
		keysend("keysend amount over max_payment", node.PeerPubkey(), `1001`, 403, codes.PermissionDenied, "exceeds this server's max_payment of 1000"),

		// Memos.
		callAPI("memo of 640 bytes", "generateinvoice", `{"amount": 1, "memo": "`+strings.Repeat("m", 640)+`"}`, 400, codes.InvalidArgument, "memo is 640 bytes, the limit is 639"),
		callAPI("memo of 10 KB", "generateinvoice", `{"amount": 1, "memo": "`+strings.Repeat("m", 10240)+`"}`, 400, codes.InvalidArgument, "memo is 10240 bytes"),
		badJSON("memo with invalid UTF-8", "generateinvoice", "{\"amount\": 1, \"memo\": \"caf\xe9\"}"),
		badJSON("memo with a lone surrogate escape", "generateinvoice", `{"amount": 1, "memo": "\udc00"}`),

		// Invoices.
		pay("empty invoice", "", 400, codes.InvalidArgument, "invoice is required"),
		pay("invoice of spaces", "   \t  ", 400, codes.InvalidArgument, "invoice is required"),
		pay("lightning: and nothing", "lightning:", 400, codes.InvalidArgument, "invalid invoice"),
		pay("random bech32", "lnbcrt1"+string(randomBech32), 400, codes.InvalidArgument, "invalid invoice"),
		pay("bad checksum", string(badChecksum), 400, codes.InvalidArgument, "invalid invoice"),
		pay("truncated invoice", valid[:len(valid)-20], 400, codes.InvalidArgument, "invalid invoice"),
		pay("one character flipped", string(flipped), 400, codes.InvalidArgument, "invalid invoice"),
		pay("invoice of 10k characters", "lnbcrt1"+strings.Repeat("q", 10000), 400, codes.InvalidArgument, "longer than 7089"),
		badJSON("invoice with invalid UTF-8", "payinvoice", "{\"invoice\": \""+valid[:20]+"\xc3\x28\"}"),
		callAPI("check a random invoice", "checkinvoice", `{"invoice": "lnbcrt1`+string(randomBech32)+`"}`, 400, codes.InvalidArgument, "invalid invoice"),
		pay("expired invoice", expired, 400, codes.FailedPrecondition, "expired"),
		pay("zero-amount invoice", zero, 400, codes.InvalidArgument, "zero-amount"),
		pay("mainnet invoice", foreign["mainnet"], 400, codes.InvalidArgument, "invoice is for mainnet, the node is on regtest"),
		pay("testnet invoice", foreign["testnet"], 400, codes.InvalidArgument, "invoice is for testnet"), // or testnet4: same prefix
		pay("signet invoice", foreign["signet"], 400, codes.InvalidArgument, "invoice is for signet, the node is on regtest"),
		callAPI("check a mainnet invoice", "checkinvoice", `{"invoice": "`+foreign["mainnet"]+`"}`, 400, codes.InvalidArgument, "invoice is for mainnet"),
		pay("invoice over max_payment", overMax, 403, codes.PermissionDenied, "amount of 1001 sat exceeds this server's max_payment of 1000"),
		pay("the node's own invoice (self-payment)", own.Invoice, 400, codes.InvalidArgument, "itself"),
		pay("invoice without payment address", noPayAddr, 400, codes.InvalidArgument, "payment address"),
		with(pay("invoice of an unreachable node", unreachable, 400, codes.FailedPrecondition, "no route"),
			func(r *badRequest) { r.sends = 1 }),

		// Keysend pubkeys.
		keysend("pubkey too short", "02abcd", "10", 400, codes.InvalidArgument, "33-byte public key"),
		keysend("pubkey too long", node.PeerPubkey()+"00", "10", 400, codes.InvalidArgument, "33-byte public key"),
		keysend("pubkey not hex", strings.Repeat("zz", 33), "10", 400, codes.InvalidArgument, "33-byte public key"),
		keysend("pubkey empty", "", "10", 400, codes.InvalidArgument, "33-byte public key"),
		keysend("pubkey off the curve", offCurve, "10", 400, codes.InvalidArgument, "not a valid public key"),
		keysend("pubkey with prefix 05", "05"+node.PeerPubkey()[2:], "10", 400, codes.InvalidArgument, "not a valid public key"),
		keysend("keysend to the node itself", node.Pubkey(), "1000", 400, codes.InvalidArgument, "itself"),

		// Paths and HTTP methods.
		callAPI("unknown method", "sendcoins", `{}`, 404, codes.NotFound, "methods are generateinvoice"),
		callAPI("no method", "", `{}`, 404, codes.NotFound, "not found"),
		callAPI("method in another case", "PayInvoice", `{}`, 404, codes.NotFound, "not found"),
		callAPI("method with a trailing segment", "payinvoice/extra", `{}`, 404, codes.NotFound, "not found"),
		with(callAPI("GET", "payinvoice", "", 405, codes.Unimplemented, "use POST"), func(r *badRequest) { r.method = http.MethodGet }),
		with(callAPI("PUT", "payinvoice", `{"invoice": "`+valid+`"}`, 405, codes.Unimplemented, "use POST"), func(r *badRequest) { r.method = http.MethodPut }),
		with(callAPI("DELETE", "keysend", "", 405, codes.Unimplemented, "use POST"), func(r *badRequest) { r.method = http.MethodDelete }),
		with(callAPI("PATCH", "generateinvoice", `{"amount": 1}`, 405, codes.Unimplemented, "use POST"), func(r *badRequest) { r.method = http.MethodPatch }),
		with(callAPI("OPTIONS", "generateinvoice", "", 405, codes.Unimplemented, "use POST"), func(r *badRequest) { r.method = http.MethodOptions }),

		// Content types: the body is read as JSON whatever they say.
		with(pay("text/plain with valid JSON is read as JSON", "lnbcrt1garbage", 400, codes.InvalidArgument, "invalid invoice"),
			func(r *badRequest) { r.header = http.Header{"Content-Type": {"text/plain"}} }),
		with(badJSON("form-encoded body", "payinvoice", "invoice="+valid),
			func(r *badRequest) {
				r.header = http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
			}),
		with(badJSON("multipart body", "generateinvoice", "--b\r\nContent-Disposition: form-data; name=\"amount\"\r\n\r\n1\r\n--b--\r\n"),
			func(r *badRequest) { r.header = http.Header{"Content-Type": {"multipart/form-data; boundary=b"}} }),
		with(badJSON("gzip-compressed body", "payinvoice", gz.String()),
			func(r *badRequest) { r.header = http.Header{"Content-Encoding": {"gzip"}} }),
		with(callAPI("application/grpc over HTTP/1.1 is REST", "payinvoice", `{}`, 400, codes.InvalidArgument, "invoice is required"),
			func(r *badRequest) { r.header = http.Header{"Content-Type": {"application/grpc"}} }),

		// Paywall: garbage credentials.
		paywall("random bytes", auth(string(randomHeader)), 402, "payment required"),
		paywall("only the scheme", auth("L402"), 401, "malformed"),
		paywall("scheme and spaces", auth("L402     \t "), 401, "malformed"),
		paywall("L402 :", auth("L402 :"), 401, "malformed"),
		paywall("L402 a:b:c", auth("L402 a:b:c"), 401, "malformed"),
		paywall("token not base64", auth("L402 !!!!$$$$:"+pre), 401, "malformed"),
		paywall("base64 of random bytes", auth("L402 "+base64.StdEncoding.EncodeToString(randomToken)+":"+pre), 401, bad),
		paywall("token with invalid UTF-8", auth("L402 "+c.Body.Token[:20]+"\xff\xfe"+c.Body.Token[20:]+":"+pre), 401, "malformed"),
		paywall("31-byte preimage", auth("L402 "+c.Body.Token+":"+pre[:62]), 401, "malformed"),
		paywall("33-byte preimage", auth("L402 "+c.Body.Token+":"+pre+"00"), 401, "malformed"),
		paywall("preimage not hex", auth("L402 "+c.Body.Token+":"+strings.Repeat("zz", 32)), 401, "malformed"),
		paywall("100 comma-joined tokens, the paid one last", auth("L402 "+strings.Repeat("AAAA,", 99)+c.Body.Token+":"+pre), 401, "malformed"),
		paywall("9 KB header", auth("L402 "+strings.Repeat("A", 9000)+":"+pre), 401, "malformed"),
		paywall("50 Authorization headers", auth(fiftyHeaders...), 401, "malformed"),
		paywall("LSAT scheme, garbage", auth("LSAT x:y"), 401, "malformed"),
		paywall("another scheme only", auth("Bearer abc.def.ghi"), 402, "payment required"),
		with(paywall("garbage with the wait header", auth("L402 AAAA:"+pre), 401, "malformed"),
			func(r *badRequest) { r.header.Set(waitHeader, "1") }),
		with(paywall("POST with a body and garbage", auth("L402 AAAA"), 401, "malformed"),
			func(r *badRequest) { r.method, r.body = http.MethodPost, strings.Repeat("x", 100000) }),

		// Paywall: cookies.
		paywall("empty cookie", cookie(""), 401, "malformed"),
		paywall("5 KB cookie", cookie(strings.Repeat("A", 5000)), 401, "malformed"),
		paywall("cookie not base64", cookie("!!!!:zz"), 401, "malformed"),
		paywall("cookie with a wrong preimage", cookie(c.Body.Token+":"+strings.Repeat("00", 32)), 401, "preimage does not match"),
		paywall("cookie with an unpaid token", cookie(unpaid.Body.Token), 401, "invoice not paid yet"),

		// Paywall: tokens that are almost right.
		paywall("wrong preimage", auth(l402Auth(c.Body.Token, [32]byte{1})), 401, "preimage does not match"),
		paywall("preimage of another invoice", auth("L402 "+unpaid.Body.Token+":"+pre), 401, "preimage does not match"),
		paywall("unpaid token without preimage", auth("L402 "+unpaid.Body.Token), 401, "invoice not paid yet"),
		paywall("caveat changed, signature kept", auth("L402 "+badResign(t, m, m.Id(), changed)+":"+pre), 401, "invalid token signature"),
		paywall("caveat appended, signature kept", auth("L402 "+badResign(t, m, m.Id(), append(caveats[:len(caveats):len(caveats)], "api_valid_until=99999999999"))+":"+pre), 401, "invalid token signature"),
		paywall("caveat removed, signature kept", auth("L402 "+badResign(t, m, m.Id(), withoutPrice)+":"+pre), 401, "invalid token signature"),
		paywall("payment hash swapped, signature kept", auth("L402 "+badResign(t, m, swappedID, caveats)+":"+pre), 401, "invalid token signature"),
		paywall("attenuated with another price", auth("L402 "+attenuate(c.Body.Token, "api_price=1")+":"+pre), 401, "not valid for this price"),
		paywall("attenuated with another service", auth("L402 "+attenuate(c.Body.Token, "services=other:0")+":"+pre), 401, "not valid for this service"),
		paywall("expired token attenuated with a later expiry", auth("L402 "+attenuate(expiredToken, "api_valid_until=99999999999")+":"+pre), 401, "token expired"),
		paywall("token from another root key", auth("L402 "+fromOtherKey+":"+pre), 401, "unknown root key"),
		paywall("expired token", auth("L402 "+expiredToken+":"+pre), 401, "token expired"),
		paywall("token for another service", auth("L402 "+otherService+":"+pre), 401, "not valid for this service"),
		paywall("token for another price", auth("L402 "+otherPrice+":"+pre), 401, "not valid for this price"),
		paywall("token without caveats", auth("L402 "+noCaveats+":"+pre), 401, "not valid for this service"),
	}

	type result struct {
		name   string
		status int
		code   string
	}
	var results []result
	sendsBefore := node.Calls("SendPaymentV2")
	wantSends := 0
	for _, r := range rows {
		wantSends += r.sends
		t.Run(r.name, func(t *testing.T) {
			before := node.Calls("SendPaymentV2")
			res := result{name: r.name, code: "-"}
			defer func() { results = append(results, res) }()
			got, err := badTry(client, base, r)
			if err != nil {
				res.code = "no answer"
				t.Fatalf("%v (a hang, or a panic that dropped the connection)", err)
			}
			res.status = got.status
			if sends := node.Calls("SendPaymentV2") - before; sends != r.sends {
				t.Errorf("SendPaymentV2 calls = %d, want %d", sends, r.sends)
			}
			if got.status < 400 || got.status > 499 {
				t.Errorf("status %d is not a 4xx: %.300s", got.status, got.raw)
			} else if got.status != r.status {
				t.Errorf("status = %d, want %d: %.300s", got.status, r.status, got.raw)
			}
			if !strings.HasPrefix(got.header.Get("Content-Type"), "application/json") {
				t.Fatalf("Content-Type %q, want JSON: %.300s", got.header.Get("Content-Type"), got.raw)
			}
			var body map[string]any
			if err := json.Unmarshal([]byte(got.raw), &body); err != nil {
				t.Fatalf("body is not a JSON object: %v: %.300s", err, got.raw)
			}
			msg, _ := body["message"].(string)
			if strings.TrimSpace(msg) == "" {
				t.Errorf("no message: %.300s", got.raw)
			} else if !strings.Contains(msg, r.message) {
				t.Errorf("message %q does not contain %q", msg, r.message)
			}
			if strings.Contains(got.raw, badUpstream) {
				t.Errorf("upstream content served: %.300s", got.raw)
			}
			if r.paywall {
				if inv, _ := body["invoice"].(string); inv == "" || len(got.header.Values("WWW-Authenticate")) == 0 {
					t.Errorf("%d without a fresh challenge: %.300s", got.status, got.raw)
				}
				return
			}
			code, ok := body["code"].(float64)
			res.code = fmt.Sprint(code)
			if !ok || codes.Code(code) != r.code {
				t.Errorf("code = %v, want %d (%s)", body["code"], r.code, r.code)
			}
			if details, ok := body["details"].([]any); !ok || len(details) != 0 {
				t.Errorf("details = %v, want []", body["details"])
			}
			if got.status == http.StatusMethodNotAllowed && got.header.Get("Allow") != http.MethodPost {
				t.Errorf("Allow = %q, want POST", got.header.Get("Allow"))
			}
		})
	}

	// No money moved: only the rows that had to reach the node did, and
	// their payments failed; no invoice of the table was paid.
	if got := node.Calls("SendPaymentV2") - sendsBefore; got != wantSends {
		t.Errorf("SendPaymentV2 calls during the table = %d, want %d (all failed)", got, wantSends)
	}
	router := routerrpc.NewRouterClient(node.Dial(t))
	for _, h := range mustNotPay {
		if st, ok := badPaymentStatus(t, router, h); ok {
			t.Errorf("the node has a payment %s for invoice %x, want none", st, h[:4])
		}
	}
	if st, ok := badPaymentStatus(t, router, unreachableHash); !ok || st != lnrpc.Payment_FAILED {
		t.Errorf("payment to the unreachable node: %s (found %v), want FAILED", st, ok)
	}
	if !t.Failed() {
		// Upstream content is served only for a paid token.
		if r := badSend(t, client, base, badRequest{path: "/paid/x", header: auth(l402Auth(c.Body.Token, preimage)), paywall: true}); r.status != http.StatusOK {
			t.Errorf("paid token after the table: %d %s", r.status, r.raw)
		}
	}

	// No budget was kept by the refused requests: payments of 1000 sats
	// (1000 + 10 reserved, 1001 spent) fit the 5000 budget four times.
	paid := 0
	for range 5 {
		inv, _ := node.NewPayableInvoice(1000)
		r := badSend(t, client, base, badRequest{path: api + "payinvoice", body: `{"invoice": "` + inv + `"}`})
		if r.status != http.StatusOK {
			if r.status != http.StatusTooManyRequests || !strings.Contains(r.raw, "budget exhausted") {
				t.Errorf("payment after the table: %d %s", r.status, r.raw)
			}
			break
		}
		paid++
	}
	if paid != 4 {
		t.Errorf("after the table %d payments of 1000 sats fit the budget of 5000, want 4: refused requests kept budget reservations", paid)
	}

	// Summary.
	counts := map[int]int{}
	var lines []string
	for _, r := range results {
		counts[r.status]++
		lines = append(lines, fmt.Sprintf("%3d %-2s %s", r.status, r.code, r.name))
		if r.status == 0 {
			lines[len(lines)-1] = fmt.Sprintf("  - %s %s", r.code, r.name)
		}
	}
	var hist []string
	for s, n := range counts {
		hist = append(hist, fmt.Sprintf("%d×%d", s, n))
	}
	sort.Strings(hist)
	t.Logf("%d malformed requests (status, gRPC code for the API, case):\n%s\nby status: %s",
		len(results), strings.Join(lines, "\n"), strings.Join(hist, " "))
}

// TestBadInputDecisions pins down the lenient cases TestBadInput
// documents: they succeed.
func TestBadInputDecisions(t *testing.T) {
	api, _ := startAPI(t, "")
	for _, body := range []string{`{"amount": "1e3"}`, `{"amount": 1e3}`, `{"amount": 1000.0}`} {
		resp := post(t, api+"generateinvoice", body)
		invoice, _ := resp.Body["invoice"].(string)
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: %d %s", body, resp.Status, resp.Raw)
		}
		if inv := badDecode(t, invoice); inv.MilliSat == nil || inv.MilliSat.ToSatoshis() != 1000 {
			t.Errorf("%s: invoice of %v msat, want 1000 sats", body, inv.MilliSat)
		}
	}
	resp := postWithHeader(t, api+"generateinvoice", `{"amount": 1}`, http.Header{"Content-Type": {"text/plain"}})
	if resp.Status != http.StatusOK {
		t.Errorf("text/plain with valid JSON: %d %s", resp.Status, resp.Raw)
	}
}

// TestBadInputGRPC sends bad requests over gRPC, in a child process: a
// panic in a gRPC handler is not recovered (grpc-go runs handlers on its own
// goroutines) and ends the whole Caddy process, so it must not happen.
func TestBadInputGRPC(t *testing.T) {
	if os.Getenv("BADINPUT_GRPC_CHILD") != "1" {
		args := []string{"-test.run=^TestBadInputGRPC$", "-test.count=1", "-test.v", "-test.timeout=2m"}
		if testing.Short() {
			args = append(args, "-test.short")
		}
		cmd := exec.Command(os.Args[0], args...)
		cmd.Env = append(os.Environ(), "BADINPUT_GRPC_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			var lines []string
			for _, l := range strings.Split(string(out), "\n") {
				if !strings.HasPrefix(l, `{"level"`) {
					lines = append(lines, l)
				}
			}
			t.Fatalf("the process serving gRPC failed: %v\n%s", err, strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
		return
	}

	api, node := startAPI(t, "{\n\t\tmax_payment 1000\n\t\tbudget 5000\n\t}")
	target := strings.TrimSuffix(strings.TrimPrefix(api, "http://"), "/v1/lightning/")
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := lightningpb.NewLightningClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	own, err := client.GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: 10})
	if err != nil {
		t.Fatal(err)
	}
	mainnet, _ := lndtest.Start(t, lndtest.WithNetwork("mainnet")).NewPayableInvoice(10)
	zero, _ := node.NewPayableInvoice(0)
	overMax, _ := node.NewPayableInvoice(1001)
	peer := node.PeerPubkey()
	gen := func(r *lightningpb.GenerateInvoiceRequest) error {
		_, err := client.GenerateInvoice(ctx, r)
		return err
	}
	pay := func(invoice string) error {
		_, err := client.PayInvoice(ctx, &lightningpb.PayInvoiceRequest{Invoice: invoice})
		return err
	}
	keysend := func(pubkey string, amount int64) error {
		_, err := client.Keysend(ctx, &lightningpb.KeysendRequest{Pubkey: pubkey, Amount: amount})
		return err
	}
	raw := func(method string, body []byte) error {
		var out []byte
		return conn.Invoke(ctx, "/lightning.Lightning/"+method, body, &out, grpc.ForceCodecV2(badRawCodec{}))
	}
	for _, c := range []struct {
		name string
		err  error
		code codes.Code
	}{
		{"amount -1", gen(&lightningpb.GenerateInvoiceRequest{Amount: -1}), codes.InvalidArgument},
		{"amount 2^63-1", gen(&lightningpb.GenerateInvoiceRequest{Amount: math.MaxInt64}), codes.InvalidArgument},
		{"memo of 640 bytes", gen(&lightningpb.GenerateInvoiceRequest{Amount: 1, Memo: strings.Repeat("m", 640)}), codes.InvalidArgument},
		{"empty invoice", pay(""), codes.InvalidArgument},
		{"garbage invoice", pay("lnbcrt1garbage"), codes.InvalidArgument},
		{"mainnet invoice", pay(mainnet), codes.InvalidArgument},
		{"zero-amount invoice", pay(zero), codes.InvalidArgument},
		{"invoice over max_payment", pay(overMax), codes.PermissionDenied},
		{"own invoice", pay(own.Invoice), codes.InvalidArgument},
		{"check garbage", func() error {
			_, err := client.CheckInvoice(ctx, &lightningpb.CheckInvoiceRequest{Invoice: "x"})
			return err
		}(), codes.InvalidArgument},
		{"keysend short pubkey", keysend("02abcd", 10), codes.InvalidArgument},
		{"keysend to itself", keysend(node.Pubkey(), 10), codes.InvalidArgument},
		{"keysend 2^63-1", keysend(peer, math.MaxInt64), codes.PermissionDenied},
		{"keysend 0", keysend(peer, 0), codes.InvalidArgument},
		{"keysend -1", keysend(peer, -1), codes.InvalidArgument},
		{"keysend -2^63", keysend(peer, math.MinInt64), codes.InvalidArgument},
		{"protobuf garbage", raw("Keysend", []byte{0xff, 0xff, 0xff}), codes.Internal},
		{"invalid UTF-8 in a string", raw("PayInvoice", []byte{0x0a, 0x02, 0xc3, 0x28}), codes.Internal},
		// A field of the wrong wire type is an unknown field: amount stays 0.
		{"wrong wire type", raw("GenerateInvoice", []byte{0x0a, 0x01, 0x01}), codes.InvalidArgument},
		{"unknown method", raw("SendCoins", nil), codes.Unimplemented},
	} {
		if status.Code(c.err) != c.code {
			t.Errorf("%s: %v, want code %s", c.name, c.err, c.code)
		}
	}
	if _, err := client.GenerateInvoice(ctx, &lightningpb.GenerateInvoiceRequest{Amount: 1}); err != nil {
		t.Errorf("after the bad requests: %v", err)
	}
}

// badRawCodec sends and receives raw protobuf bytes.
type badRawCodec struct{}

func (badRawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.([]byte))}, nil
}

func (badRawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (badRawCodec) Name() string { return "proto" }

type badResponse struct {
	status int
	header http.Header
	raw    string
}

// badSend sends r to base with client, which bounds the time it may take.
func badSend(t *testing.T, client *http.Client, base string, r badRequest) badResponse {
	t.Helper()
	resp, err := badTry(client, base, r)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func badTry(client *http.Client, base string, r badRequest) (badResponse, error) {
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
		if r.chunked {
			body = io.MultiReader(body)
		}
	}
	req, err := http.NewRequest(method, base+r.path, body)
	if err != nil {
		return badResponse{}, err
	}
	if !r.paywall {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, vs := range r.header {
		req.Header.Del(k)
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := client.Do(req)
	if err != nil {
		return badResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return badResponse{}, fmt.Errorf("read the answer to %s %s: %w", method, r.path, err)
	}
	return badResponse{status: resp.StatusCode, header: resp.Header, raw: string(raw)}, nil
}

// badForeignInvoice signs an invoice of sats for a random hash with a
// random node key: one with a payment address that no route reaches, or
// one without, which lnd refuses to pay.
func badForeignInvoice(t *testing.T, params *chaincfg.Params, sats int64, payAddr bool) (string, [32]byte) {
	t.Helper()
	key, err := btcec.NewPrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	var hash, addr [32]byte
	rand.Read(hash[:])
	rand.Read(addr[:])
	opts := []func(*zpay32.Invoice){zpay32.Amount(lnwire.MilliSatoshi(sats * 1000)), zpay32.Description("bad input")}
	if payAddr {
		opts = append(opts, zpay32.PaymentAddr(addr))
	}
	inv, err := zpay32.NewInvoice(params, hash, time.Now(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	s, err := lndtest.SignInvoice(inv, key)
	if err != nil {
		t.Fatal(err)
	}
	return s, hash
}

// badOffCurveKey returns a hex 33-byte compressed key whose x is not on
// secp256k1.
func badOffCurveKey(t *testing.T) string {
	t.Helper()
	for i := range 256 {
		k := make([]byte, 33)
		k[0], k[32] = 0x02, byte(i)
		k[1] = 0x42
		if _, err := btcec.ParsePubKey(k); err != nil {
			return hex.EncodeToString(k)
		}
	}
	t.Fatal("no off-curve x found")
	return ""
}

func badDecode(t *testing.T, invoice string) *zpay32.Invoice {
	t.Helper()
	inv, err := zpay32.Decode(invoice, &chaincfg.RegressionNetParams)
	if err != nil {
		t.Fatalf("decode %q: %v", invoice, err)
	}
	return inv
}

// badDecodeAnyNetwork returns the payment hash of an invoice of any network.
func badDecodeAnyNetwork(t *testing.T, invoice string) [32]byte {
	t.Helper()
	for _, p := range []*chaincfg.Params{&chaincfg.MainNetParams, &chaincfg.TestNet3Params, &chaincfg.SigNetParams} {
		if inv, err := zpay32.Decode(invoice, p); err == nil {
			return *inv.PaymentHash
		}
	}
	t.Fatalf("cannot decode %q", invoice)
	return [32]byte{}
}

// badPaymentStatus returns the state of the node's payment to hash, and
// false if there is none.
func badPaymentStatus(t *testing.T, router routerrpc.RouterClient, hash [32]byte) (lnrpc.Payment_PaymentStatus, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	stream, err := router.TrackPaymentV2(ctx, &routerrpc.TrackPaymentRequest{PaymentHash: hash[:], NoInflightUpdates: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := stream.Recv()
	if status.Code(err) == codes.NotFound {
		return 0, false
	}
	if err != nil {
		t.Fatalf("track payment %x: %v", hash[:4], err)
	}
	return p.Status, true
}

// badMacaroon decodes a token with gopkg.in/macaroon.v2.
func badMacaroon(t *testing.T, token string) *macaroon.Macaroon {
	t.Helper()
	b, err := macaroon.Base64Decode([]byte(token))
	if err != nil {
		t.Fatal(err)
	}
	var m macaroon.Macaroon
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	return &m
}

func badEncode(t *testing.T, m *macaroon.Macaroon) string {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func badCaveats(m *macaroon.Macaroon) []string {
	var out []string
	for _, c := range m.Caveats() {
		out = append(out, string(c.Id))
	}
	return out
}

// badResign builds a token with identifier id and caveats but the
// signature of orig: what an attacker can write without the root key.
func badResign(t *testing.T, orig *macaroon.Macaroon, id []byte, caveats []string) string {
	t.Helper()
	m, err := macaroon.New(make([]byte, 32), id, orig.Location(), macaroon.V2)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range caveats {
		if err := m.AddFirstPartyCaveat([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The signature field is last in the V2 binary format.
	copy(b[len(b)-32:], orig.Signature())
	return base64.StdEncoding.EncodeToString(b)
}
