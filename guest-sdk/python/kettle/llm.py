"""LLM calls, performed by the host and traced by it.

    answer = llm.call("Summarize this", system="Be brief", max_tokens=60)
    answer.content, answer.usage.output_tokens
"""

import json
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int


@dataclass(frozen=True)
class Response:
    """The model's answer."""

    content: str
    model: str
    finish_reason: str
    usage: Usage


class LlmError(Exception):
    """An LLM call failed. `kind`: denied, invalid_request, rate_limited, timeout, provider.

    Left uncaught, it fails the node with `node-error.llm`.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind.replace('_', ' ')}: {message}")
        self.kind = kind
        self.message = message


Message = Union[Tuple[str, str], Dict[str, str]]
"""A message: `("user", "text")` or `{"role": "user", "content": "text"}`."""

_ERROR_KINDS = {
    "LlmError_Denied": "denied",
    "LlmError_InvalidRequest": "invalid_request",
    "LlmError_RateLimited": "rate_limited",
    "LlmError_Timeout": "timeout",
    "LlmError_Provider": "provider",
}


def call(
    prompt: Union[str, Sequence[Message]],
    *,
    system: Optional[str] = None,
    model: Optional[str] = None,
    temperature: Optional[float] = None,
    max_tokens: Optional[int] = None,
    stop: Sequence[str] = (),
    extra: Optional[Dict[str, Any]] = None,
) -> Response:
    """Performs one chat completion through the host.

    `prompt` is one user message, or a list of messages. Absent options take the agent's
    defaults. Raises `LlmError`.
    """
    from componentize_py_types import Err
    from wit_world.imports import llm as wit

    roles = {
        "system": wit.Role.SYSTEM,
        "user": wit.Role.USER,
        "assistant": wit.Role.ASSISTANT,
        "tool": wit.Role.TOOL,
    }
    messages: List[Any] = []
    if system is not None:
        messages.append(wit.Message(role=wit.Role.SYSTEM, content=system))
    if isinstance(prompt, str):
        messages.append(wit.Message(role=wit.Role.USER, content=prompt))
    else:
        for message in prompt:
            role, content = (
                (message["role"], message["content"]) if isinstance(message, dict) else message
            )
            if role not in roles:
                raise LlmError("invalid_request", f"unknown role {role!r}; use one of {sorted(roles)}")
            messages.append(wit.Message(role=roles[role], content=content))
    request = wit.Request(
        messages=messages,
        model=model,
        temperature=temperature,
        max_tokens=max_tokens,
        stop=list(stop),
        extra=json.dumps(extra) if extra is not None else None,
    )
    try:
        response = wit.call(request)
    except Err as error:
        kind = _ERROR_KINDS.get(type(error.value).__name__, "provider")
        raise LlmError(kind, error.value.value) from None
    return Response(
        content=response.content,
        model=response.model,
        finish_reason=response.finish_reason,
        usage=Usage(
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
        ),
    )


def ask(prompt: str) -> str:
    """Asks one question and returns the answer's text."""
    return call(prompt).content
