package lnd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"gopkg.in/macaroon.v2"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
)

// Permission is an lnd macaroon permission, "entity:action".
type Permission string

// The permissions of the lnd RPCs the client calls.
const (
	InfoRead      Permission = "info:read"      // GetInfo: Info, and the node's key and network for payments
	InvoicesRead  Permission = "invoices:read"  // LookupInvoice, SubscribeInvoices, ListInvoices
	InvoicesWrite Permission = "invoices:write" // AddInvoice
	OffchainRead  Permission = "offchain:read"  // TrackPaymentV2, ListChannels
	OffchainWrite Permission = "offchain:write" // SendPaymentV2
	MacaroonRead  Permission = "macaroon:read"  // CheckMacaroonPermissions, for Grants
)

// rpcPermissions is the permission lnd v0.21 requires for each RPC the
// client calls with a macaroon (GetState needs none).
var rpcPermissions = map[string]Permission{
	lndrpc.GetInfoMethod:           InfoRead,
	lndrpc.AddInvoiceMethod:        InvoicesWrite,
	lndrpc.LookupInvoiceMethod:     InvoicesRead,
	lndrpc.SubscribeInvoicesMethod: InvoicesRead,
	lndrpc.ListInvoicesMethod:      InvoicesRead,
	lndrpc.ListChannelsMethod:      OffchainRead,
	lndrpc.SendPaymentV2Method:     OffchainWrite,
	lndrpc.TrackPaymentV2Method:    OffchainRead,
}

// Grants is what the client's macaroon allows, for the RPCs the client
// calls.
type Grants struct {
	// FromNode is true when lnd checked the macaroon (signature, caveats
	// and permissions) with CheckMacaroonPermissions. When false, the
	// permissions were read from the macaroon's identifier, where lnd
	// lists them, without checking caveats such as an expiry.
	FromNode bool
	// NodeError says why lnd was not asked, when FromNode is false: it
	// refused CheckMacaroonPermissions (which needs macaroon:read) or was
	// unreachable.
	NodeError error

	allowed map[string]bool // by RPC method path
}

// Missing returns the permissions in need that the macaroon does not
// grant for every RPC of the client that requires them, in need's order.
func (g Grants) Missing(need ...Permission) []Permission {
	var missing []Permission
	for _, p := range need {
		for rpc, q := range rpcPermissions {
			if q == p && !g.allowed[rpc] {
				missing = append(missing, p)
				break
			}
		}
	}
	return missing
}

// Grants reports what the client's macaroon allows. It asks lnd
// (CheckMacaroonPermissions, once per RPC the client calls, so that
// permissions for single RPCs, `lncli bakemacaroon uri:...`, count too). If
// the macaroon may not ask (it lacks macaroon:read) or lnd is not ready or
// cannot be reached, it reads the permissions that lnd writes into the
// macaroon's identifier instead. It fails if lnd rejects the macaroon
// itself (expired, or baked by another node), or if the macaroon is not
// one of lnd's.
func (c *Client) Grants(ctx context.Context) (Grants, error) {
	g, err := c.grantsFromNode(ctx)
	switch {
	case err == nil:
		return g, nil
	case !isPermissionDenied(err) && c.Ready(ctx) == nil:
		return Grants{}, nodeError("check macaroon permissions", err)
	}
	local, localErr := grantsFromMacaroon(c.macaroon)
	if localErr != nil {
		return Grants{}, fmt.Errorf("read the macaroon's permissions: %w", localErr)
	}
	local.NodeError = nodeError("check macaroon permissions", err)
	if isPermissionDenied(err) {
		local.NodeError = fmt.Errorf("lnd refused CheckMacaroonPermissions: the macaroon lacks %s", MacaroonRead)
	}
	return local, nil
}

// grantsFromNode asks lnd whether the macaroon may call each RPC.
func (c *Client) grantsFromNode(ctx context.Context) (Grants, error) {
	g := Grants{FromNode: true, allowed: make(map[string]bool)}
	for _, rpc := range slices.Sorted(maps.Keys(rpcPermissions)) {
		callCtx, cancel := c.withTimeout(ctx)
		_, err := c.rpc.CheckMacaroonPermissions(callCtx, &lndrpc.CheckMacPermRequest{
			Macaroon:                        c.macaroon,
			FullMethod:                      rpc,
			CheckDefaultPermsFromFullMethod: true,
		})
		cancel()
		switch status.Code(err) {
		case codes.OK:
			g.allowed[rpc] = true
		case codes.InvalidArgument: // lnd's answer for a macaroon that does not allow rpc
			g.allowed[rpc] = false
		default:
			return Grants{}, err
		}
	}
	return g, nil
}

// grantsFromMacaroon reads the permissions lnd lists in a macaroon's
// identifier: a version byte (3), then a protobuf MacaroonId.
func grantsFromMacaroon(raw []byte) (Grants, error) {
	var mac macaroon.Macaroon
	if err := mac.UnmarshalBinary(raw); err != nil {
		return Grants{}, fmt.Errorf("not a macaroon: %w", err)
	}
	id := mac.Id()
	if len(id) == 0 || id[0] != 3 {
		return Grants{}, errors.New("not an lnd macaroon: unknown identifier version")
	}
	var decoded lndrpc.MacaroonId
	if err := proto.Unmarshal(id[1:], &decoded); err != nil {
		return Grants{}, fmt.Errorf("not an lnd macaroon: %w", err)
	}
	ops := make(map[string]bool)
	for _, op := range decoded.Ops {
		for _, action := range op.Actions {
			ops[op.Entity+":"+action] = true
		}
	}
	g := Grants{allowed: make(map[string]bool)}
	for rpc, p := range rpcPermissions {
		g.allowed[rpc] = ops[string(p)] || ops["uri:"+rpc]
	}
	return g, nil
}

// isPermissionDenied reports whether lnd refused a call because the
// macaroon lacks its permission (lnd sends the bakery's plain "permission
// denied", which gRPC reports as codes.Unknown).
func isPermissionDenied(err error) bool {
	s := status.Convert(err)
	return (s.Code() == codes.Unknown || s.Code() == codes.PermissionDenied) &&
		strings.Contains(s.Message(), "permission denied")
}
