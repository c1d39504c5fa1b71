// Package l402 mints, parses and verifies L402 (formerly LSAT) tokens and
// formats and parses the HTTP headers that carry them. It does no network or
// storage I/O: root keys live in memory and verification is a few HMACs.
//
// # Token
//
// A token is a version 2 macaroon (gopkg.in/macaroon.v2), binary serialized
// and base64 encoded (standard alphabet, padded; decoding also accepts the
// URL-safe alphabet and missing padding). Its identifier is the layout of
// the reference implementation (Aperture), 66 bytes:
//
//	uint16 version (0, big endian) | 32-byte payment hash | 32-byte token id
//
// so the payment hash can be read from a token without any lookup. The
// token id is random except for its first 4 bytes, which name the root key
// that minted the token (see [Keyring]); clients treat the id as opaque.
//
// # Caveats
//
// Caveats are first-party macaroon caveats of the form key=value. [Keyring.Verify]
// enforces, for the [Checker]'s service S:
//
//	services=<name>:<tier>[,<name>:<tier>...]  must list S (any tier); required
//	S_valid_until=<unix seconds>                the check time must be before it
//	S_price=<sats>                              must equal Checker.Price when that is set; then required
//	S_issued_at=<unix seconds>                  with Checker.MaxAge set, the check time must be before it plus MaxAge
//
// Every occurrence of a caveat is checked on its own, so a holder who appends
// a caveat can only narrow the token, never widen it. Caveats the package does
// not know (including other services' caveats) are ignored unless
// Checker.Extra says otherwise. Third-party caveats are not supported.
//
// # Headers
//
// A client pays the invoice of a challenge,
//
//	WWW-Authenticate: L402 version="0", token="<b64>", invoice="<bolt11>", macaroon="<b64>"
//
// and retries with
//
//	Authorization: L402 <b64 token>:<hex preimage>
//
// [ParseAuthorization] accepts every value of every Authorization header,
// the LSAT scheme, either hex case, several comma separated tokens and a
// token without preimage, and returns every candidate credential.
// [StripAuthorization] removes from a value exactly what ParseAuthorization
// reads as L402 credentials (one scanner serves both), so a server can pass
// on whatever else the header held.
package l402
