package payment

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	b := testVerifier(t).Binder
	v, want := present(t, chargeChallenge(t, b, nil), ChargePayloadJSON(testPreimage))
	token := strings.TrimPrefix(v, "Payment ")
	padded := token + strings.Repeat("=", (4-len(token)%4)%4)
	tests := []struct {
		name   string
		values []string
		err    error
	}{
		{"one", []string{v}, nil},
		{"scheme case", []string{"pAyMeNt " + token}, nil},
		{"whitespace", []string{" \tPayment \t " + token + " \t"}, nil},
		{"padded token", []string{"Payment " + padded}, nil},
		{"other schemes around", []string{"Basic dXNlcjpwYXNz", "L402 AAAA:" + strings.Repeat("0", 64) + ", " + v}, nil},
		{"joined after another", []string{"Bearer x, " + v + ", Digest a=b"}, nil},

		{"none", nil, ErrNoCredential},
		{"other schemes", []string{"Basic dXNlcjpwYXNz", "L402 AAAA"}, ErrNoCredential},
		{"scheme prefix", []string{"Payments " + token}, ErrNoCredential},
		{"no space", []string{"Payment" + token}, ErrNoCredential},
		{"two values", []string{v, v}, ErrMultipleCredentials},
		{"two joined", []string{v + ", " + v}, ErrMultipleCredentials},
		{"one good one bad", []string{v, "Payment x"}, ErrMultipleCredentials},
		{"empty token", []string{"Payment "}, ErrMalformed},
		{"scheme only", []string{"Payment"}, ErrMalformed},
		{"not base64url", []string{"Payment !!!"}, ErrMalformed},
		{"standard alphabet", []string{"Payment " + strings.NewReplacer("-", "+", "_", "/").Replace(token) + "+/"}, ErrMalformed},
		{"space inside", []string{"Payment " + token[:10] + " " + token[10:]}, ErrMalformed},
		{"too long", []string{"Payment " + strings.Repeat("A", MaxCredentialLen+4)}, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.values)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error = %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil || got.Challenge != want.Challenge || string(got.Payload) != string(want.Payload) {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}

func TestParseCredentialRefuses(t *testing.T) {
	echo := `"challenge":{"id":"i","realm":"r","method":"lightning","intent":"charge","request":"cQ"}`
	for _, j := range []string{
		`[]`, `"x"`, `{}`, `{` + echo + `}`, `{` + echo + `,"payload":[]}`, `{` + echo + `,"payload":"x"}`,
		`{"challenge":[],"payload":{}}`,
		`{"challenge":{"realm":"r","method":"lightning","intent":"charge","request":"cQ"},"payload":{}}`,
		`{"challenge":{"id":"","realm":"r","method":"lightning","intent":"charge","request":"cQ"},"payload":{}}`,
		`{"challenge":{"id":1,"realm":"r","method":"lightning","intent":"charge","request":"cQ"},"payload":{}}`,
		`{"challenge":{"id":"i","realm":"r","method":"lightning","intent":"charge","request":"cQ","expires":5},"payload":{}}`,
		`{` + echo + `,"payload":{},"source":7}`,
		`{` + echo + `,"payload":{},"payload":{}}`, // duplicate member
		`{` + echo + `,"payload":{"preimage":"a\ud800"}}`,
		"{" + echo + ",\"payload\":{\"p\":\"\xff\"}}",
	} {
		if c, err := ParseCredential(EncodeBase64URL([]byte(j))); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseCredential(%s) = %+v, %v; want ErrMalformed", j, c, err)
		}
	}
	ok := `{"extra":[1,{"x":null}],` + echo + `,"payload":{"unknown":true},"source":"did:key:z6Mk"}`
	c, err := ParseCredential(EncodeBase64URL([]byte(ok)))
	if err != nil || c.Source != "did:key:z6Mk" || string(c.Payload) != `{"unknown":true}` {
		t.Fatalf("unknown members: %+v, %v", c, err)
	}
}

func TestChargePayload(t *testing.T) {
	pre := hex.EncodeToString(testPreimage[:])
	for _, p := range []string{`{"preimage":"` + pre + `"}`, `{"preimage":"` + strings.ToUpper(pre) + `","x":1}`} {
		c := Credential{Payload: []byte(p)}
		got, err := c.ChargePayload()
		if err != nil || got.Preimage != testPreimage {
			t.Errorf("ChargePayload(%s) = %x, %v", p, got.Preimage, err)
		}
	}
	for _, p := range []string{`{}`, `{"preimage":1}`, `{"preimage":"` + pre[:62] + `"}`, `{"preimage":"` + pre + `00"}`,
		`{"preimage":"` + strings.Repeat("g", 64) + `"}`, `[]`, `x`} {
		c := Credential{Payload: []byte(p)}
		if _, err := c.ChargePayload(); !errors.Is(err, ErrMalformed) {
			t.Errorf("ChargePayload(%s) = %v, want ErrMalformed", p, err)
		}
	}
	if got := string(ChargePayloadJSON(testPreimage)); got != `{"preimage":"`+pre+`"}` {
		t.Errorf("ChargePayloadJSON = %s", got)
	}
}

func TestSessionPayload(t *testing.T) {
	pre := hex.EncodeToString(testPreimage[:])
	id := hex.EncodeToString(testHash[:])
	tests := []struct {
		json string
		want SessionPayload
	}{
		{`{"action":"open","preimage":"` + pre + `","returnInvoice":"lnbcrt1pret"}`, SessionPayload{Action: ActionOpen, Preimage: testPreimage, ReturnInvoice: "lnbcrt1pret"}},
		{`{"action":"bearer","sessionId":"` + id + `","preimage":"` + strings.ToUpper(pre) + `"}`, SessionPayload{Action: ActionBearer, Preimage: testPreimage, SessionID: testHash}},
		{`{"action":"close","sessionId":"` + id + `","preimage":"` + pre + `"}`, SessionPayload{Action: ActionClose, Preimage: testPreimage, SessionID: testHash}},
		{`{"action":"topUp","sessionId":"` + id + `","topUpPreimage":"` + pre + `","preimage":"zz"}`, SessionPayload{Action: ActionTopUp, Preimage: testPreimage, SessionID: testHash}},
	}
	for _, tt := range tests {
		c := Credential{Payload: []byte(tt.json)}
		got, err := c.SessionPayload()
		if err != nil || got != tt.want {
			t.Errorf("SessionPayload(%s) = %+v, %v", tt.json, got, err)
			continue
		}
		// Symmetry: the payload a client builds reads back the same.
		j, err := SessionPayloadJSON(got)
		if err != nil {
			t.Fatal(err)
		}
		c = Credential{Payload: j}
		if again, err := c.SessionPayload(); err != nil || again != got {
			t.Errorf("round trip of %s: %+v, %v", j, again, err)
		}
	}
	for _, j := range []string{
		`{}`, `{"action":"pay"}`, `{"action":"Open","preimage":"` + pre + `","returnInvoice":"lnbc1"}`,
		`{"action":"open","preimage":"` + pre + `"}`,
		`{"action":"bearer","preimage":"` + pre + `"}`,
		`{"action":"close","sessionId":"` + id + `"}`,
		`{"action":"topUp","sessionId":"` + id + `","preimage":"` + pre + `"}`,
		`{"action":"bearer","sessionId":"` + id[:60] + `","preimage":"` + pre + `"}`,
	} {
		c := Credential{Payload: []byte(j)}
		if _, err := c.SessionPayload(); !errors.Is(err, ErrMalformed) {
			t.Errorf("SessionPayload(%s) = %v, want ErrMalformed", j, err)
		}
	}
	for _, inv := range []string{"", "lightning:lnbc1", "lnbc 1", strings.Repeat("a", maxInvoiceLen+1)} {
		c := Credential{Payload: []byte(`{"action":"open","preimage":"` + pre + `","returnInvoice":"` + inv + `"}`)}
		if _, err := c.SessionPayload(); !errors.Is(err, ErrInvalidReturnInvoice) {
			t.Errorf("return invoice %q: %v", inv, err)
		}
	}
}

func TestCredentialFormat(t *testing.T) {
	c := Credential{
		Challenge: Challenge{ID: "i", Realm: "r", Method: "lightning", Intent: "charge", Request: "cQ", Description: "Q&A \u2028"},
		Source:    "did:key:z6Mk",
		Payload:   []byte(` { "preimage" : "ab" } `),
	}
	v, err := c.Format()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := DecodeBase64URL(strings.TrimPrefix(v, "Payment "))
	want := "{\"challenge\":{\"description\":\"Q&A \u2028\",\"id\":\"i\",\"intent\":\"charge\",\"method\":\"lightning\",\"realm\":\"r\",\"request\":\"cQ\"},\"payload\":{\"preimage\":\"ab\"},\"source\":\"did:key:z6Mk\"}"
	if string(raw) != want {
		t.Fatalf("credential JSON %s\nwant %s", raw, want)
	}
	// Servers MUST take credentials of 4 KB and more (§9.4).
	big := c
	big.Challenge.Description = strings.Repeat("d", 6000)
	if v, err := big.Format(); err != nil || len(v) < 8000 {
		t.Fatalf("Format of a big credential: %d bytes, %v", len(v), err)
	} else if got, err := ParseAuthorization([]string{v}); err != nil || got.Challenge != big.Challenge {
		t.Fatalf("ParseAuthorization of %d bytes: %v", len(v), err)
	}
	for _, bad := range []Credential{
		{Challenge: c.Challenge, Payload: []byte(`[]`)},
		{Challenge: c.Challenge},
		{Challenge: Challenge{ID: "i"}, Payload: []byte(`{}`)},
		{Challenge: c.Challenge, Payload: []byte(`{}`), Source: "\xff"},
		{Challenge: c.Challenge, Payload: []byte(`{"a":"` + strings.Repeat("x", MaxCredentialLen) + `"}`)},
	} {
		if v, err := bad.Format(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Format(%+v) = %.40q, %v", bad.Challenge, v, err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	b, _ := NewBinder(testSecret)
	v, _ := present(f, chargeChallenge(f, b, nil), ChargePayloadJSON(testPreimage))
	f.Add(v, "")
	f.Add("Basic x, "+v, "L402 a:b")
	s, _ := present(f, sessionChallenge(f, b, testHash, nil), []byte(`{"action":"open","preimage":"`+hex.EncodeToString(testPreimage[:])+`","returnInvoice":"lnbc1p"}`))
	f.Add(s, "")
	f.Add("Payment "+EncodeBase64URL([]byte(`{"challenge":{"id":"a","realm":"b","method":"c","intent":"d","request":"e"},"payload":{"action":"bearer"}}`)), "")
	f.Add("Payment e29vcHN9", "payment AB")
	verifier := &Verifier{Realm: testRealm, Binder: b}
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		c, err := ParseAuthorization([]string{v1, v2})
		if err != nil {
			if !errors.Is(err, ErrNoCredential) && !errors.Is(err, ErrMultipleCredentials) && !errors.Is(err, ErrMalformed) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		e := c.Challenge
		if e.ID == "" || e.Realm == "" || e.Method == "" || e.Intent == "" || e.Request == "" {
			t.Fatalf("incomplete echo %+v", e)
		}
		// parse(format(x)) == x.
		s, err := c.Format()
		if err == nil {
			again, err := ParseAuthorization([]string{s})
			if err != nil || again.Challenge != c.Challenge || again.Source != c.Source || !sameJSON(t, again.Payload, c.Payload) {
				t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
			}
		} else if !errors.Is(err, ErrInvalidParameter) {
			t.Fatal(err)
		}
		// Payload readers and verifiers never panic; nothing unpaid passes.
		if _, err := verifier.VerifyCharge(&c, testPrice, testNow); err == nil {
			p, _ := c.ChargePayload()
			if hashOf(p.Preimage) != testHash {
				t.Fatalf("verified a charge without its preimage: %+v", c)
			}
		}
		verifier.VerifySession(&c, 2, testNow)
	})
}

// FuzzParseCredential fuzzes the credential JSON itself (behind the
// base64url layer that FuzzParseAuthorization must first get through).
func FuzzParseCredential(f *testing.F) {
	b, _ := NewBinder(testSecret)
	for _, c := range []Challenge{chargeChallenge(f, b, nil), sessionChallenge(f, b, testHash, nil)} {
		for _, p := range []string{
			string(ChargePayloadJSON(testPreimage)),
			`{"action":"open","preimage":"` + hex.EncodeToString(testPreimage[:]) + `","returnInvoice":"lnbc1p"}`,
			`{"action":"bearer","sessionId":"` + hex.EncodeToString(testHash[:]) + `","preimage":"` + hex.EncodeToString(testPreimage[:]) + `"}`,
		} {
			v, _ := present(f, c, []byte(p))
			raw, _ := DecodeBase64URL(strings.TrimPrefix(v, "Payment "))
			f.Add(raw)
		}
	}
	f.Add([]byte(`{"challenge":{"id":"a","realm":"b","method":"c","intent":"d","request":"e","x":[{}]},"payload":{},"source":""}`))
	verifier := &Verifier{Realm: testRealm, Binder: b}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseCredential(EncodeBase64URL(data))
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted what encoding/json rejects: %q", data)
		}
		if s, err := c.Format(); err == nil {
			again, err := ParseAuthorization([]string{s})
			if err != nil || again.Challenge != c.Challenge || again.Source != c.Source || !sameJSON(t, again.Payload, c.Payload) {
				t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
			}
		}
		if _, err := verifier.VerifyCharge(&c, testPrice, testNow); err == nil {
			p, _ := c.ChargePayload()
			if hashOf(p.Preimage) != testHash {
				t.Fatalf("verified a charge without its preimage: %+v", c)
			}
		}
		if s, err := verifier.VerifySession(&c, 2, testNow); err == nil {
			p, _ := c.SessionPayload()
			if want := map[string][32]byte{ActionOpen: s.PaymentHash, ActionTopUp: s.PaymentHash, ActionBearer: s.SessionID, ActionClose: s.SessionID}[p.Action]; hashOf(p.Preimage) != want {
				t.Fatalf("verified a session action without its preimage: %+v", c)
			}
		}
	})
}

func TestStripAuthorization(t *testing.T) {
	b, _ := NewBinder(testSecret)
	v, _ := present(t, chargeChallenge(t, b, nil), ChargePayloadJSON(testPreimage))
	for in, want := range map[string]string{
		v:                          v,
		"":                         "",
		"Basic dXNlcjpwYXNz":       "Basic dXNlcjpwYXNz",
		"Basic dXNlcjpwYXNz, " + v: "Basic dXNlcjpwYXNz",
		v + ", L402 a:b":           "L402 a:b",
		"payment\tAAAA,Bearer x":   "Bearer x",
		"Payments AAAA":            "Payments AAAA",
	} {
		if in == v {
			want = ""
		}
		if got := StripAuthorization(in); got != want {
			t.Errorf("StripAuthorization(%.40q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzStripAuthorization: what is left holds no Payment credential, and
// a value without one is left as it is.
func FuzzStripAuthorization(f *testing.F) {
	f.Add("Basic x, Payment e30")
	f.Add("payment\t, L402 a:b,")
	f.Fuzz(func(t *testing.T, v string) {
		got := StripAuthorization(v)
		if _, err := ParseAuthorization([]string{got}); !errors.Is(err, ErrNoCredential) {
			t.Fatalf("StripAuthorization(%q) = %q still holds a Payment credential (%v)", v, got, err)
		}
		if _, err := ParseAuthorization([]string{v}); errors.Is(err, ErrNoCredential) && got != v {
			t.Fatalf("StripAuthorization(%q) = %q changed a value without a Payment credential", v, got)
		}
	})
}
