#!/usr/bin/env bash
# The test command: unit, golden, property, mock-cluster and Tansu end-to-end tests.
# Installs (once, cached) the Tansu broker the end-to-end tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
CXSTREAM_TANSU_BIN="$(bash scripts/tansu.sh install)"
export CXSTREAM_TANSU_BIN
export CXSTREAM_REPO="$PWD"
cargo test --release --locked "$@" -- --include-ignored
