package errdetail

import (
	"errors"
	"strings"
	"testing"
)

func TestNew(t *testing.T) {
	kind := errors.New("pkg: kind")
	err := New(kind, "why")
	if !errors.Is(err, kind) || err.Error() != "pkg: kind: why" || Detail(err) != "why" {
		t.Fatalf("%v, %q", err, Detail(err))
	}
	if Detail(kind) != "pkg: kind" {
		t.Fatalf("Detail of a plain error: %q", Detail(kind))
	}
	if q := Quote("a\nb"); q != `"a\nb"` {
		t.Fatalf("Quote = %s", q)
	}
	if q := Quote(strings.Repeat("x", 100)); q != `"`+strings.Repeat("x", 64)+`"...` {
		t.Fatalf("Quote = %s", q)
	}
}
