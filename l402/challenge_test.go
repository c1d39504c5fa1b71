package l402

import (
	"errors"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

const testInvoice = "lnbc1500n1pj9nr6mpp5argz38ge5dm8gqfyh5xhsfqcqnalp6jwy0zp6ncj6hfrk9rrr2psdqqcqzzsxqyz5vqsp5rv9d4kzj3jcj8h4wrqwjq8elflwckhqmrp0v4m6stf3rvyyjfyq9qyyssq"

func TestFormatChallenge(t *testing.T) {
	const tok = "AgEP+/8="
	got, err := FormatChallenge(tok, testInvoice)
	want := `L402 version="0", token="AgEP+/8=", invoice="` + testInvoice + `", macaroon="AgEP+/8="`
	if err != nil || got != want {
		t.Fatalf("FormatChallenge = %q, %v\nwant %q", got, err, want)
	}
	got, err = FormatLegacyChallenge(tok, testInvoice)
	want = `LSAT macaroon="AgEP+/8=", invoice="` + testInvoice + `"`
	if err != nil || got != want {
		t.Fatalf("FormatLegacyChallenge = %q, %v\nwant %q", got, err, want)
	}
	hs, err := ChallengeHeaders(tok, testInvoice)
	if err != nil || len(hs) != 2 || !strings.HasPrefix(hs[0], "LSAT ") || !strings.HasPrefix(hs[1], "L402 ") {
		t.Fatalf("ChallengeHeaders = %q, %v", hs, err)
	}

	bad := []struct{ tok, inv string }{
		{"", testInvoice},
		{`a"b`, testInvoice},
		{"a b", testInvoice},
		{tok, ""},
		{tok, `lnbc"`},
		{tok, "lnbc1\r\nX-Injected: 1"},
		{tok, "lightning:lnbc1"},
	}
	for _, b := range bad {
		if _, err := FormatChallenge(b.tok, b.inv); !errors.Is(err, ErrMalformed) {
			t.Errorf("FormatChallenge(%q, %q) error = %v", b.tok, b.inv, err)
		}
		if _, err := FormatLegacyChallenge(b.tok, b.inv); !errors.Is(err, ErrMalformed) {
			t.Errorf("FormatLegacyChallenge(%q, %q) error = %v", b.tok, b.inv, err)
		}
		if _, err := ChallengeHeaders(b.tok, b.inv); !errors.Is(err, ErrMalformed) {
			t.Errorf("ChallengeHeaders(%q, %q) error = %v", b.tok, b.inv, err)
		}
	}
}

// TestChallengeClientCompatibility runs the parsers of real clients over
// the headers ChallengeHeaders returns.
func TestChallengeClientCompatibility(t *testing.T) {
	const tok = "AgEPY2FkZHktbGlnaHRuaW5nAkIAAA+/=="
	hs, err := ChallengeHeaders(tok, testInvoice)
	if err != nil {
		t.Fatal(err)
	}

	// Aperture's Go client (lnget, Loop): the first value that matches.
	aperture := regexp.MustCompile(`(LSAT|L402) (?:version="[^"]*", )?(?:token|macaroon)="([^"]+)", invoice="([^"]+)"`)
	for _, h := range hs {
		m := aperture.FindStringSubmatch(h)
		if len(m) != 4 || m[2] != tok || m[3] != testInvoice {
			t.Errorf("Aperture client regexp on %q: %q", h, m)
		}
	}
	// Old Aperture/Loop clients: only the first value, LSAT and macaroon.
	old := regexp.MustCompile(`LSAT macaroon="(.*?)", invoice="(.*?)"`)
	if m := old.FindStringSubmatch(hs[0]); len(m) != 3 || m[1] != tok || m[2] != testInvoice {
		t.Errorf("old client regexp on first value: %q", m)
	}

	// Alby's lightning-tools parseL402 on the line fetch() builds from both
	// headers: drop the first "L402" and "LSAT", collect key=value pairs,
	// fall back from token to macaroon.
	joined := strings.Join(hs, ", ")
	s := strings.TrimSpace(strings.Replace(strings.Replace(joined, "L402", "", 1), "LSAT", "", 1))
	kv := map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)=("([^"]*)"|'([^']*)'|([^,]*))`).FindAllStringSubmatch(s, -1) {
		kv[m[1]] = m[3] + m[4] + m[5]
	}
	if kv["token"] != tok || kv["invoice"] != testInvoice || kv["macaroon"] != tok {
		t.Errorf("Alby-style parse of %q: %v", joined, kv)
	}
	// Alby on the L402 value alone.
	kv = map[string]string{}
	for _, m := range regexp.MustCompile(`(\w+)=("([^"]*)"|'([^']*)'|([^,]*))`).FindAllStringSubmatch(hs[1][5:], -1) {
		kv[m[1]] = m[3] + m[4] + m[5]
	}
	if kv["token"] != tok || kv["invoice"] != testInvoice || kv["version"] != "0" {
		t.Errorf("Alby-style parse of %q: %v", hs[1], kv)
	}

	// lsat-js fromChallenge: split on ',', the first part containing
	// "macaroon=" and "invoice=", value between the quotes after the
	// first '='.
	for _, h := range []string{hs[0], hs[1], joined} {
		var mac, inv string
		for _, part := range strings.Split(h[4:], ",") {
			val := func() string {
				v := strings.TrimSpace(part[strings.Index(part, "=")+1:])
				return strings.Trim(v, `"`)
			}
			if mac == "" && strings.Contains(part, "macaroon=") {
				mac = val()
			}
			if inv == "" && strings.Contains(part, "invoice=") {
				inv = val()
			}
		}
		if mac != tok || inv != testInvoice {
			t.Errorf("lsat-js-style parse of %q: %q, %q", h, mac, inv)
		}
	}

	// Our own parser.
	c, err := ParseChallenge(hs)
	if err != nil || c != (Challenge{Scheme: "L402", Token: tok, Invoice: testInvoice}) {
		t.Errorf("ParseChallenge = %+v, %v", c, err)
	}
}

func TestParseChallenges(t *testing.T) {
	const tok, inv = "AgEP+/8=", "lnbc1abc"
	l402 := Challenge{"L402", tok, inv}
	lsat := Challenge{"LSAT", tok, inv}
	tests := []struct {
		name   string
		values []string
		want   []Challenge
	}{
		{"current spec", []string{`L402 version="0", token="AgEP+/8=", invoice="lnbc1abc"`}, []Challenge{l402}},
		{"older form", []string{`L402 macaroon="AgEP+/8=", invoice="lnbc1abc"`}, []Challenge{l402}},
		{"oldest form", []string{`LSAT macaroon="AgEP+/8=", invoice="lnbc1abc"`}, []Challenge{lsat}},
		{"our form", []string{`L402 version="0", token="AgEP+/8=", invoice="lnbc1abc", macaroon="AgEP+/8="`}, []Challenge{l402}},
		{"any order and case", []string{`l402 INVOICE="lnbc1abc",Token="AgEP+/8="`}, []Challenge{l402}},
		{"unquoted", []string{`L402 version=0, invoice=lnbc1abc, macaroon="AgEP+/8="`}, []Challenge{l402}},
		{"token wins over macaroon", []string{`L402 macaroon="AAAA", token="AgEP+/8=", invoice="lnbc1abc"`}, []Challenge{l402}},
		{"bad whitespace", []string{" \tL402   token = \"AgEP+/8=\" ,\tinvoice=\"lnbc1abc\"  "}, []Challenge{l402}},
		{"escapes", []string{`L402 token="AgEP+/8\=", invoice="lnbc\1abc"`}, []Challenge{l402}},
		{"extra params", []string{`L402 realm="x", token="AgEP+/8=", foo=bar, invoice="lnbc1abc"`}, []Challenge{l402}},
		{"both headers joined", []string{`LSAT macaroon="AgEP+/8=", invoice="lnbc1abc", L402 version="0", token="AgEP+/8=", invoice="lnbc1abc"`}, []Challenge{lsat, l402}},
		{"other challenges first", []string{`Basic realm="a b", charset="UTF-8", Negotiate abc+/==, L402 token="AgEP+/8=", invoice="lnbc1abc"`}, []Challenge{l402}},
		{"other challenges after", []string{`L402 token="AgEP+/8=", invoice="lnbc1abc", Bearer, Negotiate x`}, []Challenge{l402}},
		{"two values", []string{`Basic realm="x"`, `L402 token="AgEP+/8=", invoice="lnbc1abc"`}, []Challenge{l402}},

		{"other version", []string{`L402 version="1", token="AgEP+/8=", invoice="lnbc1abc"`}, nil},
		{"no invoice", []string{`L402 token="AgEP+/8="`}, nil},
		{"no token", []string{`L402 invoice="lnbc1abc"`}, nil},
		{"bad token", []string{`L402 token="a b", invoice="lnbc1abc"`}, nil},
		{"bad invoice", []string{`L402 token="AgEP+/8=", invoice="lnbc-1"`}, nil},
		{"unterminated quote", []string{`L402 token="AgEP+/8=, invoice="lnbc1abc`}, nil},
		{"garbage between params", []string{`L402 token="AgEP+/8=" junk, invoice="lnbc1abc"`}, nil},
		{"control character", []string{"L402 token=\"AgEP\x00\", invoice=\"lnbc1abc\""}, nil},
		{"other scheme", []string{`Bearer token="AgEP+/8=", invoice="lnbc1abc"`}, nil},
		{"empty", []string{"", ",", " , "}, nil},
		{"too long", []string{`L402 token="AgEP+/8=", invoice="lnbc1abc"` + strings.Repeat(" ", maxChallengeLen)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ParseChallenges(tt.values); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseChallengePreference(t *testing.T) {
	legacy, _ := FormatLegacyChallenge("AAAA", "lnbc1a")
	current, _ := FormatChallenge("BBBB", "lnbc1b")
	c, err := ParseChallenge([]string{legacy, current})
	if err != nil || c != (Challenge{"L402", "BBBB", "lnbc1b"}) {
		t.Fatalf("ParseChallenge prefers L402: %+v, %v", c, err)
	}
	c, err = ParseChallenge([]string{legacy})
	if err != nil || c != (Challenge{"LSAT", "AAAA", "lnbc1a"}) {
		t.Fatalf("ParseChallenge falls back to LSAT: %+v, %v", c, err)
	}
	if _, err := ParseChallenge([]string{`Basic realm="x"`}); !errors.Is(err, ErrNoChallenge) {
		t.Fatalf("error = %v, want ErrNoChallenge", err)
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`L402 version="0", token="AgEP+/8=", invoice="lnbc1abc", macaroon="AgEP+/8="`, "AgEP+/8=", "lnbc1abc")
	f.Add(`LSAT macaroon="AgEP+/8=", invoice="lnbc1abc", L402 token=x, invoice=y`, "AAAA", "lnbc1")
	f.Add(`Basic realm="a\"b", Negotiate abc==, L402 token="A\=", invoice=lnbc1`, "", "")
	f.Add(`L402 version="1", token="AAAA", invoice="lnbc1"`, "a b", "lnbc")
	f.Add(`L402 a=, b==, ="", "x`, "AAAA===", "LNBC1")
	f.Add(",,, L402", "-_", "0")
	f.Fuzz(func(t *testing.T, header, tok, inv string) {
		// Parsing arbitrary input never panics, and everything it returns
		// formats and parses back to itself.
		for _, c := range ParseChallenges([]string{header, header + ", " + header}) {
			if c.Scheme != "L402" && c.Scheme != "LSAT" {
				t.Fatalf("scheme %q", c.Scheme)
			}
			roundTrip(t, c.Token, c.Invoice)
		}
		ParseChallenge(strings.Split(header, "\n"))

		// parse(format(x)) == x for any x that formats.
		if _, err := FormatChallenge(tok, inv); err == nil {
			roundTrip(t, tok, inv)
		} else if _, err := FormatLegacyChallenge(tok, inv); err == nil {
			t.Fatal("FormatLegacyChallenge accepts what FormatChallenge refuses")
		}
	})
}

func roundTrip(t *testing.T, tok, inv string) {
	t.Helper()
	hs, err := ChallengeHeaders(tok, inv)
	if err != nil {
		t.Fatalf("ChallengeHeaders(%q, %q): %v", tok, inv, err)
	}
	want := []Challenge{{"LSAT", tok, inv}, {"L402", tok, inv}}
	if got := ParseChallenges(hs); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip of %q: %+v", hs, got)
	}
	if got := ParseChallenges([]string{strings.Join(hs, ", ")}); !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip of joined %q: %+v", hs, got)
	}
}
