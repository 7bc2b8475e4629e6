#!/usr/bin/env bash
# The runtime's own costs: every criterion benchmark of the kettle and kettle-cli crates (release), then the
# "runtime" section of bench/RESULTS.md. One command, from a fresh clone:
#   bench/runtime.sh [criterion filter]
# Installs the Python and JS toolchains the polyglot benchmarks need on first use.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
target="${CARGO_TARGET_DIR:-$repo/target}"
# Results of earlier runs (or of benchmarks since removed) must not reach the report.
rm -rf "$target/criterion" "$target/tmp/kettle-bench-memory.json" "$target/tmp/kettle-bench-floor-pair.json" \
  "$target/tmp/kettle-bench-cpu-fan-out.json"
(cd "$repo" && cargo bench -p kettle -p kettle-cli --benches -- "$@")
exec python3 "$here/runtime_report.py" "$target"
