"""Asking a person: the run stops (checkpointed) until `kettle resume RUN_ID --input
'{"answer": ...}'`; then the node runs again from its start and `interrupt` returns the
answer. LLM calls made before asking are answered from the checkpoint the second time."""

import json
from typing import Any


def interrupt(payload: Any) -> Any:
    """Asks a person `payload` (shown to them as JSON) and returns their answer. In a run with
    no answer yet, it does not return: the host stops the node here."""
    from wit_world.imports import interrupt as wit

    answer = wit.interrupt(json.dumps(payload))
    try:
        return json.loads(answer)
    except ValueError:
        return answer
