// Package api holds the end-to-end tests of the Lightning API: every REST
// and gRPC method, through a real Caddy run in-process from a Caddyfile
// written as the README tells users, against the regtest node alice, with
// bob (the other regtest node) paying, getting paid and checking what
// really moved.
//
// The tests need the regtest network (built and started by
// internal/regtest) and skip under -short.
package api
