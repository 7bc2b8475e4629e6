"""Kettle's Python guest SDK: write a node as a plain function.

    from kettle import node, llm, trace

    @node
    def run(ctx, state: dict) -> dict:
        with trace.span("draft"):
            answer = llm.call(f"Write about {state['topic']}")
        return {"draft": answer.content}

`kettle build` (or `kettle run`) turns the folder into a WebAssembly component with
componentize-py; the `wit_world` bindings it imports are generated from Kettle's WIT then.
"""

from . import llm, log, trace
from ._interrupt import interrupt
from .errors import Failed, InvalidInput, NodeError
from .node import Context, node

__all__ = [
    "node",
    "Context",
    "llm",
    "trace",
    "log",
    "interrupt",
    "NodeError",
    "InvalidInput",
    "Failed",
]
