//! The hostile node's attacks on the trace: bursts of guest spans and LLM streams that try to
//! make the exporters drop spans, and attributes that try to forge or crowd out the host's own
//! on the node span.

use kettle_guest::bindings::kettle::node::types::NodeError;
use kettle_guest::llm::{self, ChatRequest, Request};
use kettle_guest::{log, trace};
use serde_json::{Value, json};

/// Runs trace mode `mode`, or `None` when `mode` is not one of them.
pub fn run(mode: &str, config: &Value) -> Option<Result<String, NodeError>> {
    let count =
        |key: &str, default: u64| config.get(key).and_then(Value::as_u64).unwrap_or(default);
    Some(match mode {
        "trace-leak-spans" => Ok(leak_spans(count("spans", 1000))),
        "trace-spans-and-calls" => Ok(spans_and_calls(count("spans", 10), count("calls", 10))),
        "trace-hold-streams" => Ok(hold_streams(count("streams", 1000))),
        "trace-forge" => Ok(forge(count("fillers", 200))),
        "trace-spin-in-span" => spin_in_span(),
        _ => return None,
    })
}

/// Opens `spans` spans, one inside the other, and leaves them all open: the host ends them
/// together when the node returns.
fn leak_spans(spans: u64) -> String {
    for i in 0..spans {
        let span = trace::span(&format!("leaked {i}"));
        span.leak();
    }
    json!({ "opened": spans }).to_string()
}

/// Opens a span and spins inside it until the host stops the node: the span is left for the
/// host to close, whether the node times out or its branch is cancelled.
fn spin_in_span() -> ! {
    let span = trace::span("spinning");
    span.leak();
    let mut i = 0u64;
    loop {
        i = std::hint::black_box(i.wrapping_add(1));
    }
}

/// `spans` guest spans, each ended at once, then `calls` LLM calls (a `chat` span each).
fn spans_and_calls(spans: u64, calls: u64) -> String {
    for i in 0..spans {
        trace::span(&format!("guest {i}")).end();
    }
    let answered = (0..calls)
        .filter(|_| llm::call(Request::user("one more")).is_ok())
        .count();
    json!({ "answered": answered }).to_string()
}

/// Opens `streams` LLM streams and holds them: their `chat` spans all end when the node's
/// store is dropped.
fn hold_streams(streams: u64) -> String {
    let mut held = Vec::new();
    for _ in 0..streams {
        if let Ok(stream) = llm::stream(ChatRequest::user("stream")) {
            held.push(stream);
        }
    }
    let opened = held.len();
    std::mem::forget(held);
    json!({ "opened": opened }).to_string()
}

/// Tries to overwrite the host's attributes on its node span and on its own span, then fills
/// both past the SDK's 128-attribute limit; leaks one span and logs past its log limit so the
/// host has attributes of its own to add afterwards.
fn forge(fillers: u64) -> String {
    for key in [
        "kettle.node.name",
        "kettle.run.id",
        "error.type",
        "gen_ai.agent.name",
    ] {
        trace::set_attribute(key, "forged");
    }
    let own = trace::span("own");
    own.set_attribute("kettle.span.origin", "host");
    own.set_attribute("kettle.run.id", "forged");
    for i in 0..fillers {
        trace::set_attribute(&format!("filler.{i}"), i as i64);
        own.set_attribute(&format!("filler.{i}"), i as i64);
    }
    own.leak();
    for i in 0..3 {
        log::info(&format!("line {i}"));
    }
    json!({ "forged": true }).to_string()
}
