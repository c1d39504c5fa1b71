package l402

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestParseAuthorization(t *testing.T) {
	const tok, tok2 = "AgEPY2FkZHk=", "AgEPY2FkZHl="
	p1 := testPreimage
	pre := hex.EncodeToString(p1[:])
	p2 := [32]byte{0xab}
	pre2 := strings.ToUpper(hex.EncodeToString(p2[:]))
	paid := func(tok string, p [32]byte) Credential { return Credential{Token: tok, Preimage: p, HasPreimage: true} }
	unpaid := func(tok string) Credential { return Credential{Token: tok} }

	tests := []struct {
		name   string
		values []string
		want   []Credential
		err    error
	}{
		{"L402", []string{"L402 " + tok + ":" + pre}, []Credential{paid(tok, p1)}, nil},
		{"LSAT", []string{"LSAT " + tok + ":" + pre}, []Credential{paid(tok, p1)}, nil},
		{"scheme case", []string{"l402 " + tok + ":" + pre, "lSaT " + tok2 + ":" + pre}, []Credential{paid(tok, p1), paid(tok2, p1)}, nil},
		{"upper hex", []string{"L402 " + tok + ":" + pre2}, []Credential{paid(tok, p2)}, nil},
		{"mixed hex", []string{"L402 " + tok + ":" + strings.ToUpper(pre[:10]) + pre[10:]}, []Credential{paid(tok, p1)}, nil},
		{"whitespace", []string{" \tL402 \t " + tok + " \t: " + pre + " \t"}, []Credential{paid(tok, p1)}, nil},
		{"url-safe unpadded token", []string{"L402 AgEP-_8:" + pre}, []Credential{paid("AgEP-_8", p1)}, nil},
		{"several tokens", []string{"L402 " + tok + ", " + tok2 + ":" + pre}, []Credential{paid(tok, p1), paid(tok2, p1)}, nil},
		{"empty list items", []string{"L402 ," + tok + ",," + tok2 + ":" + pre}, []Credential{paid(tok, p1), paid(tok2, p1)}, nil},
		{"token only", []string{"L402 " + tok}, []Credential{unpaid(tok)}, nil},
		{"token with empty preimage", []string{"L402 " + tok + ":"}, []Credential{unpaid(tok)}, nil},
		{"several tokens only", []string{"L402 " + tok + "," + tok2}, []Credential{unpaid(tok), unpaid(tok2)}, nil},
		{"several values", []string{"L402 " + tok + ":" + pre, "LSAT " + tok2 + ":" + pre2}, []Credential{paid(tok, p1), paid(tok2, p2)}, nil},
		{"values joined into one line", []string{"L402 " + tok + ":" + pre + ", LSAT " + tok2 + ":" + pre2}, []Credential{paid(tok, p1), paid(tok2, p2)}, nil},
		{"joined token only then paid", []string{"L402 " + tok + ", L402 " + tok2 + ":" + pre}, []Credential{unpaid(tok), paid(tok2, p1)}, nil},
		{"other schemes around", []string{"Basic dXNlcjpwYXNz", "Bearer x, L402 " + tok + ":" + pre, "Digest a=b"}, []Credential{paid(tok, p1)}, nil},
		{"bad value then good", []string{"L402 " + tok + ":zz", "L402 " + tok2 + ":" + pre}, []Credential{paid(tok2, p1)}, nil},
		{"bad token among good", []string{"L402 " + tok + ",b@d," + tok2 + ":" + pre}, []Credential{paid(tok, p1), paid(tok2, p1)}, nil},

		{"nothing", nil, nil, ErrNoCredentials},
		{"empty", []string{"", "  "}, nil, ErrNoCredentials},
		{"basic only", []string{"Basic dXNlcjpwYXNz"}, nil, ErrNoCredentials},
		{"scheme prefix", []string{"L4021 " + tok + ":" + pre}, nil, ErrNoCredentials},
		{"scheme only", []string{"L402"}, nil, ErrMalformed},
		{"scheme and spaces", []string{"L402   "}, nil, ErrMalformed},
		{"no space after scheme", []string{"L402" + tok + ":" + pre}, nil, ErrNoCredentials},
		{"preimage only", []string{"L402 :" + pre}, nil, ErrMalformed},
		{"short preimage", []string{"L402 " + tok + ":" + pre[:62]}, nil, ErrMalformed},
		{"long preimage", []string{"L402 " + tok + ":" + pre + "00"}, nil, ErrMalformed},
		{"non-hex preimage", []string{"L402 " + tok + ":" + strings.Repeat("g", 64)}, nil, ErrMalformed},
		{"two colons", []string{"L402 " + tok + ":" + pre + ":" + pre}, nil, ErrMalformed},
		{"bad token chars", []string{"L402 tok*en:" + pre}, nil, ErrMalformed},
		{"too much padding", []string{"L402 AAAA===:" + pre}, nil, ErrMalformed},
		{"space inside token", []string{"L402 Ag EP:" + pre}, nil, ErrMalformed},
		{"token too long", []string{"L402 " + strings.Repeat("A", MaxTokenLen+1) + ":" + pre}, nil, ErrMalformed},
		{"header too long", []string{"L402 " + strings.Repeat("A,", MaxHeaderLen/2) + tok + ":" + pre}, nil, ErrMalformed},
		{"other header too long", []string{"Basic " + strings.Repeat("A", MaxHeaderLen)}, nil, ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAuthorization(tt.values)
			if !errors.Is(err, tt.err) || tt.err == nil && err != nil {
				t.Fatalf("error = %v, want %v", err, tt.err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseAuthorizationLimits(t *testing.T) {
	pre := hex.EncodeToString(testPreimage[:])
	long := strings.Repeat("A", MaxTokenLen)
	got, err := ParseAuthorization([]string{"L402 " + long + ":" + pre})
	if err != nil || len(got) != 1 || got[0].Token != long {
		t.Fatalf("token of MaxTokenLen: %v, %d credentials", err, len(got))
	}

	// More tokens than MaxCredentials: the first ones are kept, and still
	// get the preimage that follows them.
	toks := make([]string, MaxCredentials+5)
	for i := range toks {
		toks[i] = "AAAA"
	}
	values := []string{"L402 " + strings.Join(toks, ",") + ":" + pre, "L402 BBBB:" + pre}
	got, err = ParseAuthorization(values)
	if err != nil || len(got) != MaxCredentials {
		t.Fatalf("%v, %d credentials, want %d", err, len(got), MaxCredentials)
	}
	for _, c := range got {
		if !c.HasPreimage || c.Token != "AAAA" {
			t.Fatalf("credential %+v", c)
		}
	}
}

func TestFormatAuthorization(t *testing.T) {
	got, err := FormatAuthorization("AgEP+/8=", testPreimage)
	want := "L402 AgEP+/8=:" + hex.EncodeToString(testPreimage[:])
	if err != nil || got != want {
		t.Fatalf("FormatAuthorization = %q, %v; want %q", got, err, want)
	}
	for _, bad := range []string{"", "a b", "a:b", "a,b", "ab\"", "AAAA===", strings.Repeat("A", MaxTokenLen+1)} {
		if _, err := FormatAuthorization(bad, testPreimage); !errors.Is(err, ErrMalformed) {
			t.Errorf("FormatAuthorization(%q) error = %v", bad, err)
		}
	}
}

func FuzzParseAuthorization(f *testing.F) {
	pre := hex.EncodeToString(testPreimage[:])
	seeds := []string{
		"L402 AgEPY2FkZHk=:" + pre,
		"LSAT AgEPY2FkZHk=:" + strings.ToUpper(pre),
		"l402 a,b , c :" + pre,
		"L402 AgEP-_8",
		"L402 tok:",
		"L402 a:" + pre + ", LSAT b:" + pre,
		"Basic dXNlcjpwYXNz, L402 x, Bearer y",
		"L402 :" + pre,
		"L402 a : b : c",
		"L402\t\tAAAA==\t:\t" + pre,
		"",
		",,,",
		"L402",
	}
	for _, s := range seeds {
		f.Add(s, "")
	}
	f.Add("L402 a:"+pre, "LSAT b")
	f.Fuzz(func(t *testing.T, v1, v2 string) {
		creds, err := ParseAuthorization([]string{v1, v2})
		if err == nil && len(creds) == 0 || err != nil && len(creds) != 0 {
			t.Fatalf("%d credentials with error %v", len(creds), err)
		}
		if err != nil && !errors.Is(err, ErrNoCredentials) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error %v", err)
		}
		if len(creds) > MaxCredentials {
			t.Fatalf("%d credentials", len(creds))
		}
		for _, c := range creds {
			if !validToken(c.Token) {
				t.Fatalf("invalid token %q returned", c.Token)
			}
			// parse(format(x)) == x
			if c.HasPreimage {
				s, err := FormatAuthorization(c.Token, c.Preimage)
				if err != nil {
					t.Fatal(err)
				}
				again, err := ParseAuthorization([]string{s})
				if err != nil || len(again) != 1 || again[0] != c {
					t.Fatalf("round trip of %+v gave %+v, %v", c, again, err)
				}
			}
			again, err := ParseAuthorization([]string{"L402 " + c.Token})
			if err != nil || len(again) != 1 || again[0] != (Credential{Token: c.Token}) {
				t.Fatalf("token-only round trip of %q gave %+v, %v", c.Token, again, err)
			}
		}
	})
}

func BenchmarkParseAuthorization(b *testing.B) {
	k := mustKeyring(b, testKey)
	tok, _ := mintTest(b, k, testCaveats()...)
	v, _ := FormatAuthorization(tok, testPreimage)
	values := []string{v}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAuthorization(values); err != nil {
			b.Fatal(err)
		}
	}
}

// TestStripAuthorization: what ParseAuthorization reads as an L402
// credential is exactly what StripAuthorization takes out, including forms
// a split on the first space misses (a tab after the scheme, the list
// starting after a comma); everything else is left as it came.
func TestStripAuthorization(t *testing.T) {
	pre := hex.EncodeToString(testPreimage[:])
	for _, tt := range []struct{ in, want string }{
		{"L402 AgEP:" + pre, ""},
		{"L402\tAgEP:" + pre, ""},
		{"L402 ,AgEP:" + pre, ""},
		{"L402 , AgEP , AgEQ :" + pre, ""},
		{"lsat AgEP", ""},
		{"L402", ""},
		{"Basic dXNlcjpwYXNz", "Basic dXNlcjpwYXNz"},
		{"Basic dXNlcjpwYXNz, L402 AgEP:" + pre, "Basic dXNlcjpwYXNz"},
		{"L402 AgEP:" + pre + ", Bearer abc", "Bearer abc"},
		{"Digest a=1, b=2, L402\tAgEP, c:" + pre + ", Bearer x", "Digest a=1, b=2, Bearer x"},
		{"Bearer L402", "Bearer L402"},
		{"", ""},
	} {
		if got := StripAuthorization(tt.in); got != tt.want {
			t.Errorf("StripAuthorization(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if _, err := ParseAuthorization([]string{StripAuthorization(tt.in)}); !errors.Is(err, ErrNoCredentials) {
			t.Errorf("after stripping %q an L402 credential is still read: %v", tt.in, err)
		}
	}
	lone := "L402 AgEP:" + pre
	if n := testing.AllocsPerRun(100, func() { StripAuthorization(lone) }); n != 0 {
		t.Errorf("stripping a lone credential allocates %v times", n)
	}
}

// FuzzStripAuthorization: nothing ParseAuthorization would read as an L402
// credential survives StripAuthorization, and a value without one comes
// back unchanged.
func FuzzStripAuthorization(f *testing.F) {
	pre := hex.EncodeToString(testPreimage[:])
	for _, s := range []string{
		"L402 AgEPY2FkZHk=:" + pre, "L402\tAgEP:" + pre, "L402 ,AgEP:" + pre, "Basic x, L402 a, b:" + pre + ", Bearer y",
		"Foo L402, AgEP:" + pre, "L402 a :" + pre, "x, ,L402,", "LSAT", "Basic dXNlcjpwYXNz",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s := StripAuthorization(v)
		if _, err := ParseAuthorization([]string{s}); !errors.Is(err, ErrNoCredentials) {
			t.Fatalf("StripAuthorization(%q) = %q still holds an L402 credential: %v", v, s, err)
		}
		if _, err := ParseAuthorization([]string{v}); errors.Is(err, ErrNoCredentials) && len(v) <= MaxHeaderLen && s != v {
			t.Fatalf("StripAuthorization(%q) = %q changed a value without L402 credentials", v, s)
		}
	})
}
