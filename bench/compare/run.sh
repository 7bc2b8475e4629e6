#!/usr/bin/env bash
# Kettle against LangGraph and TEA-Python: one command, from a fresh clone.
#   bench/compare/run.sh [--runs N] [--latency-ms MS]
# Builds Kettle (release) and the floor_pair benchmark (with the features bench/runtime.sh builds it with,
# so that its build is reused); installs LangGraph and openai (pinned) into a private venv, and TEA-Python
# from its repository at a pinned commit (TEA_CHECKOUT=/path uses an existing checkout instead of
# cloning); then writes two sections of bench/RESULTS.md: "compare" (the LLM agent, against a bare
# HTTP client's baseline) and "engine-cost" (cost per node without LLM, and start-up).
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
tea_commit=f507cd9
tea_venv="$cache/bench-tea-venv"
if [ ! -x "$tea_venv/bin/tea" ]; then
  tea_checkout="${TEA_CHECKOUT:-$cache/the_edge_agent}"
  if [ ! -d "$tea_checkout/python" ]; then
    echo "bench: cloning TEA into $tea_checkout" >&2
    git clone --quiet https://github.com/fabceolin/the_edge_agent "$tea_checkout"
    git -C "$tea_checkout" checkout --quiet "$tea_commit"
  fi
  echo "bench: installing TEA-Python ($(git -C "$tea_checkout" rev-parse --short HEAD 2>/dev/null || echo unknown)) into $tea_venv" >&2
  python3 -m venv "$tea_venv"
  "$tea_venv/bin/pip" install --quiet --disable-pip-version-check "$tea_checkout/python"
fi
echo "bench: building kettle (release)" >&2
(cd "$repo" && cargo build --release -p kettle-cli --quiet)
target="${CARGO_TARGET_DIR:-$repo/target}"
echo "bench: building the floor_pair benchmark (the pooled floor, measured in every round)" >&2
floor_pair="$(cd "$repo" && cargo bench -p kettle -p kettle-cli --bench floor_pair --no-run --quiet --message-format=json \
  | python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "floor_pair" and m.get("executable"):
        print(m["executable"])')"
python3 "$here/engine_cost.py" --kettle "$target/release/kettle" --langgraph-python "$venv/bin/python" \
  --tea "$tea_venv/bin/tea" --floor-pair "$floor_pair" --command "bench/compare/run.sh${*:+ $*}"
exec python3 "$here/compare.py" --kettle "$target/release/kettle" --python "$venv/bin/python" \
  --command "bench/compare/run.sh${*:+ $*}" "$@"
