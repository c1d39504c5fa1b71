package l402

import (
	"bytes"
	"errors"
	"testing"
)

func TestIdentifierRoundTrip(t *testing.T) {
	id := Identifier{PaymentHash: testHash, TokenID: [32]byte{9, 8, 7}}
	b, err := id.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	// The reference layout: uint16 version | payment hash | token id.
	want := append(append([]byte{0, 0}, testHash[:]...), id.TokenID[:]...)
	if !bytes.Equal(b, want) || len(b) != IdentifierSize {
		t.Fatalf("MarshalBinary = %x, want %x", b, want)
	}
	got, err := DecodeIdentifier(b)
	if err != nil || got != id {
		t.Fatalf("DecodeIdentifier = %+v, %v; want %+v", got, err, id)
	}
	b2, err := id.AppendBinary([]byte("x"))
	if err != nil || !bytes.Equal(b2, append([]byte("x"), want...)) {
		t.Fatalf("AppendBinary = %x, %v", b2, err)
	}
	if _, err := (Identifier{Version: 1}).MarshalBinary(); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("MarshalBinary(version 1) error = %v", err)
	}
}

func TestDecodeIdentifierErrors(t *testing.T) {
	valid := make([]byte, IdentifierSize)
	v1 := bytes.Clone(valid)
	v1[1] = 1
	vmax := bytes.Clone(valid)
	vmax[0], vmax[1] = 0xff, 0xff
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"nil", nil, ErrMalformed},
		{"one byte", []byte{0}, ErrMalformed},
		{"version only", []byte{0, 0}, ErrMalformed},
		{"short", valid[:IdentifierSize-1], ErrMalformed},
		{"long", append(bytes.Clone(valid), 0), ErrMalformed},
		{"version 1", v1, ErrUnsupportedVersion},
		{"version 1 short", v1[:10], ErrUnsupportedVersion},
		{"version 65535", vmax, ErrUnsupportedVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeIdentifier(tt.in); !errors.Is(err, tt.want) {
				t.Fatalf("error = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := DecodeIdentifier(valid); err != nil {
		t.Fatalf("valid identifier: %v", err)
	}
}
