package lndtest

import (
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/zpay32"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestListChannelsAndRouteHints(t *testing.T) {
	n, c := startWithClients(t)
	resp, err := c.ln.ListChannels(ctxT(t), &lnrpc.ListChannelsRequest{})
	if err != nil || len(resp.Channels) != 1 || resp.Channels[0].Private || !resp.Channels[0].Active {
		t.Fatalf("default channels = %v, %v; want one active public channel", resp, err)
	}
	n.SetChannels(Channel{RemoteSat: 100}, Channel{Private: true, RemoteSat: 200}, Channel{Private: true, Inactive: true, RemoteSat: 300})
	for _, tc := range []struct {
		req  *lnrpc.ListChannelsRequest
		want []int64 // remote balances
	}{
		{&lnrpc.ListChannelsRequest{}, []int64{100, 200, 300}},
		{&lnrpc.ListChannelsRequest{ActiveOnly: true, PublicOnly: true}, []int64{100}},
		{&lnrpc.ListChannelsRequest{PrivateOnly: true}, []int64{200, 300}},
		{&lnrpc.ListChannelsRequest{InactiveOnly: true}, []int64{300}},
	} {
		resp, err := c.ln.ListChannels(ctxT(t), tc.req)
		if err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, ch := range resp.Channels {
			got = append(got, ch.RemoteBalance)
		}
		if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
			t.Errorf("ListChannels(%v) remote balances %v, want %v", tc.req, got, tc.want)
		}
	}
	_, err = c.ln.ListChannels(ctxT(t), &lnrpc.ListChannelsRequest{ActiveOnly: true, InactiveOnly: true})
	if err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("active_only with inactive_only: %v", err)
	}

	for private, want := range map[bool]int{false: 0, true: 1} {
		inv, err := c.ln.AddInvoice(ctxT(t), &lnrpc.Invoice{Value: 10, Private: private})
		if err != nil {
			t.Fatal(err)
		}
		decoded, err := zpay32.Decode(inv.PaymentRequest, n.params)
		if err != nil {
			t.Fatal(err)
		}
		if len(decoded.RouteHints) != want {
			t.Errorf("private %v: %d route hints, want %d (the active private channel)", private, len(decoded.RouteHints), want)
		}
	}
}

func TestCheckMacaroonPermissions(t *testing.T) {
	n, c := startWithClients(t)
	invoiceMac := n.BakeMacaroon("invoices:read", "invoices:write")
	for _, tc := range []struct {
		req  *lnrpc.CheckMacPermRequest
		code codes.Code // OK: valid
	}{
		{&lnrpc.CheckMacPermRequest{Macaroon: invoiceMac, FullMethod: "/lnrpc.Lightning/AddInvoice", CheckDefaultPermsFromFullMethod: true}, codes.OK},
		{&lnrpc.CheckMacPermRequest{Macaroon: invoiceMac, FullMethod: "/lnrpc.Lightning/GetInfo", CheckDefaultPermsFromFullMethod: true}, codes.InvalidArgument},
		{&lnrpc.CheckMacPermRequest{Macaroon: invoiceMac, Permissions: []*lnrpc.MacaroonPermission{{Entity: "invoices", Action: "read"}}}, codes.OK},
		{&lnrpc.CheckMacPermRequest{Macaroon: invoiceMac, Permissions: []*lnrpc.MacaroonPermission{{Entity: "offchain", Action: "write"}}}, codes.InvalidArgument},
		{&lnrpc.CheckMacPermRequest{Macaroon: invoiceMac, FullMethod: "/lnrpc.Lightning/AddInvoice", CheckDefaultPermsFromFullMethod: true,
			Permissions: []*lnrpc.MacaroonPermission{{Entity: "invoices", Action: "read"}}}, codes.Unknown},
		{&lnrpc.CheckMacPermRequest{Macaroon: []byte("junk"), FullMethod: "/lnrpc.Lightning/AddInvoice", CheckDefaultPermsFromFullMethod: true}, codes.InvalidArgument},
	} {
		resp, err := c.ln.CheckMacaroonPermissions(ctxT(t), tc.req)
		if status.Code(err) != tc.code || (err == nil && !resp.Valid) {
			t.Errorf("CheckMacaroonPermissions(%v) = %v, %v; want %s", tc.req, resp, err, tc.code)
		}
	}
	// The caller needs macaroon:read, which invoice.macaroon lacks.
	conn := n.DialWithMacaroon(t, n.MacaroonHexFor("invoice"))
	_, err := lnrpc.NewLightningClient(conn).CheckMacaroonPermissions(ctxT(t), &lnrpc.CheckMacPermRequest{Macaroon: invoiceMac})
	if status.Code(err) != codes.Unknown || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("CheckMacaroonPermissions with invoice.macaroon: %v, want permission denied", err)
	}
}
