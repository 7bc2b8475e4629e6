"""A chain of N LangGraph nodes, each a Python function adding one to a counter: the LangGraph
side of engine_cost.py. Prints the final state as JSON. Usage: python3 langgraph_chain.py N"""

import json
import sys
from typing import TypedDict

from langgraph.graph import END, START, StateGraph


class State(TypedDict):
    n: int


def add_one(state: State) -> dict:
    return {"n": state["n"] + 1}


def main():
    nodes = int(sys.argv[1])
    graph = StateGraph(State)
    for i in range(nodes):
        graph.add_node(f"n{i}", add_one)
        graph.add_edge(START if i == 0 else f"n{i - 1}", f"n{i}")
    graph.add_edge(f"n{nodes - 1}", END)
    print(json.dumps(graph.compile().invoke({"n": 0}, {"recursion_limit": nodes + 10})))


if __name__ == "__main__":
    main()
