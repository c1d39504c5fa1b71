package payment

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

func TestVerifyCharge(t *testing.T) {
	v := testVerifier(t, testSecret, testOldSecret)
	b := v.Binder
	good := chargeChallenge(t, b, nil)
	_, cred := present(t, good, ChargePayloadJSON(testPreimage))
	got, err := v.VerifyCharge(&cred, testPrice, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got.PaymentHash != testHash || got.ChallengeID != good.ID || !got.Expires.Equal(testExpires) ||
		got.Request.MethodDetails.Invoice != testInvoice || got.Request.Description != "Q&A <api>" {
		t.Fatalf("VerifyCharge = %+v", got)
	}
	old, _ := NewBinder(testOldSecret)
	_, prev := present(t, chargeChallenge(t, old, nil), ChargePayloadJSON(testPreimage))
	if _, err := v.VerifyCharge(&prev, testPrice, testNow); err != nil {
		t.Fatalf("challenge of the previous secret: %v", err)
	}

	stranger, _ := NewBinder([]byte("someone else's secret"))
	other := [32]byte{9}
	tests := []struct {
		name    string
		c       Challenge
		payload []byte
		price   int64
		now     time.Time
		want    error
		realm   string
	}{
		{name: "other secret", c: chargeChallenge(t, stranger, nil), want: ErrInvalidChallenge},
		{name: "tampered amount", c: tamper(t, good, func(r *ChargeRequest) { r.Amount = 1 }), want: ErrInvalidChallenge},
		{name: "tampered hash", c: tamper(t, good, func(r *ChargeRequest) { r.MethodDetails.PaymentHash = sha256.Sum256(other[:]) }), want: ErrInvalidChallenge},
		{name: "expired", c: good, now: testExpires, want: ErrExpired},
		{name: "no expiry", c: chargeChallenge(t, b, func(_ *ChargeRequest, c *Challenge) { c.Expires = "" }), want: ErrExpired},
		{name: "other price", c: good, price: testPrice + 1, want: ErrWrongAmount},
		{name: "cheaper route's challenge", c: chargeChallenge(t, b, func(r *ChargeRequest, _ *Challenge) { r.Amount = 1 }), want: ErrWrongAmount},
		{name: "wrong preimage", c: good, payload: ChargePayloadJSON(other), want: ErrInvalidPreimage},
		{name: "hash as preimage", c: good, payload: ChargePayloadJSON(testHash), want: ErrInvalidPreimage},
		{name: "no preimage", c: good, payload: []byte(`{}`), want: ErrMalformed},
		{name: "short preimage", c: good, payload: []byte(`{"preimage":"abcd"}`), want: ErrMalformed},
		{name: "other realm", c: good, realm: "api.example.org", want: ErrWrongRealm},
		{name: "session intent", c: sessionChallenge(t, b, testHash, nil), want: ErrUnsupported},
		{name: "other method", c: chargeChallenge(t, b, func(_ *ChargeRequest, c *Challenge) { c.Method = "stripe" }), want: ErrUnsupported},
		{name: "digest", c: chargeChallenge(t, b, func(_ *ChargeRequest, c *Challenge) { c.Digest = "sha-256=:X48E9q:" }), want: ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.payload == nil {
				tt.payload = ChargePayloadJSON(testPreimage)
			}
			if tt.price == 0 {
				tt.price = testPrice
			}
			if tt.now.IsZero() {
				tt.now = testNow
			}
			vv := *v
			if tt.realm != "" {
				vv.Realm = tt.realm
			}
			c := Credential{Challenge: tt.c, Payload: tt.payload}
			if got, err := vv.VerifyCharge(&c, tt.price, tt.now); !errors.Is(err, tt.want) {
				t.Fatalf("VerifyCharge = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// tamper re-encodes c's charge request after edit, keeping the id.
func tamper(t *testing.T, c Challenge, edit func(*ChargeRequest)) Challenge {
	t.Helper()
	r, err := DecodeChargeRequest(c.Request)
	if err != nil {
		t.Fatal(err)
	}
	edit(&r)
	if c.Request, err = r.Encode(); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestVerifySession(t *testing.T) {
	v := testVerifier(t)
	b := v.Binder
	pre := hex.EncodeToString(testPreimage[:])
	id := hex.EncodeToString(testHash[:])
	topUpPre := [32]byte{7, 7, 7}
	topUpHash := sha256.Sum256(topUpPre[:])
	open := sessionChallenge(t, b, testHash, nil)
	topUp := sessionChallenge(t, b, topUpHash, nil)
	// A bearer echoes some earlier challenge, here one long expired.
	bearerEcho := sessionChallenge(t, b, topUpHash, func(_ *SessionRequest, c *Challenge) { c.Expires = "2025-01-01T00:00:00Z" })

	payload := func(s string) []byte { return []byte(s) }
	openPayload := payload(`{"action":"open","preimage":"` + pre + `","returnInvoice":"lnbcrt1pret"}`)
	ok := []struct {
		name    string
		c       Challenge
		payload []byte
		want    VerifiedSession
	}{
		{"open", open, openPayload, VerifiedSession{Action: ActionOpen, SessionID: testHash, PaymentHash: testHash, DepositSats: 40, ReturnInvoice: "lnbcrt1pret"}},
		{"topUp", topUp, payload(`{"action":"topUp","sessionId":"` + id + `","topUpPreimage":"` + hex.EncodeToString(topUpPre[:]) + `"}`),
			VerifiedSession{Action: ActionTopUp, SessionID: testHash, PaymentHash: topUpHash, DepositSats: 40}},
		{"bearer", bearerEcho, payload(`{"action":"bearer","sessionId":"` + id + `","preimage":"` + pre + `"}`), VerifiedSession{Action: ActionBearer, SessionID: testHash}},
		{"close", bearerEcho, payload(`{"action":"close","sessionId":"` + id + `","preimage":"` + pre + `"}`), VerifiedSession{Action: ActionClose, SessionID: testHash}},
	}
	for _, tt := range ok {
		t.Run(tt.name, func(t *testing.T) {
			c := Credential{Challenge: tt.c, Payload: tt.payload}
			got, err := v.VerifySession(&c, 2, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if got.Action != tt.want.Action || got.SessionID != tt.want.SessionID || got.PaymentHash != tt.want.PaymentHash ||
				got.DepositSats != tt.want.DepositSats || got.ReturnInvoice != tt.want.ReturnInvoice ||
				got.ChallengeID != tt.c.ID || got.Request.Amount != 2 || got.Request.IdleTimeout != 300 {
				t.Fatalf("VerifySession = %+v", got)
			}
		})
	}

	bad := []struct {
		name    string
		c       Challenge
		payload []byte
		price   int64
		want    error
	}{
		{"open expired", bearerEcho, openPayload, 2, ErrExpired},
		{"open at another price", open, openPayload, 3, ErrWrongAmount},
		{"deposit below a unit", sessionChallenge(t, b, testHash, func(r *SessionRequest, _ *Challenge) { r.Amount, r.DepositAmount = 50, 40 }), openPayload, 50, ErrWrongAmount},
		{"no deposit offered", sessionChallenge(t, b, testHash, func(r *SessionRequest, _ *Challenge) { r.DepositInvoice, r.DepositAmount = "", 0 }), openPayload, 2, ErrMalformed},
		{"open with another preimage", topUp, openPayload, 2, ErrInvalidPreimage},
		{"open with a bad return invoice", open, payload(`{"action":"open","preimage":"` + pre + `","returnInvoice":"lnbc 1"}`), 2, ErrInvalidReturnInvoice},
		{"topUp replaying the open preimage", topUp, payload(`{"action":"topUp","sessionId":"` + id + `","topUpPreimage":"` + pre + `"}`), 2, ErrInvalidPreimage},
		{"topUp expired", bearerEcho, payload(`{"action":"topUp","sessionId":"` + id + `","topUpPreimage":"` + hex.EncodeToString(topUpPre[:]) + `"}`), 2, ErrExpired},
		{"bearer of another session", bearerEcho, payload(`{"action":"bearer","sessionId":"` + hex.EncodeToString(topUpHash[:]) + `","preimage":"` + pre + `"}`), 2, ErrInvalidPreimage},
		{"close with the hash", bearerEcho, payload(`{"action":"close","sessionId":"` + id + `","preimage":"` + id + `"}`), 2, ErrInvalidPreimage},
		{"bearer on a charge echo", chargeChallenge(t, b, nil), payload(`{"action":"bearer","sessionId":"` + id + `","preimage":"` + pre + `"}`), 2, ErrUnsupported},
		{"bearer on a forged echo", Challenge{ID: open.ID, Realm: testRealm, Method: MethodLightning, Intent: IntentSession, Request: topUp.Request},
			payload(`{"action":"bearer","sessionId":"` + id + `","preimage":"` + pre + `"}`), 2, ErrInvalidChallenge},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			c := Credential{Challenge: tt.c, Payload: tt.payload}
			if got, err := v.VerifySession(&c, tt.price, testNow); !errors.Is(err, tt.want) {
				t.Fatalf("VerifySession = %+v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// TestVerifyAllocations pins the allocations of the charge hot path:
// header to verified payment hash.
func TestVerifyAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	v := testVerifier(t)
	values, _ := chargeAuthorization(t, v)
	n := testing.AllocsPerRun(200, func() {
		c, err := ParseAuthorization(values)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.VerifyCharge(&c, testPrice, testNow); err != nil {
			t.Fatal(err)
		}
	})
	if n > maxVerifyAllocs {
		t.Fatalf("ParseAuthorization+VerifyCharge allocates %v times, want <= %d", n, maxVerifyAllocs)
	}
}

const maxVerifyAllocs = 12

func chargeAuthorization(t testing.TB, v *Verifier) ([]string, Challenge) {
	c := chargeChallenge(t, v.Binder, func(r *ChargeRequest, _ *Challenge) {
		// A real invoice's length.
		r.MethodDetails.Invoice = "lnbcrt1u1pnxyzpp5" + hex.EncodeToString(testHash[:]) + "dqqcqzzsxqyz5vqsp5" + hex.EncodeToString(testHash[:]) + "9qyyssq" + hex.EncodeToString(testPreimage[:])
	})
	h, _ := present(t, c, ChargePayloadJSON(testPreimage))
	return []string{"Basic dXNlcjpwYXNz", h}, c
}

func BenchmarkVerifyCharge(b *testing.B) {
	v := testVerifier(b)
	values, _ := chargeAuthorization(b, v)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		c, err := ParseAuthorization(values)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.VerifyCharge(&c, testPrice, testNow); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

func BenchmarkVerifySessionBearer(b *testing.B) {
	v := testVerifier(b)
	c := sessionChallenge(b, v.Binder, testHash, nil)
	h, _ := present(b, c, []byte(`{"action":"bearer","sessionId":"`+hex.EncodeToString(testHash[:])+`","preimage":"`+hex.EncodeToString(testPreimage[:])+`"}`))
	values := []string{h}
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		c, err := ParseAuthorization(values)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.VerifySession(&c, 2, testNow); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// BenchmarkChargeChallenge is the per-402 work: encode the request, bind
// the id, format the header.
func BenchmarkChargeChallenge(b *testing.B) {
	v := testVerifier(b)
	r := ChargeRequest{Amount: testPrice, Description: "Q&A", MethodDetails: MethodDetails{Invoice: testInvoice, PaymentHash: testHash, Network: NetworkRegtest}}
	exp := FormatTime(testExpires)
	b.ReportAllocs()
	start := cpuTime()
	for b.Loop() {
		req, err := r.Encode()
		if err != nil {
			b.Fatal(err)
		}
		c := Challenge{Realm: testRealm, Method: MethodLightning, Intent: IntentCharge, Request: req, Expires: exp}
		if err := v.Binder.Bind(&c); err != nil {
			b.Fatal(err)
		}
		if _, err := c.Format(); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}
