"""The comparison agent, written the idiomatic LangGraph way with the `openai` client:
5 sequential nodes, then 16 parallel branches, each node one LLM call, then a join.

Prints the final state as JSON on stdout and the invoke time on stderr as `run_seconds=…`.
Usage: python3 langgraph_agent.py BASE_URL
"""

import json
import operator
import sys
import time
from typing import Annotated, TypedDict

from langgraph.graph import END, START, StateGraph
from openai import OpenAI

BRANCHES = 16
STEPS = 5


class State(TypedDict, total=False):
    topic: str
    s1: str
    s2: str
    s3: str
    s4: str
    s5: str
    branch_results: Annotated[list, operator.add]
    branches: list


def main():
    client = OpenAI(base_url=sys.argv[1], api_key="unused", max_retries=0)

    def ask(prompt: str) -> str:
        answer = client.chat.completions.create(model="bench", messages=[{"role": "user", "content": prompt}])
        return answer.choices[0].message.content

    def step(n: int):
        previous = "topic" if n == 1 else f"s{n - 1}"

        def node(state: State) -> dict:
            return {f"s{n}": ask(f"step {n}: {state[previous]}")}

        return node

    def branch(i: int):
        def node(state: State) -> dict:
            return {"branch_results": [(i, ask(f"branch {i}: {state['s5']}"))]}

        return node

    def join(state: State) -> dict:
        return {"branches": [content for _, content in sorted(state["branch_results"])]}

    graph = StateGraph(State)
    for n in range(1, STEPS + 1):
        graph.add_node(f"s{n}", step(n))
    for i in range(BRANCHES):
        graph.add_node(f"b{i}", branch(i))
    graph.add_node("join", join)
    graph.add_edge(START, "s1")
    for n in range(1, STEPS):
        graph.add_edge(f"s{n}", f"s{n + 1}")
    for i in range(BRANCHES):
        graph.add_edge("s5", f"b{i}")
    graph.add_edge([f"b{i}" for i in range(BRANCHES)], "join")
    graph.add_edge("join", END)
    app = graph.compile()

    started = time.perf_counter()
    final = app.invoke({"topic": "tea"}, {"max_concurrency": BRANCHES})
    elapsed = time.perf_counter() - started
    final.pop("branch_results", None)
    print(json.dumps(final, sort_keys=True))
    print(f"run_seconds={elapsed:.6f}", file=sys.stderr)


if __name__ == "__main__":
    main()
