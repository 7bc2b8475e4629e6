"""Asking a person: the run stops (checkpointed) until `kettle resume RUN_ID --input
'{"answer": ...}'`; then the node runs again from its start and `interrupt` returns the
answer. LLM calls made before asking are answered from the checkpoint the second time."""

import json
from typing import Any

# Imported now, not at the call: a component has no files at run time, so a module not
# imported while componentize-py builds it is not in the component's snapshot.
try:
    from wit_world.imports import interrupt as _wit
except ImportError:  # outside a component (the SDK imported by tools)
    _wit = None


def interrupt(payload: Any) -> Any:
    """Asks a person `payload` (shown to them as JSON) and returns their answer. In a run with
    no answer yet, it does not return: the host stops the node here."""
    if _wit is None:
        raise RuntimeError("kettle.interrupt works only inside a Kettle node")
    answer = _wit.interrupt(json.dumps(payload))
    try:
        return json.loads(answer)
    except ValueError:
        return answer
