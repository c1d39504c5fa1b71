package payment

import (
	"bytes"
	"crypto/sha256"
	"testing"
	"time"
)

const (
	testRealm   = "api.example.com"
	testInvoice = "lnbcrt1u1pjexampleinvoice"
	testPrice   = 100
)

var (
	testSecret    = bytes.Repeat([]byte{0x42}, 32)
	testOldSecret = bytes.Repeat([]byte{0x17}, 32)

	testPreimage = [32]byte{0xde, 0xad, 0xbe, 0xef, 1, 2, 3}
	testHash     = sha256.Sum256(testPreimage[:])

	testNow     = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	testExpires = testNow.Add(5 * time.Minute)
)

func testVerifier(t testing.TB, secrets ...[]byte) *Verifier {
	t.Helper()
	if len(secrets) == 0 {
		secrets = [][]byte{testSecret}
	}
	b, err := NewBinder(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return &Verifier{Realm: testRealm, Binder: b}
}

// chargeChallenge mints a charge challenge for testPrice over testHash, as
// a server does, and lets edit change it before binding.
func chargeChallenge(t testing.TB, b *Binder, edit func(*ChargeRequest, *Challenge)) Challenge {
	t.Helper()
	r := ChargeRequest{Amount: testPrice, Description: "Q&A <api>", MethodDetails: MethodDetails{
		Invoice: testInvoice, PaymentHash: testHash, Network: NetworkRegtest,
	}}
	c := Challenge{Realm: testRealm, Method: MethodLightning, Intent: IntentCharge, Expires: FormatTime(testExpires)}
	if edit != nil {
		edit(&r, &c)
	}
	var err error
	if c.Request, err = r.Encode(); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// sessionChallenge mints a session deposit challenge over hash.
func sessionChallenge(t testing.TB, b *Binder, hash [32]byte, edit func(*SessionRequest, *Challenge)) Challenge {
	t.Helper()
	r := SessionRequest{Amount: 2, UnitType: "request", DepositInvoice: testInvoice, PaymentHash: hash, DepositAmount: 40, IdleTimeout: 300}
	c := Challenge{Realm: testRealm, Method: MethodLightning, Intent: IntentSession, Expires: FormatTime(testExpires)}
	if edit != nil {
		edit(&r, &c)
	}
	var err error
	if c.Request, err = r.Encode(); err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(&c); err != nil {
		t.Fatal(err)
	}
	return c
}

// present builds the Authorization value answering c with payload, as a
// client does, and parses it back as a server does.
func present(t testing.TB, c Challenge, payload []byte) (string, Credential) {
	t.Helper()
	cred := Credential{Challenge: c, Payload: payload}
	v, err := cred.Format()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseAuthorization([]string{v})
	if err != nil {
		t.Fatal(err)
	}
	return v, got
}
