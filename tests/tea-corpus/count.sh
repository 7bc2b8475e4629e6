#!/usr/bin/env bash
# Runs `kettle validate` over the agents of a TEA checkout and prints how many load, how many of
# those run (`kettle run FILE`: no input, no provider configured beyond the file's own, so the
# offline mock answers; exit 0 within 120 s), then the remaining blockers by count (the first line of each problem, with names and positions
# replaced by placeholders so that alike problems add up).
#
# The agents: every YAML file with a top-level `nodes:` key under examples/,
# python/tests/fixtures/, rust/**/tests/fixtures/ and tests/fixtures/ (216 files at TEA f507cd9).
#
#   tests/tea-corpus/count.sh /path/to/tea [path/to/kettle]   # default: target/debug/kettle
#   KETTLE_STRICT=1 ... also counts warnings as failures (`kettle validate --strict`)
set -u
tea=${1:?usage: count.sh TEA_CHECKOUT [KETTLE_BINARY]}
kettle=${2:-${CARGO_TARGET_DIR:-target}/debug/kettle}
[ -x "$kettle" ] || { echo "no kettle binary at $kettle (build it: cargo build -p kettle-cli)" >&2; exit 2; }
strict=()
[ -n "${KETTLE_STRICT:-}" ] && strict=(--strict)

mapfile -t files < <(cd "$tea" && find examples python/tests/fixtures rust tests/fixtures \
    \( -name '*.yaml' -o -name '*.yml' \) -not -path '*/target/*' -not -path '*/node_modules/*' \
    2>/dev/null | grep -E '^(examples|python/tests/fixtures|tests/fixtures)/|^rust/(.*/)?tests/fixtures/' \
    | sort | while read -r f; do grep -q '^nodes:' "$tea/$f" && echo "$f"; done)

loaded=0
ran=0
rundir=$(mktemp -d)
only_inline=0
problems=$(mktemp)
firsts=$(mktemp)
trap 'rm -rf "$problems" "$firsts" "$rundir"' EXIT
for f in "${files[@]}"; do
    if out=$("$kettle" validate "${strict[@]}" "$tea/$f" 2>&1); then
        loaded=$((loaded + 1))
        if (cd "$rundir" && timeout 120 "$kettle" run --no-trace "$tea/$f" >/dev/null 2>&1 </dev/null); then
            ran=$((ran + 1))
        else
            echo "$f" >>"$rundir/.failed-runs"
        fi
    else
        # Problem lines start with the file's path; keep the message after the position.
        grep -E "^$tea/$f(:[0-9]+)*: " <<<"$out" | sed -E "s|^$tea/$f(:[0-9]+)*: ||" >>"$problems"
        # Refused for inline code alone (what the inline-code work lifts).
        grep -E "^$tea/$f(:[0-9]+)*: " <<<"$out" | grep -qv "has inline code" || only_inline=$((only_inline + 1))
        grep -E "^$tea/$f(:[0-9]+)*: " <<<"$out" | head -1 | sed -E "s|^$tea/$f(:[0-9]+)*: ||" >>"$firsts"
    fi
done
normalise() {
    sed -E -e 's/, expected (one of )?`.*$//' \
        -e 's/(unknown field|unknown action|unknown type|inline code \(|does not take) `([^`]*)`/\1 <\2>/g' \
        -e 's/`[^`]*`/`X`/g' -e 's/<([^>]*)>/`\1`/g' -e 's/nodes\[[0-9]+\]/nodes[N]/g' -e 's/edges\[[0-9]+\]/edges[N]/g' \
        -e 's/\[[0-9]+\]/[N]/g' -e 's/"[^"]*"/"X"/g' | cut -c1-150 | sort | uniq -c | sort -rn
}
echo "agents: ${#files[@]}   load: $loaded   run: $ran   refused: $(( ${#files[@]} - loaded ))   refused for inline code alone: $only_inline"
[ -n "${KETTLE_SHOW_FAILED_RUNS:-}" ] && [ -f "$rundir/.failed-runs" ] && { echo "loaded but did not run:"; cat "$rundir/.failed-runs"; }
echo
echo "first problem of each refused agent, by count:"
normalise <"$firsts" | head -40
echo
echo "every problem, by count ($(wc -l <"$problems") in all):"
normalise <"$problems" | head -40
