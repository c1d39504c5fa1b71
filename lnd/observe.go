package lnd

import (
	"context"
	"path"
	"sync"
	"time"

	"google.golang.org/grpc"
)

// Observer hears about every call to the node: the RPC method's short name
// (e.g. "AddInvoice"), how long it took, and its error. For payment streams
// the time is until the first answer, which with NoInflightUpdates is the
// payment's outcome. The long-lived invoice subscription is not observed.
type Observer func(method string, took time.Duration, err error)

func (o Observer) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	o(path.Base(method), time.Since(start), err)
	return err
}

func (o Observer) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	start := time.Now()
	s, err := streamer(ctx, desc, cc, method, opts...)
	name := path.Base(method)
	if err != nil {
		o(name, time.Since(start), err)
		return nil, err
	}
	if name == "SubscribeInvoices" {
		return s, nil
	}
	return &observedStream{ClientStream: s, observe: func(err error) { o(name, time.Since(start), err) }}, nil
}

// observedStream reports its first answer.
type observedStream struct {
	grpc.ClientStream
	once    sync.Once
	observe func(error)
}

func (s *observedStream) RecvMsg(m any) error {
	err := s.ClientStream.RecvMsg(m)
	s.once.Do(func() { s.observe(err) })
	return err
}
