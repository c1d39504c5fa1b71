package lndtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"gopkg.in/macaroon.v2"
)

// macaroonKinds are the macaroons lnd bakes at startup, by file name
// without ".macaroon", with the permissions (entity:action) each grants, as
// in lnd v0.21.
var macaroonKinds = map[string][]string{
	"admin": {"onchain:read", "offchain:read", "address:read", "message:read", "peers:read",
		"info:read", "invoices:read", "signer:read", "macaroon:read",
		"onchain:write", "offchain:write", "address:write", "message:write", "peers:write",
		"info:write", "invoices:write", "signer:generate", "macaroon:generate", "macaroon:write"},
	"readonly": {"onchain:read", "offchain:read", "address:read", "message:read",
		"peers:read", "info:read", "invoices:read", "signer:read", "macaroon:read"},
	"invoice": {"invoices:read", "invoices:write", "address:read", "address:write", "onchain:read"},
	"router":  {"offchain:read", "offchain:write"},
}

// methodPermissions are lnd's required permissions for the RPCs the fake
// implements. Other methods are not permission-checked.
var methodPermissions = map[string]string{
	"/lnrpc.Lightning/GetInfo":                  "info:read",
	"/lnrpc.Lightning/AddInvoice":               "invoices:write",
	"/lnrpc.Lightning/LookupInvoice":            "invoices:read",
	"/lnrpc.Lightning/SubscribeInvoices":        "invoices:read",
	"/lnrpc.Lightning/ListInvoices":             "invoices:read",
	"/lnrpc.Lightning/DecodePayReq":             "offchain:read",
	"/lnrpc.Lightning/ListChannels":             "offchain:read",
	"/lnrpc.Lightning/CheckMacaroonPermissions": "macaroon:read",
	"/routerrpc.Router/SendPaymentV2":           "offchain:write",
	"/routerrpc.Router/TrackPaymentV2":          "offchain:read",
}

// newMacaroon bakes a caveat-free v2 macaroon under rootKey that grants
// perms ("entity:action", or "uri:<method path>" for one RPC), with lnd's
// identifier: the bakery's version byte 3, then a protobuf MacaroonId whose
// ops list the permissions, grouped by entity.
func newMacaroon(rootKey []byte, perms []string) ([]byte, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("macaroon id: %w", err)
	}
	id := &lnrpc.MacaroonId{Nonce: nonce, StorageId: []byte("0")}
	sorted := slices.Clone(perms)
	slices.Sort(sorted)
	for _, p := range sorted {
		entity, action, ok := strings.Cut(p, ":")
		if !ok {
			return nil, fmt.Errorf("permission %q is not entity:action", p)
		}
		if last := len(id.Ops) - 1; last >= 0 && id.Ops[last].Entity == entity {
			id.Ops[last].Actions = append(id.Ops[last].Actions, action)
			continue
		}
		id.Ops = append(id.Ops, &lnrpc.Op{Entity: entity, Actions: []string{action}})
	}
	idBytes, err := proto.Marshal(id)
	if err != nil {
		return nil, fmt.Errorf("macaroon id: %w", err)
	}
	mac, err := macaroon.New(rootKey, append([]byte{3}, idBytes...), "lnd", macaroon.V2)
	if err != nil {
		return nil, fmt.Errorf("bake macaroon: %w", err)
	}
	b, err := mac.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("marshal macaroon: %w", err)
	}
	return b, nil
}

// BakeMacaroon bakes a macaroon for the node that grants exactly perms, as
// `lncli bakemacaroon` does: "entity:action" (e.g. "invoices:read") or
// "uri:<method path>". It returns the binary macaroon.
func (n *Node) BakeMacaroon(perms ...string) []byte {
	n.t.Helper()
	mac, err := newMacaroon(n.rootKey, perms)
	if err != nil {
		n.t.Fatalf("lndtest: %v", err)
	}
	return mac
}

// macaroonOps returns the permissions an lnd macaroon's identifier lists,
// as "entity:action".
func macaroonOps(mac *macaroon.Macaroon) (map[string]bool, error) {
	raw := mac.Id()
	if len(raw) < 1 || raw[0] != 3 {
		return nil, errors.New("invalid ID")
	}
	var id lnrpc.MacaroonId
	if err := proto.Unmarshal(raw[1:], &id); err != nil {
		return nil, fmt.Errorf("invalid ID: %w", err)
	}
	ops := make(map[string]bool)
	for _, op := range id.Ops {
		for _, action := range op.Actions {
			ops[op.Entity+":"+action] = true
		}
	}
	return ops, nil
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
	ops, err := verifyMacaroon(raw, rootKey, now)
	if err != nil {
		return err
	}
	need, checked := methodPermissions[fullMethod]
	if !checked {
		return nil
	}
	return allow(ops, fullMethod, need)
}

// verifyMacaroon checks a binary macaroon's signature and caveats as lnd
// does and returns the permissions it grants.
func verifyMacaroon(raw, rootKey []byte, now time.Time) (map[string]bool, error) {
	mac := &macaroon.Macaroon{}
	if err := mac.UnmarshalBinary(raw); err != nil {
		return nil, err
	}
	if mac.Version() != macaroon.V2 {
		return nil, fmt.Errorf("unknown macaroon version: %v", mac.Version())
	}
	ops, err := macaroonOps(mac)
	if err != nil {
		return nil, err
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
		return nil, fmt.Errorf("verification failed: %w", err)
	}
	return ops, nil
}

// allow grants a call of fullMethod if the macaroon has every permission
// in need, or the method's own uri: permission, with lnd's error otherwise.
func allow(ops map[string]bool, fullMethod string, need ...string) error {
	if ops["uri:"+fullMethod] {
		return nil
	}
	for _, p := range need {
		if !ops[p] {
			return errors.New("permission denied")
		}
	}
	return nil
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
