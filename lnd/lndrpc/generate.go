// Package lndrpc is the part of lnd's gRPC interface that caddy-lightning
// calls, without lnd's lnrpc packages: messages generated from a subset of
// lnd v0.21's own .proto files (lndrpc.proto) and a client that calls lnd's
// method paths with them.
//
// lnrpc needs Lightning Labs' fork of google.golang.org/protobuf, which a
// plain `xcaddy build` cannot provide; these messages build with the
// standard protobuf module. Their proto package and file name are this
// project's own, so a binary may link lnrpc as well.
package lndrpc

// protoc comes from Debian's protobuf-compiler; protoc-gen-go is the tool
// version pinned in go.mod. The file is compiled as "lnd/lndrpc/lndrpc.proto"
// so that its registered name is this project's.
//go:generate sh -c "go build -o \"$DOLLAR{TMPDIR:-/tmp}/lndrpc-plugins/\" google.golang.org/protobuf/cmd/protoc-gen-go && PATH=\"$DOLLAR{TMPDIR:-/tmp}/lndrpc-plugins:$DOLLAR{PATH}\" protoc -I ../.. --go_out=../.. --go_opt=paths=source_relative lnd/lndrpc/lndrpc.proto"
