"""Returns its input state under `echo`: the Python twin of tests/nodes/echo, for overhead
measurements."""

from kettle import node


@node
def run(ctx, state: dict) -> dict:
    return {"echo": state}
