#!/usr/bin/env bash
# Builds Caddy with this checkout using xcaddy v0.4.5, exactly as the README
# says (no --replace), and checks that the binary lists our modules and that
# nothing xcaddy compiles imports lnd's lnrpc (which needs a protobuf fork).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${CADDY_LIGHTNING_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/caddy-lightning}"
xcaddy="$cache/xcaddy-v0.4.5/xcaddy"
if [ ! -x "$xcaddy" ]; then
	echo "xcaddy-check: building xcaddy v0.4.5 from the Go module proxy"
	dir=$(go mod download -json github.com/caddyserver/xcaddy@v0.4.5 | grep '"Dir"' | cut -d'"' -f4)
	(cd "$dir" && GOFLAGS=-mod=mod go build -o "$xcaddy" ./cmd/xcaddy)
fi
if lnrpc=$(go list -deps . | grep 'lightningnetwork/lnd/lnrpc'); then
	echo "xcaddy-check: the plugin imports lnrpc, which a plain xcaddy build cannot compile:" >&2
	echo "$lnrpc" >&2
	exit 1
fi
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
start=$(date +%s)
# The README's line, run from the checkout:
"$xcaddy" build v2.11.9 \
	--with github.com/lightningcaddy/caddy-lightning@v0.0.0=. \
	--output "$out/caddy" >"$out/build.log" 2>&1 || { tail -30 "$out/build.log"; exit 1; }
echo "xcaddy-check: built in $(( $(date +%s) - start )) s, $(( $(stat -c %s "$out/caddy") / 1048576 )) MiB"
modules=$("$out/caddy" list-modules)
for m in lightning http.handlers.lightning http.handlers.paywall; do
	grep -qx "$m" <<<"$modules" || { echo "xcaddy-check: module $m missing" >&2; exit 1; }
done
echo "xcaddy-check: ok, list-modules shows lightning, http.handlers.lightning, http.handlers.paywall"
