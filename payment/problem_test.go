package payment

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

func TestProblemFor(t *testing.T) {
	tests := []struct {
		err    error
		intent string
		typ    ProblemType
		status int
	}{
		{ErrNoCredential, IntentCharge, ProblemPaymentRequired, 402},
		{ErrMultipleCredentials, IntentCharge, ProblemMalformedCredential, 400},
		{ErrUnsupported, IntentCharge, ProblemMethodUnsupported, 400},
		{errdetail.New(ErrMalformed, "x"), IntentCharge, ProblemLightningMalformedCredential, 402},
		{ErrWrongRealm, IntentCharge, ProblemLightningUnknownChallenge, 402},
		{ErrInvalidChallenge, IntentSession, ProblemLightningUnknownChallenge, 402},
		{ErrExpired, IntentCharge, ProblemLightningExpiredInvoice, 402},
		{ErrExpired, IntentSession, ProblemLightningChallengeExpired, 402},
		{ErrInvalidPreimage, IntentCharge, ProblemLightningInvalidPreimage, 402},
		{ErrInvalidReturnInvoice, IntentSession, ProblemLightningInvalidReturnInvoice, 402},
		{ErrWrongAmount, IntentCharge, ProblemVerificationFailed, 402},
		{fmt.Errorf("ledger: %w", errors.New("down")), IntentCharge, ProblemVerificationFailed, 402},
	}
	for _, tt := range tests {
		p := ProblemFor(tt.err, tt.intent)
		if p.Type != ProblemBase+string(tt.typ) || p.Status != tt.status || p.Title == "" || p.Detail != tt.err.Error() {
			t.Errorf("ProblemFor(%v, %s) = %+v", tt.err, tt.intent, p)
		}
	}
	p := NewProblem(ProblemLightningSessionClosed, "closed at 12:00")
	p.ChallengeID = "abc"
	var got map[string]any
	if err := json.Unmarshal(p.JSON(), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type": "https://paymentauth.org/problems/lightning/session-closed", "title": "Session Closed",
		"status": float64(402), "detail": "closed at 12:00", "challengeId": "abc",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("problem JSON %s", p.JSON())
	}
	if b := NewProblem(ProblemPaymentRequired, "").JSON(); string(b) != `{"type":"https://paymentauth.org/problems/payment-required","title":"Payment Required","status":402}` {
		t.Fatalf("minimal problem %s", b)
	}
	for typ := range problemTitles {
		if typ.Title() == "" || typ.URI() != ProblemBase+string(typ) {
			t.Errorf("problem type %q", typ)
		}
	}
}

// TestProblemStatusDivergence pins the statuses of the lightning charge
// problem types: draft-lightning-charge-00 §11 gives 400 (malformed) and
// 401 (others); we answer 402 with a fresh challenge, as
// draft-httpauth-payment-00 §4.2 and draft-lightning-session-00 §16 say.
func TestProblemStatusDivergence(t *testing.T) {
	for _, typ := range []ProblemType{ProblemLightningMalformedCredential, ProblemLightningUnknownChallenge, ProblemLightningInvalidPreimage, ProblemLightningExpiredInvoice} {
		if typ.Status() != http.StatusPaymentRequired {
			t.Errorf("%s: status %d, want 402", typ, typ.Status())
		}
	}
}
