// Package lnd is the only part of caddy-lightning that talks to lnd: a small
// client for the operations the Lightning API and the paywall need, on top
// of lnd's gRPC interface (through lndrpc, which needs no lnrpc).
//
// Errors are gRPC status errors (possibly wrapped with context), so callers
// can read their code with status.Code and map it to HTTP.
package lnd

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/lightningcaddy/caddy-lightning/lnd/lndrpc"
	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// DefaultCallTimeout bounds every node call whose context has no deadline.
const DefaultCallTimeout = 15 * time.Second

// Config says how to reach an LND node.
type Config struct {
	// Address is the host:port of the node's gRPC interface.
	Address string
	// TLSCert is the node's TLS certificate (PEM).
	TLSCert []byte
	// TLSCertFile, if set, is the file TLSCert was read from (lnd's
	// tls.cert): it is read again at every dial, so a renewed certificate
	// is used once lnd restarts with it. TLSCert is used while the file
	// cannot be read.
	TLSCertFile string
	// Macaroon is the binary macaroon sent with every call.
	Macaroon []byte
	// CallTimeout bounds each call without a deadline of its own.
	// Default: DefaultCallTimeout.
	CallTimeout time.Duration
	// Observer, if set, hears about every call (for metrics).
	Observer Observer
	// RouteHints says when invoices carry route hints for the node's
	// private channels. Default: RouteHintsAuto.
	RouteHints RouteHints
}

// Client talks to one LND node. It is safe for concurrent use. Creating it
// does no I/O: the connection is dialled on first use and re-dialled after
// the node comes back from a restart.
type Client struct {
	conn        *grpc.ClientConn
	rpc         lndrpc.Client
	macaroon    []byte
	callTimeout time.Duration

	self       atomic.Pointer[nodeIdentity] // learned from GetInfo, or the network from the node's invoices
	infoDenied atomic.Bool                  // the macaroon may not call GetInfo

	hints         RouteHints
	inbound       atomic.Pointer[inboundView] // for RouteHintsAuto
	inboundFlight singleflight.Group
}

// New returns a client for the node in cfg without contacting it.
func New(cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("lnd: address is required")
	}
	tlsCreds, err := trustPEM(cfg.TLSCert)
	if err != nil {
		return nil, err
	}
	if cfg.TLSCertFile != "" {
		if tlsCreds, err = newCertFileCredentials(cfg.TLSCertFile, cfg.TLSCert); err != nil {
			return nil, err
		}
	}
	if len(cfg.Macaroon) == 0 {
		return nil, errors.New("lnd: macaroon is required")
	}
	hints, err := validRouteHints(cfg.RouteHints)
	if err != nil {
		return nil, fmt.Errorf("lnd: %w", err)
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(tlsCreds),
		grpc.WithPerRPCCredentials(macaroonCredential(hex.EncodeToString(cfg.Macaroon))),
		// A restarted node should be found again within seconds, not
		// after gRPC's default two-minute backoff.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  100 * time.Millisecond,
				Multiplier: 1.6,
				Jitter:     0.2,
				MaxDelay:   2 * time.Second,
			},
			MinConnectTimeout: 3 * time.Second,
		}),
	}
	if cfg.Observer != nil {
		opts = append(opts, grpc.WithUnaryInterceptor(cfg.Observer.unary), grpc.WithStreamInterceptor(cfg.Observer.stream))
	}
	conn, err := grpc.NewClient(cfg.Address, opts...)
	if err != nil {
		return nil, fmt.Errorf("lnd: create client for %s: %w", cfg.Address, err)
	}
	timeout := cfg.CallTimeout
	if timeout <= 0 {
		timeout = DefaultCallTimeout
	}
	return &Client{
		conn:        conn,
		rpc:         lndrpc.NewClient(conn),
		macaroon:    cfg.Macaroon,
		hints:       hints,
		callTimeout: timeout,
	}, nil
}

// Close closes the connection to the node.
func (c *Client) Close() error {
	return c.conn.Close()
}

// withTimeout gives ctx the client's call timeout unless it has a deadline.
func (c *Client) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, c.callTimeout)
}

// macaroonCredential sends the hex macaroon in the metadata key LND reads.
type macaroonCredential string

func (m macaroonCredential) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"macaroon": string(m)}, nil
}

func (m macaroonCredential) RequireTransportSecurity() bool { return true }
