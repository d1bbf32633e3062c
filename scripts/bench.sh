#!/usr/bin/env bash
# End-to-end benchmark on a local Tansu broker (see BENCHMARKS.md).
#
#   scripts/bench.sh [cxstream-bench options...]   e.g. --events 200000 --latency-events 50000
#   scripts/bench.sh --smoke                        CI: operator benches once each, the bench
#                                                   binary's unit tests, and a tiny end-to-end
#                                                   run (seconds; no timing checked)
#   scripts/bench.sh --soak                         the crash and restore tests at soak sizes
#                                                   (CXSTREAM_SOAK=1: 5 kills during 200,000
#                                                   events; about 5 minutes), not in CI
#
# Starts Tansu 0.6.0 (scripts/tansu.sh) on a free local port in a fresh
# directory, builds the release benchmark binary (cxstream-bench, behind the
# `bench` feature), runs it against the broker with the group settings the
# tests use (Tansu completes a join after about half of session.timeout.ms),
# then stops the broker.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = "--soak" ]; then
  shift
  CXSTREAM_SOAK=1 exec bash scripts/test.sh --test recovery "$@"
fi

smoke=0
if [ "${1:-}" = "--smoke" ]; then
  smoke=1
  shift
fi

cargo build --release --locked --quiet --features bench --bin cxstream-bench
if [ "$smoke" = 1 ]; then
  cargo bench --locked --quiet --bench operators -- --test
  cargo test --release --locked --quiet --features bench --bin cxstream-bench
fi

TANSU=$(bash scripts/tansu.sh install)
export CXSTREAM_TANSU_BIN="$TANSU"
dir=$(mktemp -d)
port=$(bash scripts/tansu.sh free-port)
bash scripts/tansu.sh run "$port" "$dir/tansu" > "$dir/tansu.log" 2>&1 &
tansu_pid=$!
cleanup() {
  kill "$tansu_pid" 2>/dev/null || true
  wait "$tansu_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
bash scripts/tansu.sh wait "$port"

group=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -X max.poll.interval.ms=15000)
if [ "$smoke" = 1 ]; then
  set -- --events 2000 --latency-events 500 --variants passthrough,replay --strict "$@"
fi
echo "== cxstream-bench on Tansu 127.0.0.1:$port ($(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'))"
target/release/cxstream-bench --brokers "127.0.0.1:$port" "${group[@]}" "$@"
