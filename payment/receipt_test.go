package payment

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestReceipt(t *testing.T) {
	ts := time.Date(2026, 3, 10, 21, 0, 0, 0, time.UTC)
	charge := Receipt{Method: MethodLightning, Reference: strings.Repeat("ab", 32), Timestamp: ts, ChallengeID: "kM9x"}
	h, err := charge.Encode()
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := DecodeBase64URL(h)
	if want := `{"challengeId":"kM9x","method":"lightning","reference":"` + charge.Reference + `","status":"success","timestamp":"2026-03-10T21:00:00Z"}`; string(raw) != want {
		t.Fatalf("charge receipt %s\nwant %s", raw, want)
	}
	stream := Receipt{Method: MethodLightning, Reference: "7f3a", Timestamp: ts, Usage: &Usage{Spent: 202, Units: 101}}
	j, err := stream.JSON()
	if want := `{"method":"lightning","reference":"7f3a","spent":202,"status":"success","timestamp":"2026-03-10T21:00:00Z","units":101}`; err != nil || string(j) != want {
		t.Fatalf("stream receipt %s, %v\nwant %s", j, err, want)
	}
	for _, r := range []Receipt{
		charge, stream,
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundStatus: RefundSucceeded, RefundSats: 140},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundStatus: RefundFailed, RefundSats: 140},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundStatus: RefundSkipped},
		{Method: MethodLightning, Reference: "s", Timestamp: ts.In(time.FixedZone("x", 3600)).Add(999 * time.Millisecond)},
	} {
		h, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseReceipt(h)
		want := r
		want.Timestamp = r.Timestamp.UTC().Truncate(time.Second)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("ParseReceipt = %+v, %v\nwant %+v", got, err, want)
		}
	}
	for _, r := range []Receipt{
		{},
		{Method: MethodLightning, Reference: "s"},
		{Method: MethodLightning, Timestamp: ts},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundSats: 1},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundStatus: "pending"},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundStatus: RefundSkipped, RefundSats: 3},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundStatus: RefundSucceeded, RefundSats: -1},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, RefundStatus: RefundSucceeded, RefundSats: maxSafeInteger + 1},
		{Method: MethodLightning, Reference: "s", Timestamp: ts, Usage: &Usage{Spent: -1}},
		{Method: "\xff", Reference: "s", Timestamp: ts},
	} {
		if h, err := r.Encode(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("Encode(%+v) = %q, %v", r, h, err)
		}
	}
	for _, j := range []string{
		`{"method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z"}`,
		`{"status":"failed","method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z"}`,
		`{"status":"success","method":"lightning","reference":"s","timestamp":"yesterday"}`,
		`{"status":"success","method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z","refundSats":-1}`,
		`{"status":"success","method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z","refundSats":1.5}`,
		`{"status":"success","method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z","refundSats":"1"}`,
		`{"status":"success","method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z","refundStatus":"pending"}`,
		`{"status":"success","method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z","spent":1}`,
		`{"status":"success","method":"lightning","reference":"s","timestamp":"2026-03-10T21:00:00Z","refundSats":9223372036854775808}`,
	} {
		if r, err := ParseReceiptJSON([]byte(j)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseReceiptJSON(%s) = %+v, %v", j, r, err)
		}
	}
}

func TestSessionEvent(t *testing.T) {
	e := SessionEvent{SessionID: "7f3a", BalanceSpent: 300, BalanceRequired: 2}
	j, err := e.JSON()
	if want := `{"balanceRequired":2,"balanceSpent":300,"sessionId":"7f3a"}`; err != nil || string(j) != want {
		t.Fatalf("JSON = %s, %v", j, err)
	}
	if got, err := ParseSessionEvent(j); err != nil || got != e {
		t.Fatalf("ParseSessionEvent = %+v, %v", got, err)
	}
	for _, bad := range []SessionEvent{{}, {SessionID: "a", BalanceSpent: -1}, {SessionID: "a", BalanceRequired: maxSafeInteger + 1}} {
		if _, err := bad.JSON(); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("JSON(%+v) = %v", bad, err)
		}
	}
	for _, j := range []string{`{}`, `{"sessionId":"a","balanceSpent":1}`, `{"sessionId":1,"balanceSpent":1,"balanceRequired":1}`} {
		if _, err := ParseSessionEvent([]byte(j)); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseSessionEvent(%s) = %v", j, err)
		}
	}
}

func FuzzParseReceipt(f *testing.F) {
	ts := time.Date(2026, 3, 10, 21, 0, 0, 0, time.UTC)
	for _, r := range []Receipt{
		{Method: MethodLightning, Reference: "ab", Timestamp: ts, ChallengeID: "x"},
		{Method: MethodLightning, Reference: "ab", Timestamp: ts, RefundStatus: RefundSucceeded, RefundSats: 140},
		{Method: MethodLightning, Reference: "ab", Timestamp: ts, Usage: &Usage{Spent: 2, Units: 1}},
	} {
		h, _ := r.Encode()
		j, _ := r.JSON()
		f.Add(h, j)
	}
	f.Add("eyJzZXNzaW9uSWQiOiJhYTExYmIyMiIsImJhbGFuY2VTcGVudCI6NDg2MCwiYmFsYW5jZVJlcXVpcmVkIjozfQ", []byte(`{"sessionId":"aa11bb22","balanceSpent":4860,"balanceRequired":3}`))
	f.Add(EncodeBase64URL([]byte(`{"status":"success","method":"m","reference":"r","timestamp":"2026-03-10T21:00:00.5+01:00","refundSats":9223372036854775807}`)), []byte(`{"spent":1}`))
	f.Fuzz(func(t *testing.T, h string, data []byte) {
		// The header and the SSE event data read the same way.
		if r, err := ParseReceipt(h); err == nil {
			roundTripReceipt(t, r)
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		if r, err := ParseReceiptJSON(data); err == nil {
			roundTripReceipt(t, r)
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
		if e, err := ParseSessionEvent(data); err == nil {
			if j, err := e.JSON(); err == nil {
				if again, err := ParseSessionEvent(j); err != nil || again != e {
					t.Fatalf("round trip of %+v: %+v, %v", e, again, err)
				}
			} else if !errors.Is(err, ErrInvalidParameter) {
				t.Fatal(err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatal(err)
		}
	})
}

// roundTripReceipt checks parse(encode(r)) == r, up to the timestamp's
// whole UTC seconds, and that encoding is then stable.
func roundTripReceipt(t *testing.T, r Receipt) {
	t.Helper()
	enc, err := r.Encode()
	if err != nil {
		if !errors.Is(err, ErrInvalidParameter) {
			t.Fatal(err)
		}
		return
	}
	got, err := ParseReceipt(enc)
	want := r
	want.Timestamp = r.Timestamp.UTC().Truncate(time.Second)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip of %+v: %+v, %v", r, got, err)
	}
	if again, err := got.Encode(); err != nil || again != enc {
		t.Fatalf("encoding not stable: %q, %q, %v", enc, again, err)
	}
}
