package lndtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc/metadata"
	"gopkg.in/macaroon.v2"
)

// macaroonKinds are the macaroons lnd bakes at startup, by file name
// without ".macaroon", with the permissions (entity:action) each grants.
// "admin" grants everything.
var macaroonKinds = map[string][]string{
	"admin": nil,
	"readonly": {"onchain:read", "offchain:read", "address:read", "message:read",
		"peers:read", "info:read", "invoices:read", "signer:read", "macaroon:read"},
	"invoice": {"invoices:read", "invoices:write", "address:read", "address:write", "onchain:read"},
	"router":  {"offchain:read", "offchain:write"},
}

// methodPermissions are lnd's required permissions for the RPCs the fake
// implements. Other methods are not permission-checked.
var methodPermissions = map[string]string{
	"/lnrpc.Lightning/GetInfo":           "info:read",
	"/lnrpc.Lightning/AddInvoice":        "invoices:write",
	"/lnrpc.Lightning/LookupInvoice":     "invoices:read",
	"/lnrpc.Lightning/SubscribeInvoices": "invoices:read",
	"/lnrpc.Lightning/ListInvoices":      "invoices:read",
	"/lnrpc.Lightning/DecodePayReq":      "offchain:read",
	"/routerrpc.Router/SendPaymentV2":    "offchain:write",
	"/routerrpc.Router/TrackPaymentV2":   "offchain:read",
}

// macIDPrefix starts the IDs of the fake's macaroons, after the bakery
// version-3 byte that lnd checks.
const macIDPrefix = "\x03lndtest:"

// newMacaroon bakes a caveat-free v2 macaroon of the given kind under
// rootKey.
func newMacaroon(rootKey []byte, kind string) ([]byte, error) {
	nonce := make([]byte, 8)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("macaroon id: %w", err)
	}
	id := []byte(macIDPrefix + kind + ":" + hex.EncodeToString(nonce))
	mac, err := macaroon.New(rootKey, id, "lnd", macaroon.V2)
	if err != nil {
		return nil, fmt.Errorf("bake %s macaroon: %w", kind, err)
	}
	b, err := mac.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal %s macaroon: %w", kind, err)
	}
	return b, nil
}

// checkMacaroon validates the "macaroon" metadata of an incoming call of
// fullMethod the way lnd's macaroon service does, with lnd's error texts
// (plain errors, which gRPC reports as codes.Unknown).
func checkMacaroon(ctx context.Context, rootKey []byte, now time.Time, fullMethod string) error {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return errors.New("unable to get metadata from context")
	}
	if len(md["macaroon"]) != 1 {
		return fmt.Errorf("expected 1 macaroon, got %d", len(md["macaroon"]))
	}
	raw, err := hex.DecodeString(md["macaroon"][0])
	if err != nil {
		return err
	}
	mac := &macaroon.Macaroon{}
	if err := mac.UnmarshalBinary(raw); err != nil {
		return err
	}
	if mac.Version() != macaroon.V2 {
		return fmt.Errorf("unknown macaroon version: %v", mac.Version())
	}
	if len(mac.Id()) < 1 || mac.Id()[0] != 3 {
		return errors.New("invalid ID")
	}
	check := func(caveat string) error {
		// lnd's time-before caveat (lncli bakemacaroon --timeout); any
		// other first-party caveat is unknown to this fake.
		if v, ok := strings.CutPrefix(caveat, "time-before "); ok {
			deadline, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return fmt.Errorf("cannot parse time-before caveat: %w", err)
			}
			if !now.Before(deadline) {
				return errors.New("macaroon has expired")
			}
			return nil
		}
		return fmt.Errorf("caveat %q not satisfied", caveat)
	}
	if err := mac.Verify(rootKey, check, nil); err != nil {
		return fmt.Errorf("verification failed: %w", err)
	}
	need, checked := methodPermissions[fullMethod]
	if !checked {
		return nil
	}
	rest, ok := bytes.CutPrefix(mac.Id(), []byte(macIDPrefix))
	if !ok {
		return errors.New("permission denied")
	}
	kind, _, _ := strings.Cut(string(rest), ":")
	perms, known := macaroonKinds[kind]
	if !known {
		return errors.New("permission denied")
	}
	if kind == "admin" {
		return nil
	}
	for _, p := range perms {
		if p == need {
			return nil
		}
	}
	return errors.New("permission denied")
}

// macaroonCreds sends a hex macaroon in the "macaroon" metadata key of every
// call, like lnd clients do.
type macaroonCreds string

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (m macaroonCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials.
func (m macaroonCreds) RequireTransportSecurity() bool { return true }
