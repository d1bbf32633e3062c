#!/usr/bin/env bash
# Per-stage cost on a local Tansu broker (BENCHMARKS.md section 8): a backlog
# of generated bronze events, then the shipped topology's silver stage alone
# over it, then its gold and process stages alone over silver's output, each a
# `cxstream run --stage NAME --exit-when-idle` process under /usr/bin/time.
# Prints, per stage, records read, wall and CPU seconds, and peak RSS. After
# the process stage, `cxstream export xes|ocel` and `cxstream mine dfg` over
# the activity log it wrote (BENCHMARKS.md section 9), the same way.
#
#   scripts/bench-stages.sh [interactions] [stages]
#       interactions: default 11000 (~118,000 events; 97000 makes ~1,000,000 activities)
#       stages: default "silver gold process"; "audit" adds an audit stage
#       (fresh key) and times `cxstream audit verify` over its trail
set -euo pipefail
cd "$(dirname "$0")/.."
interactions=${1:-11000}
stages=${2:-silver gold process}
cargo build --release --locked --quiet --bin cxstream
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
brokers="127.0.0.1:$port"
group=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -X max.poll.interval.ms=15000)
export CXSTREAM_MASKING_KEY=bench-masking-key
# The shipped topology, plus an audit stage (with a fresh key) when asked.
topology="$dir/topology.toml"
cp topologies/genesys-silver.toml "$topology"
case " $stages " in
  *" audit "*)
    cat >> "$topology" <<'TOML'

[[stages]]
name = "audit"
kind = "audit"
inputs = ["cx.silver.events"]
dead_letter = "cx.dlq"
[stages.ports]
events = { topic = "cx.audit.events", format = "json" }
checkpoints = { topic = "cx.audit.checkpoints", format = "json" }
[stages.internal]
repartition = "cx.internal.genesys-silver.audit.repartition"
changelog = "cx.internal.genesys-silver.audit.changelog"
TOML
    target/release/cxstream audit keygen --out "$dir/keys" > /dev/null
    export CXSTREAM_AUDIT_KEY_FILE="$dir/keys/audit-signing-key.pem"
    ;;
esac
echo "== $interactions interactions to genesys.bronze.events (4 partitions) on Tansu $brokers ($(nproc) cores)"
target/release/cxstream generate --interactions "$interactions" --seed 2027 --late-pct 1 \
  --topic genesys.bronze.events --brokers "$brokers" --partitions 4 > /dev/null
for stage in $stages; do
  /usr/bin/time -f "%e %U %S %M" -o "$dir/$stage.time" \
    target/release/cxstream run --topology "$topology" --stage "$stage" \
    --brokers "$brokers" --group-id bench --metrics-addr 127.0.0.1:0 --exit-when-idle 5s \
    "${group[@]}" > "$dir/$stage.log" 2>&1
  read -r wall user sys rss < "$dir/$stage.time"
  read_n=$(grep -o 'events_in=[0-9]*\|silver_events_read=[0-9]*' "$dir/$stage.log" | tail -1 | cut -d= -f2)
  awk -v s="$stage" -v n="$read_n" -v w="$wall" -v u="$user" -v y="$sys" -v r="$rss" 'BEGIN {
    cpu = u + y; busy = w - 5;
    printf "%-6s %9d records  wall %6.1f s (%.1f s busy, incl. group join)  CPU %6.2f s  %8.0f records/CPU-s  %6.2f CPU-s per million  peak RSS %d MB\n",
      s, n, w, busy, cpu, n / cpu, cpu * 1e6 / n, r / 1024 }'
done
case " $stages " in
  *" process "*)
    for what in "export xes" "export ocel" "mine dfg"; do
      name=${what// /-}
      ext=xes; [ "$what" = "export ocel" ] && ext=ocel.json; [ "$what" = "mine dfg" ] && ext=dot
      /usr/bin/time -f "%e %U %S %M" -o "$dir/$name.time" \
        target/release/cxstream $what --brokers "$brokers" --out "$dir/out.$ext" > /dev/null 2> "$dir/$name.log"
      read -r wall user sys rss < "$dir/$name.time"
      n=$(grep -o '[0-9]* activities' "$dir/$name.log" | head -1 | cut -d' ' -f1)
      size=$(stat -c %s "$dir/out.$ext")
      awk -v s="$what" -v n="$n" -v w="$wall" -v u="$user" -v y="$sys" -v r="$rss" -v b="$size" 'BEGIN {
        cpu = u + y;
        printf "%-11s %9d activities  wall %6.1f s  %8.0f activities/s  CPU %6.2f s  peak RSS %d MB  output %.0f MB\n",
          s, n, w, n / w, cpu, r / 1024, b / 1e6 }'
      rm -f "$dir/out.$ext"
    done
    ;;
esac
case " $stages " in
  *" audit "*)
    /usr/bin/time -f "%e %U %S %M" -o "$dir/verify.time" \
      target/release/cxstream audit verify --brokers "$brokers" --quiet \
      --public-key "$dir/keys/audit-signing-key.pub.pem" > "$dir/verify.log" 2>&1 \
      || { echo "audit verify failed:"; cat "$dir/verify.log"; exit 1; }
    read -r wall user sys rss < "$dir/verify.time"
    n=$(grep -o '[0-9]* records (first' "$dir/verify.log" | awk '{s += $1} END {print s}')
    awk -v n="$n" -v w="$wall" -v u="$user" -v y="$sys" -v r="$rss" 'BEGIN {
      cpu = u + y;
      printf "audit verify %9d records  wall %6.1f s  %8.0f records/s  CPU %6.2f s  peak RSS %d MB\n",
        n, w, n / w, cpu, r / 1024 }'
    ;;
esac
