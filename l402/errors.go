package l402

import "errors"

// Errors returned by this package. Wrapped errors carry a short, secret-free
// detail; test for the kind with errors.Is.
var (
	// ErrNoCredentials means no L402 or LSAT credential was offered at all
	// (the caller should answer 402 with a fresh challenge).
	ErrNoCredentials = errors.New("l402: no L402 credentials")
	// ErrMalformed means a token, identifier or header could not be decoded,
	// exceeds a size limit, or uses a macaroon feature this package does
	// not support (third-party caveats).
	ErrMalformed = errors.New("l402: malformed token or header")
	// ErrUnsupportedVersion means the token identifier has a version other than 0.
	ErrUnsupportedVersion = errors.New("l402: unsupported token version")
	// ErrUnknownKey means the token was minted with a root key the keyring
	// does not hold (rotated out, revoked, or forged).
	ErrUnknownKey = errors.New("l402: unknown root key")
	// ErrInvalidSignature means the token's macaroon signature does not verify.
	ErrInvalidSignature = errors.New("l402: invalid token signature")
	// ErrPreimageMismatch means sha256(preimage) is not the token's payment hash.
	ErrPreimageMismatch = errors.New("l402: preimage does not match payment hash")
	// ErrPreimageRequired is returned with a verified token that came without
	// a preimage: the caller must establish payment another way (for example
	// by asking its node whether the invoice of the payment hash is settled).
	ErrPreimageRequired = errors.New("l402: token presented without preimage")
	// ErrRevoked means the token was revoked (Checker.Revoked said so).
	ErrRevoked = errors.New("l402: token revoked")
	// ErrExpired means a valid_until caveat for the service has passed.
	ErrExpired = errors.New("l402: token expired")
	// ErrWrongService means the token does not grant the requested service.
	ErrWrongService = errors.New("l402: token not valid for this service")
	// ErrWrongPrice means the token was bought at a different price.
	ErrWrongPrice = errors.New("l402: token not valid for this price")
	// ErrInvalidCaveat means a caveat of the checked service is malformed
	// or was rejected by Checker.Extra; Mint returns it for caveats it
	// refuses to write.
	ErrInvalidCaveat = errors.New("l402: invalid caveat")
)
