// Command caddy is Caddy with its standard modules and caddy-lightning, for
// `go run` and `go build` without xcaddy.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/lightningcaddy/caddy-lightning"
)

func main() {
	caddycmd.Main()
}
