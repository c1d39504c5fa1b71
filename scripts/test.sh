#!/usr/bin/env bash
# The project's test command (CI runs exactly this through .ci/run): installs
# what the tests need, then runs every test, from unit tests to a real
# regtest Lightning network, a real browser and an xcaddy build.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { echo; echo "== $* ($(( $(date +%s) - start )) s)"; }

step "Debian packages"
scripts/install-deps.sh

step "go vet"
go vet ./...

step "lnd and btcd binaries (built once into the cache; the first time takes minutes)"
go run ./cmd/regtest build

step "xcaddy build"
scripts/xcaddy-check.sh

step "the demo's walk-through (go run ./example/demo --once)"
go run ./example/demo --once

step "fuzzing, 10 s per target (longer: scripts/fuzz.sh 600)"
scripts/fuzz.sh 10

step "go test ./... (unit, regtest end-to-end, browser)"
go test -count=1 -timeout 60m ./...
step "done"
