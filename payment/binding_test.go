package payment

import (
	"errors"
	"testing"
)

func TestNewBinder(t *testing.T) {
	for _, secrets := range [][][]byte{nil, {{}}, {testSecret, nil}} {
		if _, err := NewBinder(secrets...); !errors.Is(err, ErrInvalidParameter) {
			t.Errorf("NewBinder(%q) = %v", secrets, err)
		}
	}
	// The secret is copied.
	s := append([]byte(nil), testSecret...)
	b, err := NewBinder(s)
	if err != nil {
		t.Fatal(err)
	}
	s[0] ^= 1
	c := chargeChallenge(t, b, nil)
	if c.ID != ChallengeID(testSecret, &c) {
		t.Fatal("Binder uses the caller's slice")
	}
}

func TestBinderRotation(t *testing.T) {
	old, _ := NewBinder(testOldSecret)
	cur, _ := NewBinder(testSecret, testOldSecret)
	onlyNew, _ := NewBinder(testSecret)
	c := chargeChallenge(t, old, nil)
	if !cur.Verify(&c) {
		t.Fatal("a challenge of the previous secret does not verify")
	}
	if onlyNew.Verify(&c) {
		t.Fatal("a challenge of a dropped secret verifies")
	}
	n := chargeChallenge(t, cur, nil)
	if n.ID != ChallengeID(testSecret, &n) || !onlyNew.Verify(&n) || old.Verify(&n) {
		t.Fatal("new challenges are not bound with the newest secret")
	}
}

func TestBinderTamper(t *testing.T) {
	b, _ := NewBinder(testSecret)
	c := chargeChallenge(t, b, func(_ *ChargeRequest, c *Challenge) { c.Opaque = "eyJhIjoiYiJ9"; c.Digest = "sha-256=:X48E9q:" })
	if !b.Verify(&c) {
		t.Fatal("does not verify")
	}
	for name, edit := range map[string]func(*Challenge){
		"id":         func(c *Challenge) { c.ID = c.ID[:42] + "A" },
		"short id":   func(c *Challenge) { c.ID = c.ID[:42] },
		"realm":      func(c *Challenge) { c.Realm = "api.example.org" },
		"method":     func(c *Challenge) { c.Method = "lightninG" },
		"intent":     func(c *Challenge) { c.Intent = IntentSession },
		"request":    func(c *Challenge) { c.Request = c.Request[:len(c.Request)-1] },
		"expires":    func(c *Challenge) { c.Expires = "2026-01-01T00:05:01Z" },
		"no expires": func(c *Challenge) { c.Expires = "" },
		"digest":     func(c *Challenge) { c.Digest = "" },
		"opaque":     func(c *Challenge) { c.Opaque = "e30" },
		"slot shift": func(c *Challenge) { c.Realm, c.Method = c.Realm+"|"+c.Method, "" },
	} {
		x := c
		edit(&x)
		if b.Verify(&x) {
			t.Errorf("%s changed and still verifies", name)
		}
	}
	x := c
	x.Description = "not covered"
	if !b.Verify(&x) {
		t.Error("description is covered by the id")
	}
}

func TestBinderAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool drop items")
	}
	b, _ := NewBinder(testSecret, testOldSecret)
	c := chargeChallenge(t, b, nil)
	old, _ := NewBinder(testOldSecret)
	o := chargeChallenge(t, old, nil)
	if n := testing.AllocsPerRun(100, func() {
		if !b.Verify(&c) || !b.Verify(&o) {
			t.Fatal("does not verify")
		}
	}); n != 0 {
		t.Fatalf("Verify allocates %v times", n)
	}
}
