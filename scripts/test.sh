#!/usr/bin/env bash
# The test command: unit, golden, property, mock-cluster and Tansu end-to-end tests.
# Installs (once, cached) the Tansu broker the end-to-end tests start.
set -euo pipefail
cd "$(dirname "$0")/.."
CXSTREAM_TANSU_BIN="$(bash scripts/tansu.sh install)"
export CXSTREAM_TANSU_BIN
export CXSTREAM_REPO="$PWD"
# Two recovery tests do not pass reliably on Tansu 0.6.0 yet and are skipped
# (issue 3; run them with CXSTREAM_RUN_PENDING=1):
#   two_instances_one_killed_and_restarted_a_third_joins  - Tansu's group
#     coordinator hands partitions to a member while another keeps them (for
#     minutes under cooperative-sticky). With the hand-over wait, the eager
#     protocol and instances stopped once the group committed to the end, it
#     passed its last run; not yet repeated enough to call it reliable
#   broker_restart_mid_stream  - neither the processor nor the test producer
#     recovers after a restart of Tansu with sqlite storage
pending=(--skip two_instances_one_killed_and_restarted_a_third_joins --skip broker_restart_mid_stream)
if [ "${CXSTREAM_RUN_PENDING:-0}" = 1 ]; then pending=(); fi
cargo test --release --locked "$@" -- --include-ignored "${pending[@]}"
