package lndrpc_test

import (
	"strings"
	"testing"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
)

// This test binary links lnrpc and routerrpc beside lndrpc: had lndrpc
// registered a file or a full name that lnrpc registers too, it would have
// panicked at init, before any test ran. The tests check that both are in
// the registry, each under its own names.
func TestRegisteredBesideLnrpc(t *testing.T) {
	for _, path := range []string{"lnd/lndrpc/lndrpc.proto", "lightning.proto", "routerrpc/router.proto", "stateservice.proto"} {
		if _, err := protoregistry.GlobalFiles.FindFileByPath(path); err != nil {
			t.Errorf("file %s is not registered: %v", path, err)
		}
	}
	ours := (&lndrpc.Invoice{}).ProtoReflect().Descriptor()
	theirs := (&lnrpc.Invoice{}).ProtoReflect().Descriptor()
	if ours.FullName() == theirs.FullName() || ours.ParentFile().Package() == theirs.ParentFile().Package() {
		t.Errorf("lndrpc.Invoice is %s, lnrpc's is %s: they must not share a name", ours.FullName(), theirs.FullName())
	}
}

// lnd's package of each lndrpc message; the rest are in lnrpc.
var lndPackage = map[protoreflect.Name]protoreflect.FullName{
	"SendPaymentRequest":  "routerrpc",
	"TrackPaymentRequest": "routerrpc",
}

// lnd's counterpart of an lndrpc message or enum.
func counterpart(d protoreflect.Descriptor) protoreflect.FullName {
	pkg := d.ParentFile().Package()
	rel := strings.TrimPrefix(string(d.FullName()), string(pkg)+".")
	top, _, _ := strings.Cut(rel, ".")
	lndPkg := lndPackage[protoreflect.Name(top)]
	if lndPkg == "" {
		lndPkg = "lnrpc"
	}
	return lndPkg.Append(protoreflect.Name(rel)) // Append takes a dotted relative name as well
}

// Every message, field and enum of lndrpc has the number, type and
// cardinality of its lnd counterpart, so the two are the same on the wire.
func TestWireCompatibleWithLnrpc(t *testing.T) {
	file, err := protoregistry.GlobalFiles.FindFileByPath("lnd/lndrpc/lndrpc.proto")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < file.Enums().Len(); i++ {
		compareEnums(t, file.Enums().Get(i))
	}
	for i := 0; i < file.Messages().Len(); i++ {
		compareMessages(t, file.Messages().Get(i))
	}
}

func compareMessages(t *testing.T, ours protoreflect.MessageDescriptor) {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(counterpart(ours))
	if err != nil {
		t.Errorf("%s: no lnd counterpart %s: %v", ours.FullName(), counterpart(ours), err)
		return
	}
	theirs := d.(protoreflect.MessageDescriptor)
	for i := 0; i < ours.Fields().Len(); i++ {
		f := ours.Fields().Get(i)
		g := theirs.Fields().ByNumber(f.Number())
		if g == nil {
			t.Errorf("%s.%s: lnd's %s has no field %d", ours.Name(), f.Name(), theirs.FullName(), f.Number())
			continue
		}
		if f.Name() != g.Name() || f.Kind() != g.Kind() || f.Cardinality() != g.Cardinality() || f.IsMap() != g.IsMap() {
			t.Errorf("%s field %d: ours is %s %s %s, lnd's is %s %s %s", ours.Name(), f.Number(),
				f.Cardinality(), f.Kind(), f.Name(), g.Cardinality(), g.Kind(), g.Name())
			continue
		}
		switch {
		case f.IsMap():
			if f.MapKey().Kind() != g.MapKey().Kind() || f.MapValue().Kind() != g.MapValue().Kind() {
				t.Errorf("%s.%s: map types differ from lnd's", ours.Name(), f.Name())
			}
		case f.Message() != nil:
			if counterpart(f.Message()) != g.Message().FullName() {
				t.Errorf("%s.%s: ours is a %s, lnd's a %s", ours.Name(), f.Name(), f.Message().FullName(), g.Message().FullName())
			}
			compareMessages(t, f.Message())
		case f.Enum() != nil:
			if counterpart(f.Enum()) != g.Enum().FullName() {
				t.Errorf("%s.%s: ours is a %s, lnd's a %s", ours.Name(), f.Name(), f.Enum().FullName(), g.Enum().FullName())
			}
		}
	}
	for i := 0; i < ours.Enums().Len(); i++ {
		compareEnums(t, ours.Enums().Get(i))
	}
}

// compareEnums checks that an enum has exactly lnd's values.
func compareEnums(t *testing.T, ours protoreflect.EnumDescriptor) {
	t.Helper()
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(counterpart(ours))
	if err != nil {
		t.Errorf("%s: no lnd counterpart %s: %v", ours.FullName(), counterpart(ours), err)
		return
	}
	theirs := d.(protoreflect.EnumDescriptor)
	if ours.Values().Len() != theirs.Values().Len() {
		t.Errorf("%s has %d values, lnd's %d", ours.Name(), ours.Values().Len(), theirs.Values().Len())
	}
	for i := 0; i < ours.Values().Len(); i++ {
		v := ours.Values().Get(i)
		w := theirs.Values().ByNumber(v.Number())
		if w == nil || w.Name() != v.Name() {
			t.Errorf("%s value %d is %s in lndrpc, not in lnd", ours.Name(), v.Number(), v.Name())
		}
	}
}

// The RPCs the client calls exist in lnd under these paths, with these
// request and response messages, and stream where lnd's do.
func TestMethodsAreLnds(t *testing.T) {
	for _, m := range []struct {
		path      string
		req, resp proto.Message
		stream    bool
	}{
		{lndrpc.GetInfoMethod, &lndrpc.GetInfoRequest{}, &lndrpc.GetInfoResponse{}, false},
		{lndrpc.AddInvoiceMethod, &lndrpc.Invoice{}, &lndrpc.AddInvoiceResponse{}, false},
		{lndrpc.LookupInvoiceMethod, &lndrpc.PaymentHash{}, &lndrpc.Invoice{}, false},
		{lndrpc.SubscribeInvoicesMethod, &lndrpc.InvoiceSubscription{}, &lndrpc.Invoice{}, true},
		{lndrpc.ListInvoicesMethod, &lndrpc.ListInvoiceRequest{}, &lndrpc.ListInvoiceResponse{}, false},
		{lndrpc.ListChannelsMethod, &lndrpc.ListChannelsRequest{}, &lndrpc.ListChannelsResponse{}, false},
		{lndrpc.CheckMacaroonPermissionsMethod, &lndrpc.CheckMacPermRequest{}, &lndrpc.CheckMacPermResponse{}, false},
		{lndrpc.GetStateMethod, &lndrpc.GetStateRequest{}, &lndrpc.GetStateResponse{}, false},
		{lndrpc.SendPaymentV2Method, &lndrpc.SendPaymentRequest{}, &lndrpc.Payment{}, true},
		{lndrpc.TrackPaymentV2Method, &lndrpc.TrackPaymentRequest{}, &lndrpc.Payment{}, true},
	} {
		service, method, _ := strings.Cut(strings.TrimPrefix(m.path, "/"), "/")
		d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(service))
		if err != nil {
			t.Errorf("%s: lnd has no service %s", m.path, service)
			continue
		}
		md := d.(protoreflect.ServiceDescriptor).Methods().ByName(protoreflect.Name(method))
		if md == nil {
			t.Errorf("%s: lnd's %s has no method %s", m.path, service, method)
			continue
		}
		if got := counterpart(m.req.ProtoReflect().Descriptor()); got != md.Input().FullName() {
			t.Errorf("%s takes %s, not %s", m.path, md.Input().FullName(), got)
		}
		if got := counterpart(m.resp.ProtoReflect().Descriptor()); got != md.Output().FullName() {
			t.Errorf("%s returns %s, not %s", m.path, md.Output().FullName(), got)
		}
		if md.IsStreamingServer() != m.stream || md.IsStreamingClient() {
			t.Errorf("%s: streaming differs from lnd's", m.path)
		}
	}
}

// A message lnd sends, with fields lndrpc leaves out, decodes into lndrpc
// with the fields it knows, and a request lndrpc builds decodes in lnd.
func TestRoundTrip(t *testing.T) {
	sent := &lnrpc.Invoice{
		Memo: "coffee", RPreimage: []byte{1, 2}, RHash: []byte{3, 4}, Value: 1000,
		PaymentRequest: "lnbcrt1...", Expiry: 600, Private: true, AddIndex: 7, SettleIndex: 3,
		AmtPaidSat: 1000, State: lnrpc.Invoice_SETTLED,
		CreationDate: 1700000000, IsKeysend: true, CltvExpiry: 80, // not in lndrpc
		RouteHints: []*lnrpc.RouteHint{{HopHints: []*lnrpc.HopHint{{NodeId: "02ab", ChanId: 42}}}},
	}
	b, err := proto.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	got := &lndrpc.Invoice{}
	if err := proto.Unmarshal(b, got); err != nil {
		t.Fatal(err)
	}
	if got.Memo != "coffee" || got.Value != 1000 || got.PaymentRequest != "lnbcrt1..." || got.Expiry != 600 ||
		!got.Private || got.AddIndex != 7 || got.SettleIndex != 3 || got.AmtPaidSat != 1000 ||
		got.State != lndrpc.Invoice_SETTLED || string(got.RPreimage) != "\x01\x02" || string(got.RHash) != "\x03\x04" {
		t.Errorf("lnd's invoice decoded as %v", got)
	}

	req := &lndrpc.SendPaymentRequest{
		Dest: []byte{2}, Amt: 21, PaymentHash: []byte{9}, PaymentRequest: "lnbcrt1...", TimeoutSeconds: 60,
		FeeLimitSat: 10, DestCustomRecords: map[uint64][]byte{5482373484: {7}}, NoInflightUpdates: true,
	}
	b, err = proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var lndReq routerrpc.SendPaymentRequest
	if err := proto.Unmarshal(b, &lndReq); err != nil {
		t.Fatal(err)
	}
	if string(lndReq.Dest) != "\x02" || lndReq.Amt != 21 || string(lndReq.PaymentHash) != "\x09" ||
		lndReq.PaymentRequest != "lnbcrt1..." || lndReq.TimeoutSeconds != 60 || lndReq.FeeLimitSat != 10 ||
		string(lndReq.DestCustomRecords[5482373484]) != "\x07" || !lndReq.NoInflightUpdates {
		t.Errorf("lnd decoded our payment request as %v", &lndReq)
	}
}
