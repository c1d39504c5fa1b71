package lightning

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

var errBadAPIKey = status.Error(codes.Unauthenticated, "missing or wrong API key: send it in the X-API-KEY header")

// apiKey checks the key clients send. Only a digest of the key is kept, and
// comparisons take the same time whatever the key sent.
type apiKey struct {
	digest [32]byte
	set    bool
}

func newAPIKey(key string) apiKey {
	if key == "" {
		return apiKey{}
	}
	return apiKey{digest: sha256.Sum256([]byte(key)), set: true}
}

func (k apiKey) required() bool { return k.set }

// matches reports whether sent is the key, or no key is required.
func (k apiKey) matches(sent string) bool {
	if !k.set {
		return true
	}
	d := sha256.Sum256([]byte(sent))
	return subtle.ConstantTimeCompare(d[:], k.digest[:]) == 1
}

// unaryInterceptor refuses gRPC calls without the key in metadata
// x-api-key.
func (k apiKey) unaryInterceptor(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if k.set {
		md, _ := metadata.FromIncomingContext(ctx)
		values := md.Get("x-api-key")
		if len(values) != 1 || !k.matches(values[0]) {
			return nil, errBadAPIKey
		}
	}
	return handler(ctx, req)
}
