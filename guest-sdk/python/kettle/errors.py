"""Exceptions a node raises to give up; each maps onto a case of the WIT `node-error`."""


class NodeError(Exception):
    """Any failure of the node (`node-error.failed`)."""

    kind = "failed"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(NodeError):
    """The state or config handed to the node is not what it needs (`node-error.invalid-input`)."""

    kind = "invalid_input"


class Failed(NodeError):
    """Any other failure (`node-error.failed`)."""

    kind = "failed"
