"""The "mirror" logic in Python; see tests/nodes/mirror/src/lib.rs for the Rust original."""

from kettle import InvalidInput, llm, log, node, trace


@node
def run(ctx, state: dict) -> dict:
    topic = state.get("topic")
    if not isinstance(topic, str):
        raise InvalidInput("state.topic is missing")
    items = [item for item in state.get("items", []) if isinstance(item, str)]
    style = ctx.config.get("style", "plain")
    trace.set_attribute("mirror.topic", topic)

    with trace.span("outline") as span:
        span.set_attribute("mirror.items", len(items))
        outline = llm.call(f"Outline {topic} ({style})", system="Be brief.")

    reviews = []
    tokens = outline.usage.output_tokens
    with trace.span("review"):
        for item in items:
            with trace.span("item") as span:
                span.set_attribute("mirror.item", item)
                review = llm.call(f"Review {item}")
                tokens += review.usage.output_tokens
                reviews.append(review.content)
    log.info(f"reviewed {len(items)} items")

    return {
        "outline": outline.content,
        "reviews": reviews,
        "output_tokens": tokens,
        "node": ctx.node_name,
        "attempt": ctx.attempt,
    }
