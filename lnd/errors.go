package lnd

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// nodeError turns an error from a node call into a status error with the
// same code and a message that says which operation failed, without
// gRPC's "rpc error: code = ... desc = ..." wrapping.
func nodeError(op string, err error) error {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return status.Errorf(codes.DeadlineExceeded, "%s: the node did not answer in time", op)
	case errors.Is(err, context.Canceled):
		return status.Errorf(codes.Canceled, "%s: canceled", op)
	}
	if isPermissionDenied(err) {
		return status.Errorf(codes.PermissionDenied, "%s: lnd refused the call: the macaroon lacks its permission", op)
	}
	s := status.Convert(err)
	switch s.Code() {
	case codes.Unavailable:
		return status.Errorf(codes.Unavailable, "%s: lnd node unavailable: %s", op, s.Message())
	case codes.DeadlineExceeded:
		return status.Errorf(codes.DeadlineExceeded, "%s: the node did not answer in time", op)
	}
	return status.Errorf(s.Code(), "%s: %s", op, s.Message())
}
