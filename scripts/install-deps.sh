#!/usr/bin/env bash
# Installs the Debian packages the tests need: Chromium for the payment
# page's browser tests. Everything else comes from the Go module proxy.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: chromium is missing; run as root or: sudo apt-get install -y chromium" >&2
	exit 1
fi
echo "install-deps: installing chromium from Debian's packages"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
