package payment

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCanonicalizeRefuses(t *testing.T) {
	for _, in := range []string{
		``, ` `, `{`, `{"a":1,}`, `[1,]`, `{"a" 1}`, `{a:1}`, `01`, `1.`, `.5`, `1e`, `-`, `+1`, `NaN`, `Infinity`,
		`"a`, `"\x"`, `"\u12"`, `"\u12G4"`, "\"a\x01\"", `tru`, `nul`, `{"a":1}x`, `[1] [2]`,
		`{"a":1,"a":2}`,                     // duplicate member (RFC 8785 §3.1, I-JSON)
		`{"a":1,"\u0061":2}`,                // duplicate once unescaped
		`"\ud800"`, `"\udc00"`, `"\ud800x"`, // lone surrogates
		`"\ud800\u0041"`,                               // high surrogate and no low one
		"\"\xff\"", "\"\xc3\"", "{\"\xed\xa0\x80\":1}", // invalid UTF-8, encoded surrogate
		`1e400`, `-1e400`, // beyond the double range
		strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1),
	} {
		if got, err := Canonicalize([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("Canonicalize(%q) = %q, %v; want ErrMalformed", in, got, err)
		}
	}
	deep := strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth)
	if _, err := Canonicalize([]byte(deep)); err != nil {
		t.Errorf("nesting of %d: %v", maxDepth, err)
	}
	var big strings.Builder
	big.WriteString(`{`)
	for i := range 100 {
		big.WriteString(`"k` + strings.Repeat("x", i) + `":1,`)
	}
	big.WriteString(`"kxx":2}`)
	if _, err := Canonicalize([]byte(big.String())); !errors.Is(err, ErrMalformed) {
		t.Errorf("duplicate in a large object: %v", err)
	}
}

func TestCanonicalizeStrings(t *testing.T) {
	tests := []struct{ in, want string }{
		// What json.Marshal gets wrong for RFC 8785.
		{`"<>&"`, `"<>&"`},
		{`"\u003c\u003e\u0026"`, `"<>&"`},
		{`"\u2028\u2029"`, "\"\u2028\u2029\""},
		{"\"\x7f/\"", "\"\x7f/\""},
		{`"\/"`, `"/"`},
		// Escapes JSON.stringify writes.
		{`"\u0000\u001F\u0008\u000C\u000a\u000D\u0009"`, `"\u0000\u001f\b\f\n\r\t"`},
		{`"\"\\"`, `"\"\\"`},
		{`"\ud83d\ude00"`, `"😀"`},
		{`"\uD83D\uDE00"`, `"😀"`},
		{`"\uFFFF"`, "\"\uffff\""},
	}
	for _, tt := range tests {
		got, err := Canonicalize([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
}

func TestCanonicalizeNumbers(t *testing.T) {
	tests := []struct{ in, want string }{
		{"0", "0"}, {"-0", "0"}, {"-0.0e10", "0"}, {"1", "1"}, {"-1", "-1"}, {"100", "100"},
		{"1.5", "1.5"}, {"0.1", "0.1"}, {"123e-2", "1.23"}, {"1E2", "100"},
		{"999999999999999999999", "1e+21"}, {"100000000000000000000", "100000000000000000000"},
		{"0.000001", "0.000001"}, {"0.0000001", "1e-7"}, {"1.5e-7", "1.5e-7"}, {"-1.5e300", "-1.5e+300"},
		{"4.94065645841246544e-324", "5e-324"}, {"1e-400", "0"},
		{"9007199254740993", "9007199254740992"},
		{"333333333.33333329", "333333333.3333333"}, {"1e23", "1e+23"}, {"5e-7", "5e-7"}, {"123456789012345680000", "123456789012345680000"},
	}
	for _, tt := range tests {
		got, err := Canonicalize([]byte(tt.in))
		if err != nil || string(got) != tt.want {
			t.Errorf("Canonicalize(%s) = %s, %v; want %s", tt.in, got, err, tt.want)
		}
	}
	// Every double round-trips through its ES rendering.
	for _, f := range []float64{math.MaxFloat64, math.SmallestNonzeroFloat64, 1 / 3.0, 2.5e-6, 1e21 - 65536, 0.1 + 0.2} {
		s := string(appendES6Number(nil, f))
		var back float64
		if err := json.Unmarshal([]byte(s), &back); err != nil || back != f {
			t.Errorf("%v rendered %s reads back as %v, %v", f, s, back, err)
		}
	}
}

func TestCompareUTF16(t *testing.T) {
	keys := []string{"\ue000", "\U00010000", "\uffff", "\ud7ff", "a", "", "ab", "A", "é", "\U0001F600", "\u2028"}
	sort.Slice(keys, func(i, j int) bool { return compareUTF16(keys[i], keys[j]) < 0 })
	want := []string{"", "A", "a", "ab", "é", "\u2028", "\ud7ff", "\U00010000", "\U0001F600", "\ue000", "\uffff"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("order %q\nwant  %q", keys, want)
	}
	for _, k := range keys {
		if compareUTF16(k, k) != 0 {
			t.Fatalf("compare(%q, %q) != 0", k, k)
		}
	}
}

func FuzzCanonicalize(f *testing.F) {
	for _, s := range []string{
		`{"b":[1,2.5,-0,1e21,{"d":null,"c":true}],"a":"x\u2028<&>\ud83d\ude00"}`, `[]`, `"\u0000"`, `1E-7`,
		`{"\ue000":1,"\ud800\udc00":2}`, `{"a":1,"a":2}`, `"\ud800"`, "\"\xff\"", `[[[[[]]]]]`, ` {"a" : [ ] } `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := Canonicalize(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error of the wrong kind: %v", err)
			}
			return
		}
		// Never accept what encoding/json rejects; the output is valid
		// UTF-8 JSON, canonical (idempotent) and means the same as the input.
		if !json.Valid(data) {
			t.Fatalf("accepted what encoding/json rejects: %q", data)
		}
		if !utf8.Valid(out) || !json.Valid(out) {
			t.Fatalf("invalid output %q", out)
		}
		again, err := Canonicalize(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("not idempotent: %q -> %q, %v", out, again, err)
		}
		var a, b any
		if err := json.Unmarshal(data, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(out, &b); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(a, b) { // as doubles, so -0 == 0
			t.Fatalf("meaning changed: %q -> %q", data, out)
		}
	})
}
