package lndrpc

import (
	"context"

	"google.golang.org/grpc"
)

// lnd's method paths, as lnd serves them.
const (
	GetInfoMethod                  = "/lnrpc.Lightning/GetInfo"
	AddInvoiceMethod               = "/lnrpc.Lightning/AddInvoice"
	LookupInvoiceMethod            = "/lnrpc.Lightning/LookupInvoice"
	SubscribeInvoicesMethod        = "/lnrpc.Lightning/SubscribeInvoices"
	ListInvoicesMethod             = "/lnrpc.Lightning/ListInvoices"
	ListChannelsMethod             = "/lnrpc.Lightning/ListChannels"
	CheckMacaroonPermissionsMethod = "/lnrpc.Lightning/CheckMacaroonPermissions"
	GetStateMethod                 = "/lnrpc.State/GetState"
	SendPaymentV2Method            = "/routerrpc.Router/SendPaymentV2"
	TrackPaymentV2Method           = "/routerrpc.Router/TrackPaymentV2"
)

// Client calls lnd's RPCs on a connection to an lnd node.
type Client struct {
	cc grpc.ClientConnInterface
}

// NewClient returns a client that calls lnd on cc.
func NewClient(cc grpc.ClientConnInterface) Client { return Client{cc: cc} }

// GetInfo calls lnrpc.Lightning/GetInfo.
func (c Client) GetInfo(ctx context.Context, in *GetInfoRequest, opts ...grpc.CallOption) (*GetInfoResponse, error) {
	return invoke[GetInfoResponse](ctx, c.cc, GetInfoMethod, in, opts)
}

// AddInvoice calls lnrpc.Lightning/AddInvoice.
func (c Client) AddInvoice(ctx context.Context, in *Invoice, opts ...grpc.CallOption) (*AddInvoiceResponse, error) {
	return invoke[AddInvoiceResponse](ctx, c.cc, AddInvoiceMethod, in, opts)
}

// LookupInvoice calls lnrpc.Lightning/LookupInvoice.
func (c Client) LookupInvoice(ctx context.Context, in *PaymentHash, opts ...grpc.CallOption) (*Invoice, error) {
	return invoke[Invoice](ctx, c.cc, LookupInvoiceMethod, in, opts)
}

// SubscribeInvoices calls lnrpc.Lightning/SubscribeInvoices.
func (c Client) SubscribeInvoices(ctx context.Context, in *InvoiceSubscription, opts ...grpc.CallOption) (grpc.ServerStreamingClient[Invoice], error) {
	return serverStream[InvoiceSubscription, Invoice](ctx, c.cc, SubscribeInvoicesMethod, in, opts)
}

// ListInvoices calls lnrpc.Lightning/ListInvoices.
func (c Client) ListInvoices(ctx context.Context, in *ListInvoiceRequest, opts ...grpc.CallOption) (*ListInvoiceResponse, error) {
	return invoke[ListInvoiceResponse](ctx, c.cc, ListInvoicesMethod, in, opts)
}

// ListChannels calls lnrpc.Lightning/ListChannels.
func (c Client) ListChannels(ctx context.Context, in *ListChannelsRequest, opts ...grpc.CallOption) (*ListChannelsResponse, error) {
	return invoke[ListChannelsResponse](ctx, c.cc, ListChannelsMethod, in, opts)
}

// CheckMacaroonPermissions calls lnrpc.Lightning/CheckMacaroonPermissions.
func (c Client) CheckMacaroonPermissions(ctx context.Context, in *CheckMacPermRequest, opts ...grpc.CallOption) (*CheckMacPermResponse, error) {
	return invoke[CheckMacPermResponse](ctx, c.cc, CheckMacaroonPermissionsMethod, in, opts)
}

// GetState calls lnrpc.State/GetState.
func (c Client) GetState(ctx context.Context, in *GetStateRequest, opts ...grpc.CallOption) (*GetStateResponse, error) {
	return invoke[GetStateResponse](ctx, c.cc, GetStateMethod, in, opts)
}

// SendPaymentV2 calls routerrpc.Router/SendPaymentV2.
func (c Client) SendPaymentV2(ctx context.Context, in *SendPaymentRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[Payment], error) {
	return serverStream[SendPaymentRequest, Payment](ctx, c.cc, SendPaymentV2Method, in, opts)
}

// TrackPaymentV2 calls routerrpc.Router/TrackPaymentV2.
func (c Client) TrackPaymentV2(ctx context.Context, in *TrackPaymentRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[Payment], error) {
	return serverStream[TrackPaymentRequest, Payment](ctx, c.cc, TrackPaymentV2Method, in, opts)
}

// invoke makes a unary call.
func invoke[Res any](ctx context.Context, cc grpc.ClientConnInterface, method string, in any, opts []grpc.CallOption) (*Res, error) {
	out := new(Res)
	if err := cc.Invoke(ctx, method, in, out, opts...); err != nil {
		return nil, err
	}
	return out, nil
}

// serverStream opens a server-streaming call and sends its one request.
func serverStream[Req, Res any](ctx context.Context, cc grpc.ClientConnInterface, method string, in *Req, opts []grpc.CallOption) (grpc.ServerStreamingClient[Res], error) {
	desc := &grpc.StreamDesc{StreamName: method, ServerStreams: true}
	stream, err := cc.NewStream(ctx, desc, method, opts...)
	if err != nil {
		return nil, err
	}
	s := &grpc.GenericClientStream[Req, Res]{ClientStream: stream}
	if err := s.SendMsg(in); err != nil {
		return nil, err
	}
	if err := s.CloseSend(); err != nil {
		return nil, err
	}
	return s, nil
}
