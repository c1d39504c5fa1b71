#!/usr/bin/env bash
# Installs the Debian packages the tests need: Chromium for the payment
# page's browser tests, zbar-tools to decode its QR code from a screenshot,
# redis-server for the Redis ledger's tests (internal/redistest starts one
# on loopback per test; the Debian service itself is not used).
# Node.js and npm (for the L402 client interop test) come with the machine.
# Everything else comes from the Go module proxy.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v zbarimg >/dev/null 2>&1 || missing+=(zbar-tools)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root or: sudo apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]} from Debian's packages"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
