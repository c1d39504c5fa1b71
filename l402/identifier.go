package l402

import (
	"encoding/binary"
	"strconv"

	"github.com/lightningcaddy/caddy-lightning/internal/errdetail"
)

const (
	// IdentifierVersion is the only identifier version this package reads
	// and writes.
	IdentifierVersion = 0

	// IdentifierSize is the length of an encoded version 0 identifier.
	IdentifierSize = 2 + 32 + 32
)

// Identifier is the macaroon identifier of an L402 token: it binds the token
// to the payment hash of its invoice and names the token.
type Identifier struct {
	// Version is the identifier layout version; only 0 exists.
	Version uint16
	// PaymentHash is the hash of the invoice that pays for the token.
	PaymentHash [32]byte
	// TokenID is unique per token; its first 4 bytes name the root key.
	TokenID [32]byte
}

// AppendBinary appends the encoded identifier to b.
func (id Identifier) AppendBinary(b []byte) ([]byte, error) {
	if id.Version != IdentifierVersion {
		return b, errdetail.New(ErrUnsupportedVersion, "version "+strconv.Itoa(int(id.Version)))
	}
	b = binary.BigEndian.AppendUint16(b, id.Version)
	b = append(b, id.PaymentHash[:]...)
	return append(b, id.TokenID[:]...), nil
}

// MarshalBinary returns the 66-byte encoding of a version 0 identifier.
func (id Identifier) MarshalBinary() ([]byte, error) {
	return id.AppendBinary(make([]byte, 0, IdentifierSize))
}

// DecodeIdentifier decodes an identifier, rejecting any version but 0 and any
// length but IdentifierSize.
func DecodeIdentifier(b []byte) (Identifier, error) {
	if len(b) < 2 {
		return Identifier{}, errdetail.New(ErrMalformed, "identifier too short")
	}
	var id Identifier
	id.Version = binary.BigEndian.Uint16(b)
	if id.Version != IdentifierVersion {
		return Identifier{}, errdetail.New(ErrUnsupportedVersion, "version "+strconv.Itoa(int(id.Version)))
	}
	if len(b) != IdentifierSize {
		return Identifier{}, errdetail.New(ErrMalformed, "identifier length "+strconv.Itoa(len(b)))
	}
	copy(id.PaymentHash[:], b[2:34])
	copy(id.TokenID[:], b[34:])
	return id, nil
}

// keyID returns the root key id stored in the first 4 bytes of the token id.
func (id *Identifier) keyID() uint32 {
	return binary.BigEndian.Uint32(id.TokenID[:4])
}
