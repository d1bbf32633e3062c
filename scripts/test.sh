#!/usr/bin/env bash
# The test command: unit, golden, property, mock-cluster and Tansu end-to-end tests.
# Installs (once, cached) the Tansu broker the end-to-end tests start, the
# Python venv with pm4py, fastavro and jsonschema (scripts/pyenv.sh), and
# Graphviz (Debian's package) for `cxstream mine dfg --out FILE.svg`.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v dot >/dev/null 2>&1; then
  echo "Installing Graphviz (Debian package graphviz)..." >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get install -y -qq graphviz >&2 || { $SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq graphviz >&2; } \
    || { echo "Graphviz is needed: install the graphviz package" >&2; exit 1; }
fi
CXSTREAM_TANSU_BIN="$(bash scripts/tansu.sh install)"
CXSTREAM_PYTHON="$(bash scripts/pyenv.sh install)"
export CXSTREAM_TANSU_BIN CXSTREAM_PYTHON
export CXSTREAM_REPO="$PWD"
cargo test --release --locked "$@" -- --include-ignored
