"""Times TEA's in-process run (YAMLEngine, unsandboxed `exec`) of the same 2- and 202-node
inline-Python chains that Kettle's `inline_node` benchmark runs; prints best-of-5 means as JSON
({"2": seconds, "202": seconds}).

Run by bench/tea-inline/run.sh, which writes chain2.yaml and chain202.yaml beside it."""
import json
import os
import time
from the_edge_agent import YAMLEngine


def run(graph):
    final = None
    for event in graph.invoke({"n": 0}):
        final = event
    return final


HERE = os.environ.get("CHAIN_DIR", ".")
results = {}
for n in (2, 202):
    graph = YAMLEngine().load_from_file(os.path.join(HERE, f"chain{n}.yaml"))
    run(graph)
    reps = 200 if n == 2 else 20
    best = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps):
            run(graph)
        best.append((time.perf_counter() - t) / reps)
    results[str(n)] = min(best)
print(json.dumps(results))
