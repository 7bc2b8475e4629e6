#!/usr/bin/env bash
# Inline Prolog's cost in Kettle: `kettle run` of chains of 1 and 21 Prolog nodes (each
# `state(n, N), M is N + 1, return(n, M).`) and of one CLP(FD) node, best of 3 runs each, wall
# time of the whole process (start, agent load from the compile cache, run, trace written).
# The first node of a run starts Trealla (instance of the interpreter component, Trealla's
# engine and the driver); each next node costs (t21 - t1) / 20. Peak RSS is the whole
# process's, for the 1-node chain and the CLP(FD) node (GNU time).
#
#   bench/tea-prolog/run.sh [path/to/kettle]    # default: $CARGO_TARGET_DIR/release/kettle
#   KETTLE_ARGS='--limit memory_mb=4000' bench/tea-prolog/run.sh old/kettle  # the wasmi version
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$repo/target}
kettle=${1:-$target/release/kettle}
work="$target/tea-prolog"
mkdir -p "$work"
for n in 1 21; do
  {
    echo "name: chain"
    echo "nodes:"
    for i in $(seq 0 $((n - 1))); do
      printf '  - name: n%s\n    language: prolog\n    run: |\n      state(n, N), M is N + 1, return(n, M).\n' "$i"
    done
  } >"$work/chain$n.yaml"
done
cat >"$work/clp.yaml" <<'YAML'
name: clp
nodes:
  - name: solve
    language: prolog
    run: |
      X in 1..10, Y in 1..10, X + Y #= 15, X #< Y, label([X, Y]), return(x, X), return(y, Y).
YAML
best() {
  local best=
  for _ in 1 2 3; do
    local start end t
    start=$(date +%s%N)
    "$kettle" run "$1" ${KETTLE_ARGS:-} --input '{"n": 0}' --trace-dir "$work/traces" >/dev/null
    end=$(date +%s%N)
    t=$(( (end - start) / 1000000 ))
    if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
  done
  echo "$best"
}
"$kettle" run "$work/chain1.yaml" ${KETTLE_ARGS:-} --input '{"n": 0}' --trace-dir "$work/traces" >/dev/null # builds
t1=$(best "$work/chain1.yaml")
t21=$(best "$work/chain21.yaml")
tclp=$(best "$work/clp.yaml")
rss() {
  /usr/bin/time -f %M "$kettle" run "$1" ${KETTLE_ARGS:-} --input '{"n": 0}' --trace-dir "$work/traces" 2>&1 >/dev/null | tail -1
}
rss1=$(rss "$work/chain1.yaml")
rssclp=$(rss "$work/clp.yaml")
echo "peak RSS: 1 Prolog node $((rss1 / 1024)) MiB, 1 CLP(FD) node $((rssclp / 1024)) MiB"
echo "kettle $(cd "$repo" && git rev-parse --short HEAD): 1 Prolog node ${t1} ms, 21 nodes ${t21} ms, each next node $(( (t21 - t1) / 20 )) ms, 1 CLP(FD) node ${tclp} ms (whole process, best of 3)"

# The reference TEA would use: SWI-Prolog, native and unsandboxed, on the same goals (whole
# process, best of 3). TEA-Python's janus-swi needs SWI-Prolog >= 9.1.12; where only an older
# swipl is installed (Debian bookworm: 9.0.4) the plain `swipl` process is what can be measured.
if command -v swipl >/dev/null; then
  cat >"$work/clp.pl" <<'PL'
:- use_module(library(clpfd)).
main :- X in 1..10, Y in 1..10, X + Y #= 15, X #< Y, label([X, Y]), write(X-Y), nl.
PL
  cat >"$work/plain.pl" <<'PL'
main :- N = 0, M is N + 1, write(M), nl.
PL
  swipl_best() {
    local best=
    for _ in 1 2 3; do
      local start end t
      start=$(date +%s%N)
      swipl -q -g main -t halt "$1" >/dev/null
      end=$(date +%s%N)
      t=$(( (end - start) / 1000000 ))
      if [ -z "$best" ] || [ "$t" -lt "$best" ]; then best=$t; fi
    done
    echo "$best"
  }
  echo "$(swipl --version) (native, no sandbox): one goal $(swipl_best "$work/plain.pl") ms, the CLP(FD) goal $(swipl_best "$work/clp.pl") ms (whole process, best of 3)"
else
  echo "no swipl here: install SWI-Prolog (Debian: swi-prolog-nox) for the native reference"
fi
