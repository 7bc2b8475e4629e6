"""The peer a user would pick for serving agents: FastAPI + LangGraph, running the same two agents
as bench/serve's Kettle server — `quick` (one node doubling n) and `hello` (an outline and a
summary, then a polish, each "LLM call" answered offline like Kettle's mock provider: an echo of
the prompt). Usage: python3 fastapi_langgraph.py PORT"""

import sys
from typing import TypedDict

import uvicorn
from fastapi import FastAPI
from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel


def mock_llm(prompt: str) -> str:
    return f"[mock] {prompt}"


class Quick(TypedDict, total=False):
    n: int
    doubled: int


class Hello(TypedDict, total=False):
    topic: str
    outline: str
    summary: str
    polished: str


def quick_graph():
    graph = StateGraph(Quick)
    graph.add_node("double", lambda s: {"doubled": s["n"] * 2})
    graph.add_edge(START, "double")
    graph.add_edge("double", END)
    return graph.compile()


def hello_graph():
    def summarize(state):
        topic = state.get("topic") or "WebAssembly sandboxes"
        outline = mock_llm(f"Write a three-point outline about {topic}.")
        return {"topic": topic, "outline": outline, "summary": mock_llm(f"Summarize this outline in one sentence: {outline}")}

    def polish(state):
        return {"polished": mock_llm(f"Polish this sentence: {state['summary']}")}

    graph = StateGraph(Hello)
    graph.add_node("summarize", summarize)
    graph.add_node("polish", polish)
    graph.add_edge(START, "summarize")
    graph.add_edge("summarize", "polish")
    graph.add_edge("polish", END)
    return graph.compile()


GRAPHS = {"quick": quick_graph(), "hello": hello_graph()}
app = FastAPI()


class RunBody(BaseModel):
    input: dict = {}


@app.post("/v1/agents/{name}/runs")
async def run(name: str, body: RunBody):
    state = await GRAPHS[name].ainvoke(body.input)
    return {"status": "ok", "state": state}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
