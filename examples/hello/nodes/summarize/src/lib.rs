//! Outlines `state.topic`, then summarizes the outline: two sequential LLM calls in one node,
//! the case whose second call lost its trace in TEA.

use kettle_guest::llm::{self, Request};
use kettle_guest::{Context, NodeError, Value, json, trace};

fn run(ctx: Context, state: Value) -> Result<Value, NodeError> {
    let topic = state
        .get("topic")
        .and_then(Value::as_str)
        .or_else(|| ctx.config.get("default_topic").and_then(Value::as_str))
        .ok_or_else(|| NodeError::invalid_input("give a topic: --input '{\"topic\": \"...\"}'"))?;
    trace::set_attribute("hello.topic", topic);

    let outline = llm::call(
        Request::user(format!("Write a three-point outline about {topic}."))
            .system("You are a concise writer."),
    )?;
    let summary = llm::call(Request::user(format!(
        "Summarize this outline in one sentence: {}",
        outline.content
    )))?;

    Ok(json!({
        "topic": topic,
        "outline": outline.content,
        "summary": summary.content,
    }))
}

kettle_guest::export_node!(run);
