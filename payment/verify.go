package payment

import (
	"crypto/sha256"
	"crypto/subtle"
	"time"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

// Verifier checks the stateless part of Payment credentials for one realm:
// everything that needs neither the node nor stored state. What is left to
// the caller is said with each result: consuming a payment hash once
// (charge, open, topUp) and the session's state (bearer, topUp, close).
type Verifier struct {
	// Realm is the protection space of this server's challenges.
	Realm string
	// Binder holds the challenge secrets (newest first).
	Binder *Binder
}

// VerifiedCharge is a verified Lightning charge credential.
type VerifiedCharge struct {
	// PaymentHash is the paid invoice's payment hash. The caller must
	// consume it atomically (first use wins) and keep it consumed until
	// Expires has passed, then serve.
	PaymentHash [32]byte
	// ChallengeID is the id of the answered challenge, for the receipt.
	ChallengeID string
	// Expires is the challenge's expiry.
	Expires time.Time
	// Request is the decoded charge request.
	Request ChargeRequest
}

// VerifyCharge verifies a Lightning charge credential without any node
// call (draft-lightning-charge-00 §9, with the stateless binding of
// draft-httpauth-payment-00 §5.1.2.1.1 in place of a stored challenge): the
// payload holds a preimage; the echo is a lightning charge of v.Realm without
// digest; its id is the HMAC of the echoed parameters; expires is present
// and after now; the request decodes and its amount is price (the HMAC binds
// no URL, so the route's price is checked here); and sha256(preimage) is the
// request's paymentHash. The invoice is not decoded: the server that bound
// the challenge must have set expires no later than the invoice's expiry
// (draft-lightning-charge-00 §10.1), which makes expires the effective
// expiry. Errors, in that order of checks: ErrMalformed, ErrUnsupported,
// ErrWrongRealm, ErrInvalidChallenge, ErrExpired, ErrWrongAmount,
// ErrInvalidPreimage.
func (v *Verifier) VerifyCharge(c *Credential, price int64, now time.Time) (VerifiedCharge, error) {
	payload, err := c.ChargePayload()
	if err != nil {
		return VerifiedCharge{}, err
	}
	if err := v.checkEcho(&c.Challenge, IntentCharge); err != nil {
		return VerifiedCharge{}, err
	}
	expires, err := checkExpiry(&c.Challenge, now)
	if err != nil {
		return VerifiedCharge{}, err
	}
	req, err := DecodeChargeRequest(c.Challenge.Request)
	if err != nil {
		return VerifiedCharge{}, err
	}
	if req.Amount != price {
		return VerifiedCharge{}, errdetail.New(ErrWrongAmount, "challenge for another price")
	}
	if !provesHash(payload.Preimage, req.MethodDetails.PaymentHash) {
		return VerifiedCharge{}, ErrInvalidPreimage
	}
	return VerifiedCharge{
		PaymentHash: req.MethodDetails.PaymentHash,
		ChallengeID: c.Challenge.ID,
		Expires:     expires,
		Request:     req,
	}, nil
}

// VerifiedSession is a session credential whose stateless part verified.
type VerifiedSession struct {
	// Action is ActionOpen, ActionBearer, ActionTopUp or ActionClose.
	Action string
	// SessionID is the session: for open the deposit's payment hash
	// (a new session), else the sessionId the payload names.
	SessionID [32]byte
	// PaymentHash is, for open and topUp, the paid deposit invoice's
	// payment hash, which the caller must consume once (a topUp is
	// credited once, an open opens once); zero for bearer and close.
	PaymentHash [32]byte
	// DepositSats is, for open and topUp, the paid deposit (the request's
	// depositAmount) to credit.
	DepositSats int64
	// ReturnInvoice is, for open, the client's refund invoice. The caller
	// must still decode it: same network, no amount
	// (draft-lightning-session-00 §10.1 step 7).
	ReturnInvoice string
	// ChallengeID is the id of the echoed challenge.
	ChallengeID string
	// Expires is the echoed challenge's expiry (zero if it has none,
	// possible for bearer and close).
	Expires time.Time
	// Request is the decoded echoed session request.
	Request SessionRequest
}

// VerifySession verifies the stateless part of a Lightning session
// credential (draft-lightning-session-00 §10). For every action: the payload
// decodes; the echo is a lightning session of v.Realm without digest whose
// id is the HMAC of the echoed parameters; its request decodes. Then:
//
//   - open: expires present and after now; the request offers a deposit
//     (depositInvoice and depositAmount) of at least one unit; its amount
//     is price, the route's price per unit; sha256(preimage) is its
//     paymentHash. The caller consumes PaymentHash, checks the return
//     invoice with its node's decoder and stores the session.
//   - topUp: expires present and after now; the request offers a deposit;
//     sha256(topUpPreimage) is its paymentHash. The caller consumes
//     PaymentHash and credits DepositSats to the open session SessionID.
//   - bearer and close: sha256(preimage) is the sessionId, so the preimage
//     proves the session. The expiry is not checked: a bearer echoes the
//     challenge of an earlier 402. The caller checks that the session
//     exists and is open and draws the route's price (never an echoed
//     amount), or closes and refunds.
//
// Errors: ErrMalformed, ErrInvalidReturnInvoice, ErrUnsupported,
// ErrWrongRealm, ErrInvalidChallenge, ErrExpired, ErrWrongAmount,
// ErrInvalidPreimage.
func (v *Verifier) VerifySession(c *Credential, price int64, now time.Time) (VerifiedSession, error) {
	payload, err := c.SessionPayload()
	if err != nil {
		return VerifiedSession{}, err
	}
	if err := v.checkEcho(&c.Challenge, IntentSession); err != nil {
		return VerifiedSession{}, err
	}
	req, err := DecodeSessionRequest(c.Challenge.Request)
	if err != nil {
		return VerifiedSession{}, err
	}
	s := VerifiedSession{Action: payload.Action, ChallengeID: c.Challenge.ID, Request: req}
	s.Expires, _ = c.Challenge.ExpiresAt()
	switch payload.Action {
	case ActionOpen, ActionTopUp:
		if _, err := checkExpiry(&c.Challenge, now); err != nil {
			return VerifiedSession{}, err
		}
		if req.DepositInvoice == "" || req.DepositAmount == 0 {
			return VerifiedSession{}, errdetail.New(ErrMalformed, "the echoed challenge offers no deposit")
		}
		if payload.Action == ActionOpen {
			if req.Amount != price {
				return VerifiedSession{}, errdetail.New(ErrWrongAmount, "challenge for another price")
			}
			if req.DepositAmount < req.Amount {
				return VerifiedSession{}, errdetail.New(ErrWrongAmount, "deposit below one unit")
			}
		}
		if !provesHash(payload.Preimage, req.PaymentHash) {
			return VerifiedSession{}, ErrInvalidPreimage
		}
		s.PaymentHash, s.DepositSats = req.PaymentHash, req.DepositAmount
		s.SessionID = payload.SessionID
		if payload.Action == ActionOpen {
			s.SessionID, s.ReturnInvoice = req.PaymentHash, payload.ReturnInvoice
		}
	default: // bearer, close
		if !provesHash(payload.Preimage, payload.SessionID) {
			return VerifiedSession{}, ErrInvalidPreimage
		}
		s.SessionID = payload.SessionID
	}
	return s, nil
}

// checkEcho checks method, intent, realm and digest of an echo and its id.
func (v *Verifier) checkEcho(e *Challenge, intent string) error {
	switch {
	case e.Method != MethodLightning || e.Intent != intent:
		return errdetail.New(ErrUnsupported, "expected "+MethodLightning+"/"+intent+", got "+errdetail.Quote(e.Method)+"/"+errdetail.Quote(e.Intent))
	case e.Realm != v.Realm:
		return ErrWrongRealm
	case e.Digest != "":
		return errdetail.New(ErrUnsupported, "digest-bound challenges are not verified here")
	case !v.Binder.Verify(e):
		return ErrInvalidChallenge
	}
	return nil
}

// checkExpiry requires an expiry in the future of now: without one a
// consumed payment hash could never be forgotten.
func checkExpiry(e *Challenge, now time.Time) (time.Time, error) {
	t, ok := e.ExpiresAt()
	switch {
	case !ok:
		return time.Time{}, errdetail.New(ErrExpired, "challenge without a valid expiry")
	case !now.Before(t):
		return time.Time{}, errdetail.New(ErrExpired, "expired at "+e.Expires)
	}
	return t, nil
}

// hashOf returns sha256(preimage).
func hashOf(preimage [32]byte) [32]byte { return sha256.Sum256(preimage[:]) }

// provesHash reports in constant time whether sha256(preimage) == hash.
func provesHash(preimage, hash [32]byte) bool {
	h := hashOf(preimage)
	return subtle.ConstantTimeCompare(h[:], hash[:]) == 1
}
