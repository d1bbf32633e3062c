#!/usr/bin/env bash
# Steady-state memory of `cxstream run` on a live stream (BENCHMARKS.md, "Memory"):
# the shipped topology on a 4-partition input, `cxstream generate` publishing at
# RATE records/s (default 5000) while the processor runs; every 5 s it prints the
# processor's VmRSS, the dedup keys it holds and the events buffered for reordering.
#
#   scripts/steady-rss.sh [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rate=${1:-5000}
secs=${2:-80}
cargo build --release --locked --quiet
bin=target/release/cxstream
TANSU=$(bash scripts/tansu.sh install)
export CXSTREAM_TANSU_BIN="$TANSU"
dir=$(mktemp -d)
port=$(bash scripts/tansu.sh free-port)
metrics=$(bash scripts/tansu.sh free-port)
bash scripts/tansu.sh run "$port" "$dir/tansu" > "$dir/tansu.log" 2>&1 &
tansu_pid=$!
run_pid=""
gen_pid=""
cleanup() {
  for p in $gen_pid $run_pid $tansu_pid; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
bash scripts/tansu.sh wait "$port"
group=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -X max.poll.interval.ms=15000)
topic=genesys.bronze.events
# An empty 4-partition input first (generate creates it), then the processor.
"$bin" generate --interactions 1 --topic "$topic" --brokers "127.0.0.1:$port" --partitions 4 > /dev/null 2>&1
CXSTREAM_MASKING_KEY=steady-rss CXSTREAM_LOG=warn "$bin" run --topology topologies/genesys-silver.toml \
  --brokers "127.0.0.1:$port" --group-id steady --metrics-addr "127.0.0.1:$metrics" "${group[@]}" \
  > "$dir/run.log" 2>&1 &
run_pid=$!
sleep 8
"$bin" generate --interactions 1000000 --seed 9 --rate "$rate" --topic "$topic" \
  --brokers "127.0.0.1:$port" > "$dir/generate.log" 2>&1 &
gen_pid=$!
echo "== cxstream run, live input at $rate records/s, shipped topology, 4 partitions ($(nproc) cores)"
for i in $(seq 5 5 "$secs"); do
  sleep 5
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$run_pid/status")
  m=$(curl -s "127.0.0.1:$metrics/metrics")
  get() { echo "$m" | awk -v k="$1" '$1 == k {print $2}'; }
  echo "t=${i}s rss=$((rss / 1024))MB dedup_keys=$(get cxstream_dedup_keys) buffered=$(get cxstream_reorder_buffered_events) events_in=$(get cxstream_events_in_total)"
done
