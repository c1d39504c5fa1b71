package authparam

import (
	"reflect"
	"testing"
)

type parsed struct {
	Scheme string
	Bad    bool
	Params [][2]string
}

func scanAll(v string) []parsed {
	var out []parsed
	p := NewChallenges(v)
	for {
		var params [][2]string
		scheme, bad, ok := p.Next(func(n, v string) { params = append(params, [2]string{n, v}) })
		if !ok {
			return out
		}
		out = append(out, parsed{scheme, bad, params})
	}
}

func TestChallenges(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []parsed
	}{
		{"empty", " , ,", nil},
		{"scheme only", "Basic", []parsed{{"Basic", false, nil}}},
		{"params", `Payment id="a", realm=r`, []parsed{{"Payment", false, [][2]string{{"id", "a"}, {"realm", "r"}}}}},
		{"quoted-pairs undone", `X a="q\"u\\o\te"`, []parsed{{"X", false, [][2]string{{"a", `q"u\ote`}}}}},
		{"separators in quotes", `X a="b, c=d", Y e=f`, []parsed{{"X", false, [][2]string{{"a", "b, c=d"}}}, {"Y", false, [][2]string{{"e", "f"}}}}},
		{"token68 then challenge", `Negotiate abc+/==, L402 token=x`, []parsed{{"Negotiate", false, nil}, {"L402", false, [][2]string{{"token", "x"}}}}},
		{"BWS around equals", "X a = \"b\" ,\tc\t=d", []parsed{{"X", false, [][2]string{{"a", "b"}, {"c", "d"}}}}},
		{"no comma before next scheme", `X a=b,Y c=d`, []parsed{{"X", false, [][2]string{{"a", "b"}}}, {"Y", false, [][2]string{{"c", "d"}}}}},
		{"garbage after a value", `X a="b" junk, c=d`, []parsed{{"X", true, [][2]string{{"a", "b"}, {"c", "d"}}}}},
		{"unterminated", `X a="b`, []parsed{{"X", true, nil}}},
		{"control character", "X a=\"b\x01\"", []parsed{{"X", true, nil}}},
		{"no space after scheme", `X"a"`, []parsed{{"X", true, nil}}},
		{"not a scheme", `"x", Y`, []parsed{{"Y", false, nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scanAll(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestClasses(t *testing.T) {
	for _, s := range []string{"Payment", "L402", "a!#$%&'*+-.^_`|~9"} {
		if !IsToken(s) {
			t.Errorf("IsToken(%q) = false", s)
		}
	}
	for _, s := range []string{"", "a b", "a,b", `a"`, "a=b", "é"} {
		if IsToken(s) {
			t.Errorf("IsToken(%q) = true", s)
		}
	}
	for _, s := range []string{"", "a b\tc", "café", "one, two=three", "<>&/"} {
		if !IsQdtext(s) {
			t.Errorf("IsQdtext(%q) = false", s)
		}
	}
	for _, s := range []string{`a"b`, `a\b`, "a\x7fb", "a\nb", "a\x00"} {
		if IsQdtext(s) {
			t.Errorf("IsQdtext(%q) = true", s)
		}
	}
	if got := TrimOWS(" \t a b \t"); got != "a b" {
		t.Errorf("TrimOWS = %q", got)
	}
}

func FuzzChallenges(f *testing.F) {
	f.Add(`Basic realm="a\"b", Negotiate abc==, L402 token="A\=", invoice=lnbc1`)
	f.Add(`Payment id="a", realm="r", method="lightning", intent="charge", request="cQ" , , Payment id=b`)
	f.Add(`X a=, b==, ="", "x`)
	f.Fuzz(func(t *testing.T, v string) {
		// Scanning terminates and every scheme and parameter name is a
		// token; a value quoted again reads back the same.
		for _, c := range scanAll(v) {
			if !IsToken(c.Scheme) {
				t.Fatalf("scheme %q", c.Scheme)
			}
			for _, p := range c.Params {
				if !IsToken(p[0]) {
					t.Fatalf("name %q", p[0])
				}
				if IsQdtext(p[1]) {
					again := scanAll("X " + p[0] + "=\"" + p[1] + "\"")
					if len(again) != 1 || again[0].Bad || len(again[0].Params) != 1 || again[0].Params[0][1] != p[1] {
						t.Fatalf("value %q quoted again: %+v", p[1], again)
					}
				}
			}
		}
	})
}
