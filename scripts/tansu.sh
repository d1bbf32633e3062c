#!/usr/bin/env bash
# Tansu, the Kafka-protocol broker the end-to-end tests run against.
#
#   scripts/tansu.sh install            build it once (cached), print the binary's path
#   scripts/tansu.sh path               print the binary's path
#   scripts/tansu.sh run PORT DIR [STORAGE]
#                                       run a broker in the foreground on 127.0.0.1:PORT,
#                                       working directory DIR (created empty; Tansu reads
#                                       a .env file from its working directory).
#                                       STORAGE: memory (default) or sqlite (survives restarts).
#   scripts/tansu.sh free-port          print a local TCP port nothing listens on
#   scripts/tansu.sh wait PORT          wait (up to 10 s) until something listens on PORT
#
# The binary is cached under ${CXSTREAM_CACHE:-~/.cache/cxstream}; building it takes
# about 6-10 minutes on 2 cores the first time.
set -euo pipefail

TANSU_VERSION=0.6.0
CACHE=${CXSTREAM_CACHE:-$HOME/.cache/cxstream}
ROOT="$CACHE/tansu-$TANSU_VERSION"
BIN="$ROOT/bin/tansu"

case "${1:-}" in
  install)
    if [ ! -x "$BIN" ]; then
      echo "Building Tansu $TANSU_VERSION into $ROOT (first time only)..." >&2
      mkdir -p "$ROOT"
      cargo install tansu --locked --version "$TANSU_VERSION" \
        --features dynostore,libsql --root "$ROOT" >&2
    fi
    echo "$BIN"
    ;;
  path)
    echo "$BIN"
    ;;
  run)
    port=${2:?usage: tansu.sh run PORT DIR [memory|sqlite]}
    dir=${3:?usage: tansu.sh run PORT DIR [memory|sqlite]}
    storage=${4:-memory}
    [ -x "$BIN" ] || { echo "Tansu is not installed: run scripts/tansu.sh install" >&2; exit 2; }
    mkdir -p "$dir"
    cd "$dir"
    case "$storage" in
      memory) engine="memory://tansu/" ;;
      sqlite) engine="sqlite://tansu.db" ;;  # relative to DIR (Tansu runs there)
      *) echo "unknown storage $storage (memory|sqlite)" >&2; exit 2 ;;
    esac
    exec "$BIN" broker \
      --listener-url "tcp://127.0.0.1:$port" \
      --advertised-listener-url "tcp://127.0.0.1:$port" \
      --storage-engine "$engine"
    ;;
  free-port)
    for _ in $(seq 50); do
      p=$((20000 + RANDOM % 30000))
      if ! (echo > "/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; exit 0; fi
    done
    echo "no free port found" >&2
    exit 1
    ;;
  wait)
    port=${2:?usage: tansu.sh wait PORT}
    for _ in $(seq 100); do
      (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && exit 0
      sleep 0.1
    done
    echo "nothing listens on 127.0.0.1:$port after 10 s" >&2
    exit 1
    ;;
  *)
    sed -n '2,16p' "$0" >&2
    exit 2
    ;;
esac
