#!/usr/bin/env bash
# `kettle serve` under load beside FastAPI + LangGraph: one command, from a fresh clone.
#   bench/serve/run.sh [--seconds N]
# Builds Kettle (release); installs oha (pinned, from crates.io) and FastAPI, uvicorn and LangGraph
# (pinned, from PyPI) under the cache; writes the "serve" section of bench/RESULTS.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${KETTLE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kettle}"
tools="$cache/bench-tools"
if ! "$tools/bin/oha" --version 2>/dev/null | grep -q "1.16.0"; then
  cargo install --locked oha --version 1.16.0 --root "$tools"
fi
venv="$cache/bench-serve-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import fastapi, uvicorn, langgraph" 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "fastapi==0.115.0" "uvicorn==0.32.0" "langgraph==1.2.22"
fi
(cd "$repo" && cargo build --release -p kettle-cli --quiet)
target="${CARGO_TARGET_DIR:-$repo/target}"
exec python3 "$here/load.py" --kettle "$target/release/kettle" --python "$venv/bin/python" --oha "$tools/bin/oha" \
  --command "bench/serve/run.sh${*:+ $*}" "$@"
