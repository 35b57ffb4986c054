#!/usr/bin/env bash
# `make fuzz`: runs every fuzz target of the module, one after another, each
# for FUZZTIME (default 1m), and prints a table of targets, seconds and
# executions. `go test ./...` runs only the seed corpora; this is the long run.
#
#   scripts/fuzz.sh                  every target
#   FUZZTIME=20s scripts/fuzz.sh     each for 20 seconds
#   FUZZMINIMIZETIME=10s             time to minimize each new input (2s)
#   FUZZ=Cache scripts/fuzz.sh       targets whose package or name matches the
#                                    extended regexp (here: the cache's)
#
# Targets are found by grep: each `func FuzzX(f *testing.F)` in a *_test.go
# file (files tagged realdata are left out: they need the shared folder). A
# crasher lands in the package's testdata/fuzz/FuzzX/, where it stays as a
# regression seed that `go test ./...` runs; the script goes on with the next
# target and exits non-zero at the end.
set -uo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-1m}
FUZZ=${FUZZ:-.}
# Each new interesting input is minimized before fuzzing goes on, and the
# executions of minimization are not reported until it ends; Go's default of
# a minute would stall a short run on its first find.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-2s}
GO=${GO:-go}
# Targets that write files (the archive unpacker, checkpoints) spend most of
# an execution creating and removing their temporary folder: on tmpfs, where
# there is one, they run several times as many executions a minute.
if [[ -z ${TMPDIR:-} && -d /dev/shm && -w /dev/shm ]]; then
	export TMPDIR=/dev/shm
fi

targets=$(grep -rE --include='*_test.go' --exclude='*_realdata_test.go' -o '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' . |
	sed -E 's#^\./(.*)/[^/]+_test\.go:func (Fuzz[A-Za-z0-9_]+).*#\1 \2#' | sort -u | grep -E -- "$FUZZ")
if [ -z "$targets" ]; then
	echo "fuzz: no target matches $FUZZ" >&2
	exit 1
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
failed=()
rows=()
while read -r pkg name; do
	echo "== $pkg $name ($FUZZTIME)"
	start=$(date +%s.%N)
	$GO test -run '^$' -fuzz "^$name\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "./$pkg" >"$log" 2>&1
	rc=$?
	end=$(date +%s.%N)
	tail -n 3 "$log"
	# The last progress line: "fuzz: elapsed: 20s, execs: 12345 (617/sec), ...".
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+')
	# elapsed reads like 20s, 1m0s or 1h2m3s.
	secs=$(grep -oE 'fuzz: elapsed: [0-9hms]+' "$log" | tail -n 1 | sed 's/.*: //' |
		awk '{ t = 0; while (match($0, /^[0-9]+[hms]/)) { v = substr($0, 1, RLENGTH - 1); u = substr($0, RLENGTH, 1);
			t += v * (u == "h" ? 3600 : u == "m" ? 60 : 1); $0 = substr($0, RLENGTH + 1) } print t }')
	status=ok
	if [ $rc -ne 0 ]; then
		status=FAIL
		failed+=("$pkg $name")
		cat "$log"
	fi
	perMin=$(awk -v e="${execs:-0}" -v s="${secs:-0}" 'BEGIN { if (s > 0) printf "%d", e * 60 / s; else print "-" }')
	rows+=("$(printf '| `%s` | `%s` | %s | %s | %s | %s | %.0f |' "$pkg" "$name" "${secs:--}" "${execs:--}" "$perMin" "$status" "$(awk -v a="$start" -v b="$end" 'BEGIN { print b - a }')")")
done <<<"$targets"

echo
echo "FUZZTIME=$FUZZTIME, FUZZMINIMIZETIME=$FUZZMINIMIZETIME, $(nproc) CPUs, $($GO env GOVERSION)"
echo
echo '| package | target | fuzzing seconds | executions | executions/min | result | wall seconds |'
echo '|---|---|---|---|---|---|---|'
printf '%s\n' "${rows[@]}"
if [ ${#failed[@]} -gt 0 ]; then
	echo
	printf 'failed: %s\n' "${failed[@]}"
	exit 1
fi
