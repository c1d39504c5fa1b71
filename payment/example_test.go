package payment

import (
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"
)

// TestWorkedExample pins the worked example of payment-dialects.md §2 and
// the id Go's default json.Marshal would give it (it writes "Q\u0026A").
func TestWorkedExample(t *testing.T) {
	const (
		wantRequest = "eyJhbW91bnQiOiIxMDAiLCJjdXJyZW5jeSI6InNhdCIsImRlc2NyaXB0aW9uIjoiUSZBIiwibWV0aG9kRGV0YWlscyI6eyJpbnZvaWNlIjoibG5iYzF1MXBleGFtcGxlIiwibmV0d29yayI6Im1haW5uZXQiLCJwYXltZW50SGFzaCI6IjcyY2Q2ZTg0MjJjNDA3ZmI2ZDA5ODY5MGYxMTMwYjdkZWQ3ZWMyZjdmNWUxZDMwYmQ5ZDUyMWYwMTUzNjM3OTMifX0"
		wantID      = "AMyMyVEcAt_zXTrnrRzfiMxReJE-yVoPDUnIiK321Oc"
		pitfallID   = "a1j76kLtILFoMU3wQikzsfsV4tP4jNjLpUMRh0h39B8"
	)
	var preimage [32]byte
	for i := range preimage {
		preimage[i] = 1
	}
	r := ChargeRequest{Amount: 100, Description: "Q&A", MethodDetails: MethodDetails{
		Invoice: "lnbc1u1pexample", PaymentHash: sha256.Sum256(preimage[:]), Network: NetworkMainnet,
	}}
	req, err := r.Encode()
	if err != nil || req != wantRequest {
		t.Fatalf("request = %q, %v\nwant %q", req, err, wantRequest)
	}
	c := Challenge{Realm: "api.example.com", Method: MethodLightning, Intent: IntentCharge, Request: req, Expires: "2026-01-01T00:05:00Z"}
	if in := string(appendHMACInput(nil, &c)); in != "api.example.com|lightning|charge|"+wantRequest+"|2026-01-01T00:05:00Z||" {
		t.Fatalf("HMAC input %q", in)
	}
	b, err := NewBinder([]byte("example-secret"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Bind(&c); err != nil || c.ID != wantID {
		t.Fatalf("id = %q, %v; want %q", c.ID, err, wantID)
	}

	// The pitfall: encoding/json's default HTML escaping changes the
	// request and so the id.
	type details struct {
		Invoice     string `json:"invoice"`
		Network     string `json:"network"`
		PaymentHash string `json:"paymentHash"`
	}
	goJSON, _ := json.Marshal(struct {
		Amount        string  `json:"amount"`
		Currency      string  `json:"currency"`
		Description   string  `json:"description"`
		MethodDetails details `json:"methodDetails"`
	}{"100", "sat", "Q&A", details{"lnbc1u1pexample", "mainnet", "72cd6e8422c407fb6d098690f1130b7ded7ec2f7f5e1d30bd9d521f015363793"}})
	wrong := c
	wrong.Request = EncodeBase64URL(goJSON)
	if id := ChallengeID([]byte("example-secret"), &wrong); id != pitfallID || id == c.ID {
		t.Fatalf("json.Marshal id = %q, want the documented wrong id %q", id, pitfallID)
	}
	if canon, err := Canonicalize(goJSON); err != nil || EncodeBase64URL(canon) != wantRequest {
		t.Fatalf("Canonicalize(json.Marshal output) = %q, %v", canon, err)
	}

	// Alby's credential for it, as the document shows it decoded.
	alby := `{"challenge":{"expires":"2026-01-01T00:05:00Z","id":"` + wantID + `","intent":"charge","method":"lightning","realm":"api.example.com","request":"` + wantRequest + `"},"payload":{"preimage":"0101010101010101010101010101010101010101010101010101010101010101"}}`
	cred, err := ParseAuthorization([]string{"Payment " + EncodeBase64URL([]byte(alby))})
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{Realm: "api.example.com", Binder: b}
	now := time.Date(2026, 1, 1, 0, 4, 59, 0, time.UTC)
	got, err := v.VerifyCharge(&cred, 100, now)
	if err != nil || got.PaymentHash != r.MethodDetails.PaymentHash || got.ChallengeID != wantID {
		t.Fatalf("VerifyCharge = %+v, %v", got, err)
	}
	if _, err := v.VerifyCharge(&cred, 100, now.Add(time.Second)); err == nil {
		t.Fatal("accepted at the expiry instant")
	}
}
