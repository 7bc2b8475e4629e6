"""The engine's own cost per node with no LLM, and start-up, measured by whole-process runs: Kettle,
TEA-Python and LangGraph run the same chains of trivial nodes, alternating, and the "engine-cost"
section of bench/RESULTS.md is written. Started by run.sh, which prepares all three.

Per node = (median(tN) - median(t2)) / (N - 2), where t is the wall time of a whole process that
loads the agent, runs a chain of that many nodes (each adds one to a counter) and exits; N is 2,002
for every framework. Over 200 nodes the difference was inside the noise of a process's wall
time here: Kettle's nodes cost microseconds, and TEA's and LangGraph's processes vary by tens
of milliseconds from one start to the next (TEA's inline-Python node measured 0.14 and 0.66 ms
in two runs over 202 nodes). Start-up is the wall time of a one-node agent. The same YAML file
runs in Kettle and in TEA. Each ratio is given twice: of the medians, and as the median of the
ratios taken within each round (this machine's speed drifts by up to 1.7× from one minute to the
next, and a round runs every framework within seconds).

Kettle runs with its caches warm, as every run after an agent's first: components compiled, and
the agent file's parsed tree kept. One more row runs the expression chains with an empty cache
folder of their own, emptied before every run: an agent's first load.

Usage: python3 engine_cost.py --kettle PATH --langgraph-python PATH --tea PATH [--floor-pair PATH] [--runs N]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
from results import machine_lines, version, write_section  # noqa: E402

# Chain lengths, the same for every framework (see the docstring).
LENGTHS = (1, 2, 2002)
COUNT_NODE = HERE / "kettle" / "count"


def chain_yaml(kind: str, nodes: int) -> str:
    """A chain of `nodes` nodes of one kind, in TEA's YAML (which Kettle reads unchanged)."""
    lines = ["name: chain", "nodes:"]
    for i in range(nodes):
        lines.append(f"  - name: n{i}")
        if kind == "expression":
            lines += ["    run:", "      type: expression", '      value: state["n"] + 1', "      output_key: n"]
        elif kind == "inline-python":
            lines += ["    run: |", '      return {"n": state["n"] + 1}']
        elif kind == "component":
            lines.append(f"    component: '{COUNT_NODE}'")
        else:
            raise ValueError(kind)
    return "\n".join(lines) + "\n"


def timed(command, env=None, before=None):
    """Wall seconds and stdout of one process (after `before`, untimed); exits on failure, saying
    what failed."""
    if before:
        before()
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"{' '.join(map(str, command))} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return wall, done.stdout


def final_n(stdout: str):
    """The counter of a run's final state, from the last JSON object the process printed."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                state = json.loads(line)
            except json.JSONDecodeError:
                continue
            return state.get("n")
    try:
        return json.loads(stdout).get("n")
    except (json.JSONDecodeError, AttributeError):
        return None


def floor_round(floor_pair):
    """One run of the `floor_pair` benchmark's rust_echo/1KB lane: the pooled floor's instantiate +
    call, and Kettle's node path against it, timed alternately in its own process."""
    _, out = timed([floor_pair, "--bench", "rust_echo/1KB"])
    for line in out.splitlines():
        if line.startswith("{"):
            return json.loads(line)
    sys.exit(f"{floor_pair} printed no lane:\n{out[-2000:]}")


def floor_line(floors, component_seconds):
    """Kettle's component node in a whole run against the pooled floor, measured in the same rounds."""
    if not floors:
        return "- component node against the pooled floor: not measured here (no `--floor-pair`)"
    floor = statistics.median(f["floor_s"] for f in floors)
    path = statistics.median(f["ratio"] for f in floors)
    return (f"- component node in a whole run / the pooled floor's instantiate + call ({floor * 1e6:.1f} µs, the "
            f"`floor_pair` benchmark's rust_echo/1KB lane run once in every round, median): "
            f"{component_seconds / floor:.2f}× (goal ≤ 1.5×); Kettle's node path alone against the floor, "
            f"timed alternately in one process: {path:.2f}× (median of the rounds)")


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kettle", required=True)
    parser.add_argument("--langgraph-python", required=True)
    parser.add_argument("--tea", required=True, help="TEA's `tea` command from its venv")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--floor-pair", help="the `floor_pair` benchmark's executable, run once per round for the pooled floor")
    parser.add_argument("--command", default="bench/compare/engine_cost.py")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="kettle-engine-cost-"))
    trace_off = {**os.environ, "OTEL_SDK_DISABLED": "true"}
    # The first-load row: a cache folder of its own, emptied before each run (untimed). Expression
    # nodes need nothing else from the cache.
    cold_cache = work / "cold-cache"
    envs = {("kettle", "expression-cold"): {**trace_off, "KETTLE_CACHE_DIR": str(cold_cache)}}
    before = {("kettle", "expression-cold"): lambda: shutil.rmtree(cold_cache, ignore_errors=True)}
    cases = {}  # (framework, kind) -> {length: command}
    for kind in ("expression", "inline-python", "component"):
        for n in LENGTHS:
            path = work / f"{kind}-{n}.yaml"
            path.write_text(chain_yaml(kind, n))
            command = [args.kettle, "run", str(path), "--quiet", "--no-trace", "--max-steps", str(n + 10),
                       "--input", '{"n": 0}']
            cases.setdefault(("kettle", kind), {})[n] = command
            if kind == "expression":
                cases.setdefault(("kettle", "expression-cold"), {})[n] = command
            if kind != "component":
                cases.setdefault(("tea", kind), {})[n] = [args.tea, "run", str(path), "--input", '{"n": 0}']
    for n in LENGTHS:
        cases.setdefault(("langgraph", "function"), {})[n] = [args.langgraph_python, str(HERE / "langgraph_chain.py"), str(n)]

    # One unmeasured round: compiles Kettle's components, fills the OS caches, checks every answer.
    for (framework, kind), by_length in cases.items():
        for n, command in by_length.items():
            key = (framework, kind)
            _, out = timed(command, envs.get(key, trace_off), before.get(key))
            expected = n
            if framework != "tea" and final_n(out) != expected:
                sys.exit(f"{framework} {kind} chain of {n}: final n is {final_n(out)!r}, expected {expected}")
    walls = {key: {n: [] for n in by_length} for key, by_length in cases.items()}
    order = list(cases)
    floors = []
    for i in range(args.runs):
        if args.floor_pair:
            floors.append(floor_round(args.floor_pair))
        for key in order if i % 2 == 0 else reversed(order):
            for n, command in cases[key].items():
                walls[key][n].append(timed(command, envs.get(key, trace_off), before.get(key))[0])

    medians = {key: {n: statistics.median(v) for n, v in by_length.items()} for key, by_length in walls.items()}
    longest = {key: max(m) for key, m in medians.items()}
    per_node = {key: (m[longest[key]] - m[2]) / (longest[key] - 2) for key, m in medians.items()}
    startup = {key: m[1] for key, m in medians.items()}
    # The same per node within each round: the frameworks' chains of one round ran seconds apart,
    # so a ratio taken inside a round is not moved by the machine's speed drifting between rounds.
    per_node_rounds = {key: [(tn - t2) / (longest[key] - 2) for t2, tn in zip(w[2], w[longest[key]])]
                       for key, w in walls.items()}

    def ms(seconds):
        return f"{seconds * 1000:.3f}" if seconds < 0.1 else f"{seconds * 1000:.1f}"

    names = {
        ("kettle", "expression"): "Kettle, expression node",
        ("kettle", "expression-cold"): "Kettle, expression node, the agent's first load (no parsed tree kept)",
        ("kettle", "component"): "Kettle, Rust component node (sandboxed, fresh instance)",
        ("kettle", "inline-python"): "Kettle, inline Python (sandboxed, one interpreter per run)",
        ("tea", "expression"): "TEA-Python, expression node",
        ("tea", "inline-python"): "TEA-Python, inline Python (unsandboxed `exec`)",
        ("langgraph", "function"): "LangGraph, Python function node",
    }
    lines = [
        "## The engine's own cost per node, without LLM, and start-up",
        "",
        f"Generated by `{args.command}`. Whole-process runs of chains of 1, 2 and 2,002 trivial nodes (each",
        "adds one to a counter; Kettle's component node is the Rust component bench/compare/kettle/count),",
        "the same YAML file for",
        "Kettle and TEA, a LangGraph `StateGraph` of Python functions for LangGraph; Kettle with",
        f"`--no-trace`. {args.runs} rounds, alternating the frameworks; medians. Kettle's caches are warm, as for",
        "every run after an agent's first (components compiled, the agent file's parsed tree kept); the row",
        "\"first load\" removes the parsed tree before every run.",
        "Per node = (tN − t2) / (N − 2), N = 2,002 for every framework (over 200 nodes, Kettle's few µs",
        "per node and TEA's and LangGraph's start-up variance of tens of ms made the figure noise); start-up",
        "= the whole process for a one-node agent.",
        "",
        "| framework, node | t2 (ms) | N | tN (ms) | per node (ms) | start-up (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key in order:
        m = medians[key]
        lines.append(f"| {names[key]} | {ms(m[2])} | {longest[key]:,} | {ms(m[longest[key]])} | {ms(per_node[key])} | {ms(startup[key])} |")
    def ratio(a, b):
        """How many times cheaper `a` is than `b` per node: of the medians, then within each round."""
        of_medians = per_node[b] / per_node[a] if per_node[a] > 0 else float("inf")
        rounds = sorted(pb / pa if pa > 0 else float("inf")
                        for pa, pb in zip(per_node_rounds[a], per_node_rounds[b]))
        return (f"{of_medians:.1f}× (per round: median {statistics.median(rounds):.1f}×, "
                f"{rounds[0]:.1f}–{rounds[-1]:.1f}×)")

    lines += [
        "",
        "Ratios (how many times cheaper Kettle is), of the medians above, then of the per-node costs",
        "measured within each round (the median of the rounds' ratios, and their range):",
        "",
        f"- expression node, TEA / Kettle: {ratio(('kettle', 'expression'), ('tea', 'expression'))} (goal ≥ 100×)",
        f"- inline Python, TEA unsandboxed / Kettle sandboxed: {ratio(('kettle', 'inline-python'), ('tea', 'inline-python'))}",
        f"- component node, TEA inline Python / Kettle: {ratio(('kettle', 'component'), ('tea', 'inline-python'))} (goal ≥ 13×)",
        f"- component node, LangGraph function / Kettle: {ratio(('kettle', 'component'), ('langgraph', 'function'))} (goal ≥ 40×)",
        f"- expression node at its first load, TEA / Kettle: {ratio(('kettle', 'expression-cold'), ('tea', 'expression'))}",
        f"- start-up, TEA / Kettle: {startup[('tea', 'expression')] / startup[('kettle', 'expression')]:.0f}× (goal ≥ 100×); "
        f"LangGraph / Kettle: {startup[('langgraph', 'function')] / startup[('kettle', 'expression')]:.0f}×",
        floor_line(floors, per_node[("kettle", "component")]),
        "",
        "Machine and versions:",
        "",
        *machine_lines(),
        f"- kettle: {version([args.kettle, '--version'])}",
        f"- TEA: {version([args.tea, '--version'])}; "
        + version([args.langgraph_python, "-c", 'import importlib.metadata as m; print("langgraph", m.version("langgraph"))']),
    ]
    write_section("engine-cost", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
