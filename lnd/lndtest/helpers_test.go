package lndtest

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc"
	"github.com/lightningnetwork/lnd/lnrpc/routerrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// clients bundles the three gRPC clients of one node.
type clients struct {
	ln     lnrpc.LightningClient
	router routerrpc.RouterClient
	state  lnrpc.StateClient
}

func startWithClients(t *testing.T, opts ...Option) (*Node, clients) {
	t.Helper()
	n := Start(t, opts...)
	conn := n.Dial(t)
	return n, clients{
		ln:     lnrpc.NewLightningClient(conn),
		router: routerrpc.NewRouterClient(conn),
		state:  lnrpc.NewStateClient(conn),
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantStatus checks a gRPC status code and a message substring.
func wantStatus(t *testing.T, err error, code codes.Code, msg string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v %q", code, msg)
	}
	st, _ := status.FromError(err)
	if st.Code() != code || !strings.Contains(st.Message(), msg) {
		t.Fatalf("got %v %q, want %v containing %q", st.Code(), st.Message(), code, msg)
	}
}

// recvAll reads a payment stream to its end.
func recvAll(t *testing.T, s interface {
	Recv() (*lnrpc.Payment, error)
}) ([]*lnrpc.Payment, error) {
	t.Helper()
	var out []*lnrpc.Payment
	for {
		p, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, p)
	}
}

// pay sends a payment request with a sufficient fee limit and returns all
// updates or the stream error.
func pay(t *testing.T, c clients, req *routerrpc.SendPaymentRequest) ([]*lnrpc.Payment, error) {
	t.Helper()
	if req.TimeoutSeconds == 0 {
		req.TimeoutSeconds = 30
	}
	stream, err := c.router.SendPaymentV2(ctxT(t), req)
	if err != nil {
		t.Fatalf("SendPaymentV2 call: %v (errors must come on Recv)", err)
	}
	return recvAll(t, stream)
}

// addInvoice creates an invoice on the node under test.
func addInvoice(t *testing.T, c clients, sat int64, memo string) (*lnrpc.AddInvoiceResponse, [32]byte) {
	t.Helper()
	resp, err := c.ln.AddInvoice(ctxT(t), &lnrpc.Invoice{Value: sat, Memo: memo})
	if err != nil {
		t.Fatalf("AddInvoice: %v", err)
	}
	var h [32]byte
	copy(h[:], resp.RHash)
	return resp, h
}

func sha(b []byte) [32]byte { return sha256.Sum256(b) }

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now().Truncate(time.Second)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// routerrpcReq is a SendPaymentV2 request for payreq with a fee limit the
// default route fee fits in.
func routerrpcReq(payreq string) *routerrpc.SendPaymentRequest {
	return &routerrpc.SendPaymentRequest{PaymentRequest: payreq, FeeLimitSat: 10, TimeoutSeconds: 30}
}

var errUnavailable = status.Error(codes.Unavailable, "injected")
