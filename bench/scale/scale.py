"""Kettle workers on NATS JetStream against `kettle serve` alone, on one agent (a fan-out of
two branches making three LLM calls, answered by the in-process mock provider, so that what is
measured is Kettle, the queue and the checkpoints, not a model): runs per second, and the CPU
each run costs (the workers' or the server's, and nats-server's). Writes the "scale" section of
bench/RESULTS.md. Started by run.sh.

Usage: python3 scale.py --kettle PATH [--runs N] [--concurrency N]"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from results import machine_lines, version, write_section  # noqa: E402

AGENT = """name: fleet
settings:
  llm: {provider: mock}
nodes:
  - name: split
    run: {type: expression, value: "'go'", output_key: phase}
  - name: left
    steps:
      - name: first
        uses: llm.call
        with: {prompt: "L1 {{ state.doc }}"}
        output: l1
      - name: second
        uses: llm.call
        with: {prompt: "L2 {{ state.l1.content }}"}
        output: l2
  - name: right
    steps:
      - name: only
        uses: llm.call
        with: {prompt: "R1 {{ state.doc }}"}
        output: r1
  - name: join
    fan_in: true
    run: {type: expression, value: "parallel_results | length", output_key: joined}
edges:
  - {from: __start__, to: split}
  - {from: split, to: left, type: parallel, fan_in: join}
  - {from: split, to: right, type: parallel, fan_in: join}
  - {from: left, to: join}
  - {from: right, to: join}
  - {from: join, to: __end__}
"""
WORKERS = (1, 2, 4)
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def nats_server(tmp):
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    port = free_port()
    store = tempfile.mkdtemp(dir=tmp)
    process = subprocess.Popen([binary, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", store],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
            return process, f"nats://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    sys.exit("nats-server did not listen")


def start_worker(kettle, url, agent, concurrency, tmp, env):
    log = open(Path(tmp) / f"worker-{time.monotonic_ns()}.log", "w+")
    process = subprocess.Popen([kettle, "worker", "--nats", url, str(agent), "--concurrency", str(concurrency),
                                "--trace-dir", str(Path(tmp) / "traces")], stderr=log, stdout=subprocess.DEVNULL, env=env)
    for _ in range(600):
        log.seek(0)
        if "ready" in log.read():
            return process
        if process.poll() is not None:
            log.seek(0)
            sys.exit(f"the worker exited:\n{log.read()}")
        time.sleep(0.1)
    sys.exit("the worker did not get ready")


def submit_all(kettle, url, inputs, prefix, env):
    out = subprocess.run([kettle, "submit", "--nats", url, "fleet", "--inputs", str(inputs), "--run-id", prefix,
                          "--wait", "--timeout", "1200"], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit(f"kettle submit failed: {out.stderr}")
    results = [json.loads(line) for line in out.stdout.splitlines()]
    bad = [r for r in results if r["status"] != "completed"]
    if bad:
        sys.exit(f"runs did not complete: {bad[:3]}")
    return len(results)


def workers_case(kettle, agent, runs, concurrency, count, tmp, env):
    nats, url = nats_server(tmp)
    workers = [start_worker(kettle, url, agent, concurrency, tmp, env) for _ in range(count)]
    inputs = Path(tmp) / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"doc": f"d{i}"}) + "\n" for i in range(runs)))
    warm = Path(tmp) / "warm.jsonl"
    warm.write_text("".join(json.dumps({"doc": f"w{i}"}) + "\n" for i in range(20)))
    submit_all(kettle, url, warm, f"warm{count}", env)
    cpu0 = sum(cpu_seconds(w.pid) for w in workers), cpu_seconds(nats.pid)
    start = time.monotonic()
    done = submit_all(kettle, url, inputs, f"bench{count}", env)
    elapsed = time.monotonic() - start
    cpu1 = sum(cpu_seconds(w.pid) for w in workers), cpu_seconds(nats.pid)
    for process in [*workers, nats]:
        process.terminate()
    for process in [*workers, nats]:
        process.wait()
    return {"rate": done / elapsed, "kettle_cpu_ms": (cpu1[0] - cpu0[0]) * 1000 / done,
            "nats_cpu_ms": (cpu1[1] - cpu0[1]) * 1000 / done}


def serve_case(kettle, agent, runs, concurrency, tmp, env, store):
    port = free_port()
    command = [kettle, "serve", str(agent), "--listen", f"127.0.0.1:{port}", "--max-concurrent-runs", "1000",
               "--trace-dir", str(Path(tmp) / "traces")]
    if store:
        command += ["--store", str(Path(tempfile.mkdtemp(dir=tmp)) / "state.db")]
    server = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL, env=env)
    url = f"http://127.0.0.1:{port}/v1/agents/fleet/runs"

    def post(i):
        body = json.dumps({"input": {"doc": f"d{i}"}}).encode()
        request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as answer:
            return json.loads(answer.read())["status"]

    for _ in range(600):
        try:
            post(-1)
            break
        except Exception:  # noqa: BLE001 (not up yet)
            time.sleep(0.1)
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(post, range(20)))
        cpu0 = cpu_seconds(server.pid)
        start = time.monotonic()
        statuses = list(pool.map(post, range(runs)))
        elapsed = time.monotonic() - start
        cpu1 = cpu_seconds(server.pid)
    server.terminate()
    server.wait()
    if any(s != "ok" for s in statuses):
        sys.exit(f"serve runs failed: {set(statuses)}")
    return {"rate": runs / elapsed, "kettle_cpu_ms": (cpu1 - cpu0) * 1000 / runs, "nats_cpu_ms": 0.0}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kettle", required=True)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--command", default="bench/scale/run.sh")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "OPIK_", "LANGFUSE_"))}
    with tempfile.TemporaryDirectory() as tmp:
        agent = Path(tmp) / "fleet.yaml"
        agent.write_text(AGENT)
        env["KETTLE_CACHE_DIR"] = str(Path(tmp) / "cache")
        rows = [("`kettle serve` (in memory)", serve_case(args.kettle, agent, args.runs, args.concurrency, tmp, env, False)),
                ("`kettle serve --store` (SQLite checkpoints)", serve_case(args.kettle, agent, args.runs, args.concurrency, tmp, env, True))]
        for count in WORKERS:
            label = f"{count} `kettle worker`{'s' if count > 1 else ''} (JetStream queue, KV checkpoints)"
            rows.append((label, workers_case(args.kettle, agent, args.runs, args.concurrency, count, tmp, env)))
    lines = [
        "## Scaling out: workers on NATS JetStream",
        "",
        f"Made by `{args.command}`: {args.runs} runs of a fan-out agent (two branches, three LLM calls",
        "answered by the in-process mock provider), each worker or the server running",
        f"{args.concurrency} runs at once; every run checkpointed after each node. CPU per run is user +",
        "system time of Kettle's processes, and of nats-server, divided by the runs.",
        "",
        *machine_lines(),
        f"- {version([args.kettle, '--version'])}; {version([shutil.which('nats-server') or '/usr/sbin/nats-server', '--version'])}",
        "",
        "| setup | runs/s | Kettle CPU per run | nats-server CPU per run |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, row in rows:
        lines.append(f"| {label} | {row['rate']:.0f} | {row['kettle_cpu_ms']:.2f} ms | {row['nats_cpu_ms']:.2f} ms |")
    write_section("scale", lines)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
