//! A node whose trace shape its config chooses, for the trace-integrity matrix:
//! `depth` nested guest spans (closed properly), `calls` LLM calls made inside the innermost
//! one, `failing_calls` calls the host refuses, `trap` to crash with those spans still open, `flood` spans opened and dropped one by
//! one, and `big_attribute` bytes written `attribute_repeats` times on the node span.

use kettle_guest::llm::{self, Request};
use kettle_guest::{Context, NodeError, Value, json, trace};

fn number(config: &Value, key: &str) -> u64 {
    config.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn run(ctx: Context, _state: Value) -> Result<Value, NodeError> {
    let config = &ctx.config;
    for _ in 0..number(config, "flood") {
        trace::span("flood").end();
    }
    let big = "x".repeat(number(config, "big_attribute") as usize);
    for i in 0..number(config, "attribute_repeats") {
        trace::set_attribute(&format!("test.big.{i}"), big.as_str());
    }

    let mut open = Vec::new();
    for level in 1..=number(config, "depth") {
        let span = trace::span(&format!("level {level}"));
        span.set_attribute("test.level", level as i64);
        open.push(span);
    }
    let mut answers = Vec::new();
    for i in 0..number(config, "calls") {
        let mut request = Request::user(format!("question {i} from {}", ctx.node_name))
            .temperature(0.5)
            .max_tokens(50);
        request.extra = Some(json!({ "top_p": 0.9 }));
        let answer = llm::call(request)?;
        answers.push(Value::String(answer.content));
    }
    let mut failures = 0;
    for _ in 0..number(config, "failing_calls") {
        // No messages: the host refuses the request, and the node carries on.
        if llm::call(Request::new(Vec::new())).is_err() {
            failures += 1;
        }
    }
    if config.get("trap").and_then(Value::as_bool) == Some(true) {
        // A guest crash (wasm trap) with every `level` span still open.
        panic!(
            "trap requested by the test, inside {} open spans",
            open.len()
        );
    }
    // Innermost first, as a well-behaved guest closes them.
    while let Some(span) = open.pop() {
        span.end();
    }
    Ok(json!({
        format!("{}_answers", ctx.node_name): answers,
        format!("{}_failures", ctx.node_name): failures,
    }))
}

kettle_guest::export_node!(run);
