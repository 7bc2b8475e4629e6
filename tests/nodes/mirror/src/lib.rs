//! The "mirror" logic, also written in Python and JavaScript (tests/polyglot-nodes/mirror-*):
//! an outline call inside a span, one review call per item each inside its own span, a log line.
//! The three must produce the same state and the same trace shape.

use kettle_guest::llm::{self, Request};
use kettle_guest::{Context, NodeError, Value, json, log, trace};

fn run(ctx: Context, state: Value) -> Result<Value, NodeError> {
    let topic = state
        .get("topic")
        .and_then(Value::as_str)
        .ok_or_else(|| NodeError::invalid_input("state.topic is missing"))?;
    let items: Vec<&str> = state
        .get("items")
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let style = ctx
        .config
        .get("style")
        .and_then(Value::as_str)
        .unwrap_or("plain");
    trace::set_attribute("mirror.topic", topic);

    let outline_span = trace::span("outline");
    outline_span.set_attribute("mirror.items", items.len() as i64);
    let outline =
        llm::call(Request::user(format!("Outline {topic} ({style})")).system("Be brief."))?;
    outline_span.end();

    let review_span = trace::span("review");
    let mut reviews = Vec::new();
    let mut tokens = outline.usage.output_tokens;
    for item in &items {
        let item_span = trace::span("item");
        item_span.set_attribute("mirror.item", *item);
        let review = llm::call(Request::user(format!("Review {item}")))?;
        tokens += review.usage.output_tokens;
        reviews.push(review.content);
        item_span.end();
    }
    review_span.end();
    log::info(&format!("reviewed {} items", items.len()));

    Ok(json!({
        "outline": outline.content,
        "reviews": reviews,
        "output_tokens": tokens,
        "node": ctx.node_name,
        "attempt": ctx.attempt,
    }))
}

kettle_guest::export_node!(run);
