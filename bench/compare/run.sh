#!/usr/bin/env bash
# Kettle vs LangGraph on the same agent: one command, from a fresh clone.
#   bench/compare/run.sh [--runs N] [--latency-ms MS]
# Builds Kettle (release), installs LangGraph and openai (pinned) into a private venv, runs the
# comparison and writes the "compare" section of bench/RESULTS.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${KETTLE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kettle}"
venv="$cache/bench-venv"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import langgraph, openai" 2>/dev/null; then
  echo "bench: installing langgraph and openai into $venv" >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet "langgraph==1.2.22" "openai==3.51.0"
fi
echo "bench: building kettle (release)" >&2
(cd "$repo" && cargo build --release -p kettle-cli --quiet)
target="${CARGO_TARGET_DIR:-$repo/target}"
exec python3 "$here/compare.py" --kettle "$target/release/kettle" --python "$venv/bin/python" \
  --command "bench/compare/run.sh${*:+ $*}" "$@"
