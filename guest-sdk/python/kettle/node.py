"""The bridge between the WIT `run` export and a plain Python function."""

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional

from ._traceback import describe
from .errors import NodeError
from .llm import LlmError

NodeFunction = Callable[["Context", Dict[str, Any]], Dict[str, Any]]

_registered: Optional[NodeFunction] = None


@dataclass(frozen=True)
class Context:
    """What the host tells the node about this execution."""

    run_id: str
    """Identifier of the run."""
    node_name: str
    """The node's name in the agent's YAML."""
    attempt: int
    """1 for the first attempt, incremented on every retry."""
    config: Dict[str, Any]
    """The node's `config:` block from the YAML (`{}` when absent)."""


def node(function: NodeFunction) -> NodeFunction:
    """Makes `function(ctx, state) -> dict` the node's `run`; one per component."""
    global _registered
    if _registered is not None and _registered is not function:
        raise RuntimeError(
            f"two @node functions: {_registered.__name__} and {function.__name__}; a component has one"
        )
    _registered = function
    return function


def registered() -> Optional[NodeFunction]:
    return _registered


def run_registered(wit_ctx: Any, state: str) -> str:
    """Decodes the host's arguments, calls the node and encodes its answer.

    Raises the WIT error (`Err(node-error)`) on failure: exceptions become `failed`,
    `InvalidInput` becomes `invalid-input`, an uncaught `llm.LlmError` becomes `llm`.
    """
    from componentize_py_types import Err
    from wit_world.imports import types as wit

    def fail(kind: str, message: str) -> Err:
        case = {
            "invalid_input": wit.NodeError_InvalidInput,
            "llm": wit.NodeError_Llm,
        }.get(kind, wit.NodeError_Failed)
        return Err(case(message))

    function = _registered
    if function is None:
        raise fail("failed", "no @node function: decorate the node's run function with @kettle.node")
    try:
        config = json.loads(wit_ctx.config) if wit_ctx.config.strip() else {}
    except ValueError as error:
        raise fail("invalid_input", f"node config is not JSON: {error}")
    try:
        decoded = json.loads(state)
    except ValueError as error:
        raise fail("invalid_input", f"state is not JSON: {error}")
    context = Context(
        run_id=wit_ctx.run_id,
        node_name=wit_ctx.node_name,
        attempt=wit_ctx.attempt,
        config=config,
    )
    try:
        update = function(context, decoded)
    except NodeError as error:
        raise fail(error.kind, error.message)
    except LlmError as error:
        raise fail("llm", str(error))
    except Exception as error:  # noqa: BLE001 - every exception is the node's failure
        raise fail("failed", describe(error))
    if update is None:
        update = {}
    if not isinstance(update, dict):
        raise fail("failed", f"the node returned {type(update).__name__}, not a dict (the state update)")
    try:
        return json.dumps(update, separators=(",", ":"))
    except (TypeError, ValueError) as error:
        raise fail("failed", f"cannot encode the state update: {error}")
