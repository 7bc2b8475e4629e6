//! Turns the research node's facts into an outline: one LLM call inside a `structure` span.

use kettle_guest::llm::{self, Request};
use kettle_guest::{Context, NodeError, Value, json, trace};

fn run(_ctx: Context, state: Value) -> Result<Value, NodeError> {
    let facts = state
        .get("facts")
        .and_then(Value::as_str)
        .ok_or_else(|| NodeError::invalid_input("state.facts is missing: run `research` first"))?;
    let span = trace::span("structure");
    let outline = llm::call(
        Request::user(format!(
            "Turn these facts into a three-point outline: {facts}"
        ))
        .max_tokens(200),
    )?;
    span.set_attribute("outline.chars", outline.content.len() as i64);
    span.end();
    Ok(json!({ "outline": outline.content }))
}

kettle_guest::export_node!(run);
