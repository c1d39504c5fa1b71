// Package payment implements the wire formats of the "Payment" HTTP
// authentication scheme (draft-httpauth-payment-00) for the Lightning
// payment method, with its charge (draft-lightning-charge-00) and session
// (draft-lightning-session-00) intents. It is pure: no network or storage
// I/O, time passed in as now. Consuming a payment once and keeping session
// balances is the caller's job.
//
// # Challenge
//
// A server answers 402 with one WWW-Authenticate value per offer (§5.1):
//
//	Payment id="<id>", realm="api.example.com", method="lightning", intent="charge",
//	    request="<base64url JCS JSON>", expires="2026-01-01T00:05:00Z"
//
// The request (§5.1.1) is base64url without padding (RFC 4648 §5) of RFC
// 8785 canonical JSON; for a charge (draft-lightning-charge-00 §7):
//
//	{"amount":"100","currency":"sat","description":"…",
//	 "methodDetails":{"invoice":"lnbc…","network":"mainnet","paymentHash":"<hex>"}}
//
// for a session (draft-lightning-session-00 §7) amount is per unit and
// paymentHash, depositInvoice, depositAmount, idleTimeout and unitType sit
// at the top level. Every value is a string, so no JSON number is ever
// canonicalized here. The id is stateless (§5.1.2.1.1):
//
//	id = base64url_nopad(HMAC-SHA256(secret, realm|method|intent|request|expires|digest|opaque))
//
// computed over the wire strings; see [Binder]. Values are always quoted and
// never need a quoted-pair, since Alby and lnget do not unescape.
//
// # Credential
//
// The client pays the invoice and retries with (§5.2)
//
//	Authorization: Payment <base64url JSON>
//
// of {"challenge":{<echo of id, realm, method, intent, request[, expires,
// digest, opaque, description]>},"source":"<optional DID>","payload":{…}}.
// The charge payload is {"preimage":"<64 hex>"} (draft-lightning-charge-00
// §8); session payloads carry an action: open {preimage, returnInvoice},
// bearer and close {sessionId, preimage}, topUp {sessionId, topUpPreimage}
// (draft-lightning-session-00 §8). [ParseAuthorization] reads every
// Authorization value; [Verifier] checks what needs no state.
//
// # Receipt and problems
//
// A 2xx answer carries Payment-Receipt: base64url JSON of status "success",
// method, timestamp, reference (the payment hash or session id) and, per
// intent, challengeId, refundSats and refundStatus (§5.3;
// draft-lightning-charge-00 §10.2; draft-lightning-session-00 §15). Failures
// carry an RFC 9457 application/problem+json body (§8) whose types are
// under https://paymentauth.org/problems/; see [ProblemFor].
//
// # Conformance
//
// testdata/vectors.json holds Aperture's cross-implementation vectors; the
// tests run all of them and name each place this package deliberately
// differs (testdata/README.md).
package payment
