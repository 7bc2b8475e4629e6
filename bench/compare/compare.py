"""Runs the same agent in Kettle and in LangGraph, alternating, against one mock LLM server with
a fixed latency, and writes the "compare" section of bench/RESULTS.md. Started by run.sh, which
prepares both sides.

Usage: python3 compare.py --kettle PATH --python PATH [--runs N] [--latency-ms MS]
"""

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from results import machine_lines, version, write_section  # noqa: E402

SEQUENTIAL = 5
BRANCHES = 16
LLM_LAYERS = SEQUENTIAL + 1  # the LLM calls on the critical path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss(command, env=None):
    """Runs a command and returns (wall, peak RSS in bytes, stdout, stderr) from wait4."""
    out_file = tempfile.TemporaryFile()
    err_file = tempfile.TemporaryFile()
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=out_file, stderr=err_file, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    out_file.seek(0)
    err_file.seek(0)
    out, err = out_file.read().decode(), err_file.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{command[0]} failed:\n{err}")
    return wall, usage.ru_maxrss * 1024, out, err


VERSIONS_SCRIPT = 'import importlib.metadata as m; print("langgraph", m.version("langgraph"), "openai", m.version("openai"))'


def normalize(state: dict) -> dict:
    keys = ["topic"] + [f"s{n}" for n in range(1, SEQUENTIAL + 1)] + ["branches"]
    return {k: state.get(k) for k in keys}


def kettle_agent(base_url: str, folder: str) -> Path:
    """The comparison agent in Kettle's YAML, pointed at the mock server."""
    ask = HERE / "kettle" / "ask"
    lines = [
        "name: compare",
        "settings:",
        f"  llm: {{provider: openai, model: bench, base_url: '{base_url}'}}",
        "nodes:",
    ]
    for n in range(1, SEQUENTIAL + 1):
        source = "topic" if n == 1 else f"s{n - 1}"
        lines.append(f"  - {{name: s{n}, component: '{ask}', config: {{prefix: 'step {n}: ', from: {source}, to: s{n}}}}}")
    for i in range(BRANCHES):
        lines.append(f"  - {{name: b{i}, component: '{ask}', config: {{prefix: 'branch {i}: ', from: s5, to: branch}}}}")
    lines += [
        "  - name: join",
        "    fan_in: true",
        "    run: {type: expression, value: \"parallel_results | map(attribute='branch') | list\", output_key: branches}",
        "edges:",
    ]
    lines += [f"  - {{from: s{n}, to: s{n + 1}}}" for n in range(1, SEQUENTIAL)]
    lines += [f"  - {{from: s{SEQUENTIAL}, to: b{i}, type: parallel, fan_in: join}}" for i in range(BRANCHES)]
    lines += [f"  - {{from: b{i}, to: join}}" for i in range(BRANCHES)]
    lines += ["  - {from: join, to: __end__}"]
    path = Path(folder) / "agent.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def kettle_run(kettle, agent, trace_dir):
    for old in Path(trace_dir).glob("*.jsonl"):
        old.unlink()
    wall, rss, out, _ = peak_rss(
        [kettle, "run", str(agent), "--quiet", "--trace-dir", trace_dir, "--input", '{"topic": "tea"}']
    )
    spans = [json.loads(line) for f in Path(trace_dir).glob("*.jsonl") for line in f.read_text().splitlines()]
    root = next(s for s in spans if s["parent_span_id"] is None)
    run_seconds = (root["end_time_unix_nano"] - root["start_time_unix_nano"]) / 1e9
    return wall, run_seconds, rss, normalize(json.loads(out))


def langgraph_run(python, base_url):
    wall, rss, out, err = peak_rss([python, str(HERE / "langgraph_agent.py"), base_url])
    run_seconds = float(err.rsplit("run_seconds=", 1)[1].split()[0])
    return wall, run_seconds, rss, normalize(json.loads(out))


def baseline_run(python, base_url):
    """The same LLM calls by a bare HTTP client (bare_client.py): the floor of the run time."""
    _, _, _, err = peak_rss([python, str(HERE / "bare_client.py"), base_url])
    return float(err.rsplit("run_seconds=", 1)[1].split()[0])


def summary(values):
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]
    return statistics.median(ordered), p95


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kettle", required=True)
    parser.add_argument("--python", required=True, help="the venv's python with langgraph installed")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--command", default="bench/compare/run.sh")
    args = parser.parse_args()

    port = free_port()
    server = subprocess.Popen([sys.executable, str(HERE / "mock_llm.py"), str(port), str(args.latency_ms)], stdout=subprocess.PIPE)
    server.stdout.readline()
    base_url = f"http://127.0.0.1:{port}/v1"
    trace_dir = tempfile.mkdtemp(prefix="kettle-compare-")
    agent = kettle_agent(base_url, tempfile.mkdtemp(prefix="kettle-compare-agent-"))
    results = {"kettle": [], "langgraph": []}
    baseline = []
    try:
        # One unmeasured run each: builds and caches Kettle's components, warms the OS caches.
        kettle_run(args.kettle, agent, trace_dir)
        langgraph_run(args.python, base_url)
        baseline_run(sys.executable, base_url)
        for i in range(args.runs):
            order = ["kettle", "langgraph", "baseline"]
            for name in order if i % 2 == 0 else reversed(order):
                if name == "kettle":
                    results[name].append(kettle_run(args.kettle, agent, trace_dir))
                elif name == "langgraph":
                    results[name].append(langgraph_run(args.python, base_url))
                else:
                    baseline.append(baseline_run(sys.executable, base_url))
    finally:
        server.terminate()

    states = {name: {json.dumps(r[3], sort_keys=True) for r in runs} for name, runs in results.items()}
    same_state = len(states["kettle"] | states["langgraph"]) == 1
    floor = statistics.median(baseline)
    rows = {}
    for name, runs in results.items():
        wall = summary([r[0] for r in runs])
        run = summary([r[1] for r in runs])
        rss = max(r[2] for r in runs)
        overhead = (run[0] - floor) / LLM_LAYERS
        rows[name] = (wall, run, rss, overhead)

    def fmt_row(name):
        (wall_med, wall_p95), (run_med, run_p95), rss, overhead = rows[name]
        return (
            f"| {name} | {wall_med * 1000:.1f} | {wall_p95 * 1000:.1f} | {run_med * 1000:.1f} | "
            f"{run_p95 * 1000:.1f} | {overhead * 1000:.2f} | {rss / 2**20:.1f} |"
        )

    ratio = lambda i: rows["kettle"][i][0] / rows["langgraph"][i][0]  # noqa: E731
    framework_versions = version([args.python, "-c", VERSIONS_SCRIPT])
    lines = [
        "## Kettle and LangGraph, side by side",
        "",
        f"Generated by `{args.command}` (which runs `bench/compare/compare.py`).",
        "",
        f"The agent: {SEQUENTIAL} sequential nodes, then a {BRANCHES}-branch fan-out, each node one LLM call to one",
        f"local OpenAI-compatible mock server answering in {args.latency_ms:g} ms, then a join. Kettle's nodes are",
        "Rust WebAssembly components (sandboxed, traced to a JSON-lines file); LangGraph's are Python functions",
        f"calling the `openai` client. {args.runs} runs each, alternating, each run a fresh process. The mock",
        "server is a threading Python server with a listen backlog of 1,024 (it is not the bottleneck: the",
        "baseline below reaches it with the same calls).",
        "",
        "- *process*: wall time of the whole process (start-up, loading, the run, exit);",
        "- *run*: the run alone (Kettle: its root span; LangGraph: `graph.invoke`);",
        f"- *baseline*: the same calls made by a bare HTTP client (`bare_client.py`: {SEQUENTIAL} in a row, then {BRANCHES}",
        f"  threads), median {floor * 1000:.1f} ms ({LLM_LAYERS} × {args.latency_ms:g} ms of latency on its critical path);",
        f"- *excess per layer*: (median run − baseline) / {LLM_LAYERS} layers of LLM calls on the critical path (goal ≤ 2 ms);",
        "- *peak RSS*: the largest resident set of any run's process.",
        "",
        "| framework | process median (ms) | process p95 (ms) | run median (ms) | run p95 (ms) | excess per layer (ms) | peak RSS (MiB) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        fmt_row("kettle"),
        fmt_row("langgraph"),
        "",
        f"Kettle / LangGraph: process {ratio(0):.2f}×, run {ratio(1):.2f}×, peak RSS {rows['kettle'][2] / rows['langgraph'][2]:.2f}×.",
        f"Same final state in every run of both: {'yes' if same_state else 'NO'}.",
        "",
        "Machine and versions:",
        "",
        *machine_lines(),
        f"- kettle: {version([args.kettle, '--version'])}",
        f"- Python {platform.python_version()}; {framework_versions}",
    ]
    write_section("compare", lines)
    print("\n".join(lines))
    if not same_state:
        sys.exit("the two frameworks did not produce the same final state")


if __name__ == "__main__":
    main()
