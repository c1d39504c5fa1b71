#!/usr/bin/env bash
# Runs every fuzz target of the repository (the root package, lnd/, l402/,
# and any package that gains one) one after another, each for SECONDS
# (default 10: enough for CI), and fails if any finds a crash.
#
#   scripts/fuzz.sh          # 10 s per target, for CI
#   scripts/fuzz.sh 600      # longer: 10 minutes per target
#
# A crash is written to <package>/testdata/fuzz/<Target>/<id>; from then on
# plain `go test` runs it as a regression seed. Keep it with the fix.
# The first run builds the instrumented binaries, which takes minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-10}"
case "$secs" in
'' | *[!0-9]* | 0)
	echo "usage: $0 [seconds per target, default 10]" >&2
	exit 2
	;;
esac

# Packages with fuzz targets, found from the sources.
mapfile -t pkgs < <(grep -rl --include='*_test.go' -E '^func Fuzz[A-Z0-9_]' . |
	grep -v '/testdata/' | xargs -n1 dirname | sort -u)

failed=()
total=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for pkg in "${pkgs[@]}"; do
	mapfile -t targets < <(grep -h -o -E '^func Fuzz[A-Za-z0-9_]*' "$pkg"/*_test.go | sed 's/^func //' | sort -u)
	for target in "${targets[@]}"; do
		total=$((total + 1))
		echo "== $pkg $target (${secs}s)"
		# Caddy's JSON log lines are dropped; the fuzzer's own lines stay.
		set +e
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="${secs}s" "$pkg" 2>&1 | grep -v '^{"level"' | tee "$out"
		status=${PIPESTATUS[0]}
		set -e
		# Go's fuzzer sometimes ends a run whose time is up with "context
		# deadline exceeded" and no failing input: that is not a crash. A
		# crash always writes its input.
		if [ "$status" -ne 0 ] && ! grep -q 'Failing input written' "$out" && grep -q 'context deadline exceeded' "$out"; then
			echo "fuzz: $target stopped with the fuzzer's end-of-time error, no failing input: not a crash"
			status=0
		fi
		if [ "$status" -ne 0 ]; then
			failed+=("$pkg $target")
		fi
	done
done

echo
if [ "${#failed[@]}" -gt 0 ]; then
	echo "fuzz: ${#failed[@]} of $total targets failed:"
	printf '  %s\n' "${failed[@]}"
	echo "crashers are in <package>/testdata/fuzz/<Target>/; rerun one with go test -run=<Target>/<id> <package>"
	exit 1
fi
echo "fuzz: all $total targets ran ${secs}s without a crash"
