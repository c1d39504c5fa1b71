package payment

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

func TestFormatRefuses(t *testing.T) {
	b := testVerifier(t).Binder
	base := chargeChallenge(t, b, nil)
	tests := []struct {
		name string
		edit func(*Challenge)
	}{
		{"empty id", func(c *Challenge) { c.ID = "" }},
		{"id not base64url", func(c *Challenge) { c.ID = "a=b" }},
		{"empty realm", func(c *Challenge) { c.Realm = "" }},
		{"quote in realm", func(c *Challenge) { c.Realm = `a"b` }},
		{"backslash in realm", func(c *Challenge) { c.Realm = `a\b` }},
		{"pipe in realm", func(c *Challenge) { c.Realm = "a|b" }},
		{"newline in realm", func(c *Challenge) { c.Realm = "a\r\nX-Injected: 1" }},
		{"invalid UTF-8 realm", func(c *Challenge) { c.Realm = "a\xff" }},
		{"uppercase method", func(c *Challenge) { c.Method = "Lightning" }},
		{"empty method", func(c *Challenge) { c.Method = "" }},
		{"bad intent", func(c *Challenge) { c.Intent = "charge now" }},
		{"padded request", func(c *Challenge) { c.Request += "=" }},
		{"empty request", func(c *Challenge) { c.Request = "" }},
		{"bad opaque", func(c *Challenge) { c.Opaque = "a+b" }},
		{"bad expires", func(c *Challenge) { c.Expires = "tomorrow" }},
		{"quote in description", func(c *Challenge) { c.Description = `say "hi"` }},
		{"pipe in digest", func(c *Challenge) { c.Digest = "sha-256=:a|b:" }},
		{"8 KB", func(c *Challenge) { c.Description = strings.Repeat("x", MaxChallengeLen) }},
	}
	for _, tt := range tests {
		c := base
		tt.edit(&c)
		if s, err := c.Format(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("%s: Format = %q, %v; want ErrInvalidParameter", tt.name, s, err)
		}
	}
	if _, err := base.Format(); err != nil {
		t.Fatal(err)
	}
}

// TestChallengeClientCompatibility runs the challenge parsers of the
// clients of payment-dialects.md §1 over what Format writes.
func TestChallengeClientCompatibility(t *testing.T) {
	b := testVerifier(t).Binder
	charge := chargeChallenge(t, b, func(_ *ChargeRequest, c *Challenge) { c.Description = "Weather, today: 10 < 20 & café" })
	session := sessionChallenge(t, b, testHash, nil)
	h1, err := charge.Format()
	if err != nil {
		t.Fatal(err)
	}
	h2, err := session.Format()
	if err != nil {
		t.Fatal(err)
	}

	// Alby's fetch402 on the line fetch joins: the value starts with
	// "payment"; name=value pairs of the whole line, a quoted value ends at
	// the next '"', later duplicates overwrite. With the charge line alone
	// (a session line after it would hide the charge, §1) it must find the
	// charge and its request.
	kv := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)=("([^"]*)"|'([^']*)'|([^,]*))`).FindAllStringSubmatch(h1, -1) {
		kv[m[1]] = m[3] + m[4] + m[5]
	}
	if !strings.HasPrefix(strings.ToLower(h1), "payment") || kv["method"] != "lightning" || kv["intent"] != "charge" ||
		kv["id"] != charge.ID || kv["realm"] != charge.Realm || kv["request"] != charge.Request || kv["expires"] != charge.Expires {
		t.Errorf("Alby-style parse of %q: %v", h1, kv)
	}
	req, err := DecodeChargeRequest(kv["request"])
	if err != nil || req.MethodDetails.Invoice != testInvoice {
		t.Errorf("Alby reads the invoice from the request: %+v, %v", req, err)
	}

	// lnget: the first line starting with "payment " parsed alone, quoted
	// values required.
	for _, h := range []string{h1, h2} {
		if !strings.HasPrefix(strings.ToLower(h), "payment ") {
			t.Fatalf("%q does not start with \"payment \"", h)
		}
		params := map[string]string{}
		for _, m := range regexp.MustCompile(`(\w+)="([^"]*)"`).FindAllStringSubmatch(h[len("Payment "):], -1) {
			params[m[1]] = m[2]
		}
		if params["id"] == "" || params["method"] != "lightning" || params["request"] == "" || strings.Contains(params["request"], "=") {
			t.Errorf("lnget-style parse of %q: %v", h, params)
		}
	}

	// RFC 9110 parsing (ours, Aperture-style clients) of separate and of
	// joined lines.
	want := []Challenge{charge, session}
	if got := ParseChallenges([]string{h1, h2}); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseChallenges of two lines = %+v", got)
	}
	if got := ParseChallenges([]string{`L402 macaroon="AAAA", invoice="lnbc1"`, h1 + ", " + h2}); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseChallenges of a joined line = %+v", got)
	}
}

func TestParseChallengesSkips(t *testing.T) {
	ok := `Payment id="a", realm="r", method="lightning", intent="charge", request="cQ"`
	for _, v := range []string{
		`Payment id="a", realm="r", method="lightning", intent="charge"`,                    // no request
		`Payment id="", realm="r", method="lightning", intent="charge", request="cQ"`,       // empty id
		`Payment id="a" junk, realm="r", method="lightning", intent="charge", request="cQ"`, // syntax error
		`Paymentx id="a", realm="r", method="lightning", intent="charge", request="cQ"`,
		`Payment id="a`,
		ok + strings.Repeat(" ", maxChallengeValueLen),
	} {
		if got := ParseChallenges([]string{v}); len(got) != 0 {
			t.Errorf("ParseChallenges(%.80q) = %+v", v, got)
		}
	}
	if got := ParseChallenges([]string{ok}); len(got) != 1 {
		t.Fatalf("ParseChallenges(%q) = %+v", ok, got)
	}
}

func TestOpaque(t *testing.T) {
	m := map[string]string{"route": "/weather", "b": "Q&A\u2028", "\ue000": "1", "\U00010000": "2"}
	s, err := EncodeOpaque(m)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := DecodeBase64URL(s)
	if want := "{\"b\":\"Q&A\u2028\",\"route\":\"/weather\",\"\U00010000\":\"2\",\"\ue000\":\"1\"}"; string(raw) != want {
		t.Fatalf("opaque JSON %q\nwant %q", raw, want)
	}
	got, err := DecodeOpaque(s)
	if err != nil || !reflect.DeepEqual(got, m) {
		t.Fatalf("DecodeOpaque = %v, %v", got, err)
	}
	for _, bad := range []string{EncodeBase64URL([]byte(`{"a":1}`)), EncodeBase64URL([]byte(`[]`)), "a+b"} {
		if _, err := DecodeOpaque(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeOpaque(%q) = %v", bad, err)
		}
	}
	if _, err := EncodeOpaque(map[string]string{"a": "\xff"}); !errors.Is(err, ErrInvalidParameter) {
		t.Errorf("EncodeOpaque of invalid UTF-8: %v", err)
	}
}

func FuzzParseChallenges(f *testing.F) {
	b, _ := NewBinder(testSecret)
	c := chargeChallenge(f, b, nil)
	h, _ := c.Format()
	f.Add(h, "api.example.com", "Q&A")
	f.Add(h+", "+h+`, Basic realm="x"`, "r", "")
	f.Add(`payment ID=a, Realm="r\"", METHOD=lightning, intent=charge, request=cQ, id=b`, "a|b", `a"b`)
	f.Add(`Payment id="a", realm="r", Payment id="b"`, "", "\t")
	f.Fuzz(func(t *testing.T, header, realm, description string) {
		// Parsing never panics, and each challenge that formats parses
		// back to itself, alone and joined.
		for _, c := range ParseChallenges([]string{header, header + ", " + header}) {
			if c.ID == "" || c.Realm == "" || c.Method == "" || c.Intent == "" || c.Request == "" {
				t.Fatalf("incomplete challenge %+v", c)
			}
			roundTripChallenge(t, c)
		}
		// parse(format(x)) == x for any x that binds and formats.
		x := Challenge{Realm: realm, Method: MethodLightning, Intent: IntentCharge, Request: "cQ", Description: description}
		if err := b.Bind(&x); err != nil {
			if !errors.Is(err, ErrInvalidParameter) {
				t.Fatal(err)
			}
			return
		}
		if strings.Contains(x.Realm, "|") || !b.Verify(&x) {
			t.Fatalf("bound %+v", x)
		}
		roundTripChallenge(t, x)
	})
}

func roundTripChallenge(t *testing.T, c Challenge) {
	t.Helper()
	h, err := c.Format()
	if err != nil {
		if !errors.Is(err, ErrInvalidParameter) {
			t.Fatal(err)
		}
		return
	}
	if got := ParseChallenges([]string{h}); !reflect.DeepEqual(got, []Challenge{c}) {
		t.Fatalf("round trip of %q: %+v", h, got)
	}
	if got := ParseChallenges([]string{h + ", " + h}); !reflect.DeepEqual(got, []Challenge{c, c}) {
		t.Fatalf("round trip of joined %q: %+v", h, got)
	}
}
