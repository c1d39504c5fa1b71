// Package lightningpb holds the protobuf messages and gRPC service of the
// Lightning API, generated from lightning.proto.
package lightningpb

// protoc comes from Debian's protobuf-compiler; the plugins are the tool
// versions pinned in go.mod. The file is compiled as
// "lightningpb/lightning.proto" so that its registered name does not clash
// with lnrpc's "lightning.proto".
//go:generate sh -c "go build -o \"$DOLLAR{TMPDIR:-/tmp}/lightningpb-plugins/\" google.golang.org/protobuf/cmd/protoc-gen-go google.golang.org/grpc/cmd/protoc-gen-go-grpc && PATH=\"$DOLLAR{TMPDIR:-/tmp}/lightningpb-plugins:$DOLLAR{PATH}\" protoc -I .. --go_out=.. --go_opt=paths=source_relative --go-grpc_out=.. --go-grpc_opt=paths=source_relative lightningpb/lightning.proto"
