"""Drafts with one LLM call, then asks a person whether to publish: the Python twin of
tests/nodes/ask-person, for the durable-runs interrupt tests."""

from kettle import interrupt, llm, node


@node
def run(ctx, state: dict) -> dict:
    draft = llm.call(f"Draft about {state.get('topic', 'tea')}").content
    answer = interrupt({"question": "Publish this draft?", "draft": draft})
    return {"draft": draft, "decision": answer}
