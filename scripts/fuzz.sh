#!/usr/bin/env bash
# Decoder fuzzing figure (issue 13): a mutation fuzzer over the golden inputs and
# generated records, each input through decode_record and the whole in-process
# chain under catch_unwind (examples/fuzz_decode.rs).
#
#   scripts/fuzz.sh [N] [SEED]     N inputs (default 2,000,000), seed (default 1)
#   scripts/fuzz.sh 20000          the CI smoke (a few seconds)
#
# Exits non-zero if any input panicked; panicking inputs are saved under
# target/fuzz-decode/ (with the message and backtrace).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-2000000}
SEED=${2:-1}
cargo build --release --locked --example fuzz_decode >&2
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src examples || echo '+dirty'), $(date -u +%Y-%m-%dT%H:%MZ)" >&2
exec target/release/examples/fuzz_decode --inputs "$N" --seed "$SEED" --out target/fuzz-decode
