"""Annotating the node's span and opening child spans; the host decides every parent.

    with trace.span("draft") as span:
        span.set_attribute("draft.words", 120)
        answer = llm.call(...)   # a child of "draft"
"""

from typing import Any, Optional, Union

AttributeValue = Union[str, int, float, bool]


def _value(value: AttributeValue) -> Any:
    from wit_world.imports import trace as wit

    # bool first: it is an int in Python.
    if isinstance(value, bool):
        return wit.Value_Boolean(value)
    if isinstance(value, int):
        return wit.Value_Integer(value)
    if isinstance(value, float):
        return wit.Value_Float(value)
    return wit.Value_Text(str(value))


class Span:
    """A span this node opened. Ends when the `with` block ends, or on `end()`."""

    def __init__(self, name: str) -> None:
        from wit_world.imports import trace as wit

        self._span: Optional[Any] = wit.start_span(name)

    def set_attribute(self, key: str, value: AttributeValue) -> None:
        if self._span is not None:
            self._span.set_attribute(key, _value(value))

    def add_event(self, name: str) -> None:
        if self._span is not None:
            self._span.add_event(name, [])

    def set_error(self, message: str) -> None:
        """Marks the span as failed."""
        if self._span is not None:
            self._span.set_error(message)

    def end(self) -> None:
        if self._span is not None:
            span, self._span = self._span, None
            span.__exit__(None, None, None)

    def __enter__(self) -> "Span":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc is not None:
            self.set_error(f"{exc_type.__name__}: {exc}")
        self.end()


def span(name: str) -> Span:
    """Opens a child span of this node's innermost open span."""
    return Span(name)


def set_attribute(key: str, value: AttributeValue) -> None:
    """Sets an attribute on the node's own span."""
    from wit_world.imports import trace as wit

    wit.set_attribute(key, _value(value))


def add_event(name: str) -> None:
    """Records an event on the node's own span."""
    from wit_world.imports import trace as wit

    wit.add_event(name, [])
