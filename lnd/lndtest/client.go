package lndtest

import (
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
)

// Dial connects a gRPC client to the node the way an LND client does (TLS
// trusting TLSCertPEM, MacaroonHex in every call) and closes it at
// t.Cleanup. Use lnrpc.NewLightningClient(conn) and friends on the result.
// Failures end the test with t.Fatal.
func (n *Node) Dial(t testing.TB) *grpc.ClientConn {
	t.Helper()
	return n.dial(t, grpc.WithPerRPCCredentials(macaroonCreds(n.MacaroonHex())))
}

// DialWithMacaroon is Dial with another hex macaroon, or none if macHex is
// empty, to test authentication failures.
func (n *Node) DialWithMacaroon(t testing.TB, macHex string) *grpc.ClientConn {
	t.Helper()
	if macHex == "" {
		return n.dial(t)
	}
	return n.dial(t, grpc.WithPerRPCCredentials(macaroonCreds(macHex)))
}

func (n *Node) dial(t testing.TB, extra ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	tlsCfg, err := clientTLSConfig(n.TLSCertPEM())
	if err != nil {
		t.Fatalf("lndtest: dial: %v", err)
	}
	opts := append([]grpc.DialOption{grpc.WithTransportCredentials(credentials.NewTLS(tlsCfg))}, extra...)
	conn, err := grpc.NewClient(n.Addr(), opts...)
	if err != nil {
		t.Fatalf("lndtest: dial %s: %v", n.Addr(), err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
