//! Drafts with one LLM call, then asks a person through the `interrupt` import whether to
//! publish the draft, and returns both: the durable-runs tests resume it with an answer.

use kettle_guest::{Context, NodeError, Value, interrupt, json, llm};

fn run(_ctx: Context, state: Value) -> Result<Value, NodeError> {
    let topic = state["topic"].as_str().unwrap_or("tea");
    let draft = llm::call(llm::Request::user(format!("Draft about {topic}")))?;
    let answer = interrupt(&json!({"question": "Publish this draft?", "draft": draft.content}));
    Ok(json!({"draft": draft.content, "decision": answer}))
}

kettle_guest::export_node!(run);
