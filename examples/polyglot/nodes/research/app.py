"""Gathers facts about `state.topic`: one LLM call inside a `gather` span."""

from kettle import InvalidInput, llm, node, trace


@node
def run(ctx, state: dict) -> dict:
    topic = state.get("topic")
    if not topic:
        raise InvalidInput("give a topic: --input '{\"topic\": \"...\"}'")
    count = int(ctx.config.get("facts", 3))
    with trace.span("gather") as span:
        span.set_attribute("research.facts", count)
        answer = llm.call(
            f"List {count} surprising facts about {topic}.",
            system="You are a careful researcher.",
            max_tokens=200,
        )
    return {"facts": answer.content}
