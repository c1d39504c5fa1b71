// Package x402 implements the HTTP headers of x402 version 2 for the
// Lightning "exact" offer that Alby's lightning-tools pays (x402 v2
// specification §5; transports-v2/http; the Lightning proposal, x402 PR
// #1311). It is pure: no network or storage I/O. Looking the invoice up on
// the node, and consuming it once, is the caller's job.
//
// # PAYMENT-REQUIRED
//
// A 402 carries standard base64 (RFC 4648 §4, padded) of the JSON
// PaymentRequired object (spec §5.1):
//
//	{"x402Version":2,"error":"PAYMENT-SIGNATURE header is required",
//	 "resource":{"url":"https://api.example.com/weather","mimeType":"application/json"},
//	 "accepts":[{"scheme":"exact","network":"bip122:000000000019d6689c085ae165831e93",
//	   "amount":"100000","asset":"BTC","payTo":"anonymous","maxTimeoutSeconds":600,
//	   "extra":{"paymentMethod":"lightning","invoice":"lnbc1u1p…"}}]}
//
// amount is the invoice's amount in millisatoshis as a decimal string, the
// network a CAIP-2 bip122 id (first 16 bytes of the genesis block hash in
// hex). The JSON is written in ASCII (other characters as \u escapes),
// because browsers decode the header with atob, which reads Latin-1.
//
// # PAYMENT-SIGNATURE
//
// The client pays the invoice and retries with standard base64 of the
// PaymentPayload (spec §5.2) as Alby builds it, before paying and without a
// preimage:
//
//	{"x402Version":2,"scheme":"exact","network":"bip122:…","payload":{"invoice":"lnbc…"},"accepted":{<the accepts entry>}}
//
// [ParsePaymentSignature] checks its structure and returns the invoice;
// anyone who saw the invoice can send this, so only the node's record that
// the invoice (minted by this server for x402 on this route) is settled
// proves payment. A server that keeps no record of its offers can put a
// tag of its own in extra.binding ([Extra]), which the client echoes, and
// read the payment with [DecodePaymentSignature], on whatever network the
// tag then proves.
//
// # PAYMENT-RESPONSE
//
// A success carries standard base64 of the SettlementResponse (spec §5.3)
// {"success":true,"transaction":"<invoice>","network":"bip122:…","payer":"anonymous",
// "extra":{"invoice":"…","settledAt":<unix>}}; a failure may carry
// {"success":false,"errorReason":"invalid_payload","transaction":"","network":"bip122:…"}
// (error codes of spec §9).
package x402
