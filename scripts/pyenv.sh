#!/usr/bin/env bash
# The Python tools the tests need (scripts/python-requirements.txt), in a
# virtual environment cached like Tansu under ${CXSTREAM_CACHE:-~/.cache/cxstream}.
#
#   scripts/pyenv.sh install     create it once (about a minute), print its python's path
#   scripts/pyenv.sh path        print its python's path
#
# The venv's name carries a hash of the requirements file: changing a pin
# builds a new one.
set -euo pipefail
cd "$(dirname "$0")/.."
REQ=scripts/python-requirements.txt
CACHE=${CXSTREAM_CACHE:-$HOME/.cache/cxstream}
HASH=$(sha256sum "$REQ" | cut -c1-12)
VENV="$CACHE/venv-$HASH"
PY="$VENV/bin/python"

case "${1:-}" in
  install)
    if [ ! -f "$VENV/.complete" ]; then
      echo "Creating the test venv in $VENV (first time only)..." >&2
      rm -rf "$VENV"
      mkdir -p "$CACHE"
      python3 -m venv "$VENV" >&2
      "$PY" -m pip install --quiet --disable-pip-version-check -r "$REQ" >&2
      "$PY" -c "import pm4py, fastavro, jsonschema" >&2
      touch "$VENV/.complete"
    fi
    echo "$PY"
    ;;
  path)
    echo "$PY"
    ;;
  *)
    echo "usage: scripts/pyenv.sh install|path" >&2
    exit 2
    ;;
esac
