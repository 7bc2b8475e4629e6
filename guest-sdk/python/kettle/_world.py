"""The component's export: componentize-py instantiates `WitWorld` and calls its `run`."""

from .node import run_registered


class WitWorld:
    def run(self, ctx, state: str) -> str:
        return run_registered(ctx, state)
