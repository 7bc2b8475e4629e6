#!/usr/bin/env bash
# Inline Python, Kettle against TEA, on the same chains (2 and 202 nodes, each `return {"n":
# state["n"] + 1}`): Kettle's criterion benchmark `inline_node` (sandboxed, one interpreter
# instance per run, and `isolation: node`) and TEA's YAMLEngine in process (unsandboxed exec).
#
#   bench/tea-inline/run.sh /path/to/the_edge_agent   # a TEA checkout (its python/ package)
#
# TEA is installed from the checkout into a venv under $CARGO_TARGET_DIR (or target/); the
# "tea-inline" section of bench/RESULTS.md is written from both.
set -euo pipefail
tea=${1:?usage: run.sh TEA_CHECKOUT}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
work="$target/tea-inline"
mkdir -p "$work"
for n in 2 202; do
  {
    echo "name: chain"
    echo "nodes:"
    for i in $(seq 0 $((n - 1))); do
      printf '  - name: n%s\n    run: |\n      return {"n": state["n"] + 1}\n' "$i"
    done
  } >"$work/chain$n.yaml"
done
if [ ! -x "$work/venv/bin/python" ]; then
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet --disable-pip-version-check "$tea/python"
fi
tea_commit=$(cd "$tea" && git rev-parse --short HEAD 2>/dev/null || echo unknown)
echo "== TEA ($tea_commit), in process" >&2
CHAIN_DIR="$work" "$work/venv/bin/python" "$here/tea_chain.py" >"$work/tea.json"
echo "== Kettle ($(cd "$repo" && git rev-parse --short HEAD)), cargo bench -p kettle --bench inline_node" >&2
rm -rf "$target/criterion/inline_node"
(cd "$repo" && cargo bench -p kettle --bench inline_node)
exec python3 "$here/report.py" "$target" "$work/tea.json" "$tea_commit"
