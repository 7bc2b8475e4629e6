//! What providers really do wrong, against a real local server: rate limits with
//! `Retry-After`, server errors, hangs, streams cut off, unreadable and empty answers. Each
//! case checks the number of requests made (the retries), the error variant the guest got,
//! and the `chat` span: one event per attempt, the outcome as its status.

use crate::support::llm_server::{LlmServer, Reply};
use crate::support::provider_shapes::{openai_completion, openai_stream};
use crate::support::{Scratch, assert_whole_trace, final_state, repo, span};
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};

struct Outcome {
    /// What the guest put in the state.
    probe: Value,
    requests: usize,
    call: SpanRecord,
}

fn answer(content: &str) -> Reply {
    Reply::json(&openai_completion(
        "chatcmpl-ok",
        "gpt-4o-mini-2024-07-18",
        Some(content),
        &[],
        "stop",
        (5, 2),
    ))
}

/// Runs the probe node (`mode`) once against a server that first sends `replies`.
fn run_probe(mode: &str, replies: Vec<Reply>, timeout_ms: u64) -> Outcome {
    let server = LlmServer::start(|_| Reply::status(500, "the script ran out"));
    server.then(replies);
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "faults.yaml",
        &format!(
            r#"name: faults
settings:
  llm:
    provider: openai
    model: gpt-4o-mini
    base_url: {base}
    max_retries: 2
    backoff_ms: 10
    timeout_ms: {timeout_ms}
nodes:
  - name: probe
    component: {probe}
    config: {{mode: {mode}}}
"#,
            base = server.url("/v1"),
            probe = repo().join("tests/nodes/llm-probe").display()
        ),
    );
    let state = final_state(&scratch.run(&agent, &["--input", r#"{"prompt": "hello"}"#]));
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    Outcome {
        probe: state["probe"].clone(),
        requests: server.requests().len(),
        call: span(&spans, "chat gpt-4o-mini").clone(),
    }
}

/// (status code, error.type, retry_in_ms) of each attempt event.
fn attempts(call: &SpanRecord) -> Vec<(Option<i64>, Option<String>, Option<i64>)> {
    call.events
        .iter()
        .filter(|e| e.name == "kettle.llm.attempt")
        .enumerate()
        .map(|(i, e)| {
            assert_eq!(e.attributes["kettle.llm.attempt"], json!(i + 1));
            (
                e.attributes
                    .get("http.response.status_code")
                    .and_then(Value::as_i64),
                e.attributes
                    .get("error.type")
                    .and_then(Value::as_str)
                    .map(str::to_string),
                e.attributes
                    .get("kettle.llm.retry_in_ms")
                    .and_then(Value::as_i64),
            )
        })
        .collect()
}

fn assert_failed(call: &SpanRecord, kind: &str) {
    assert_eq!(call.status.code, "error", "{call:?}");
    assert_eq!(call.attributes["error.type"], kind);
}

fn some(s: &str) -> Option<String> {
    Some(s.to_string())
}

#[test]
fn rate_limit_with_retry_after_is_honoured_then_succeeds() {
    let out = run_probe(
        "call",
        vec![
            Reply::status(
                429,
                r#"{"error":{"message":"Rate limit reached","type":"requests"}}"#,
            )
            .with_header("retry-after", "1"),
            answer("after the wait"),
        ],
        5_000,
    );
    assert_eq!(out.requests, 2);
    assert_eq!(
        out.probe,
        json!({"answer": "after the wait", "finish_reason": "stop"})
    );
    assert_eq!(
        attempts(&out.call),
        [
            (Some(429), some("rate_limited"), Some(1000)),
            (Some(200), None, None)
        ]
    );
    assert_eq!(out.call.status.code, "unset");
    assert_eq!(out.call.attribute_i64("kettle.llm.attempts"), Some(2));
}

#[test]
fn rate_limit_that_persists_gives_up_after_max_retries() {
    let limited = || Reply::status(429, r#"{"error":{"message":"Rate limit reached"}}"#);
    let out = run_probe("call", vec![limited(), limited(), limited()], 5_000);
    assert_eq!(out.requests, 3, "the first attempt and max_retries: 2");
    assert_eq!(out.probe["error_kind"], "rate_limited");
    assert_eq!(
        out.probe["error"],
        "rate limited: HTTP 429: Rate limit reached"
    );
    let seen = attempts(&out.call);
    assert_eq!(seen.len(), 3);
    for (i, (status, kind, retry_in)) in seen.iter().enumerate() {
        assert_eq!(
            (*status, kind.as_deref()),
            (Some(429), Some("rate_limited"))
        );
        // Backoff 10 ms doubled per retry, half of it jitter; none after the last attempt.
        match i {
            0 => assert!(matches!(retry_in, Some(5..=10)), "{retry_in:?}"),
            1 => assert!(matches!(retry_in, Some(10..=20)), "{retry_in:?}"),
            _ => assert_eq!(*retry_in, None),
        }
    }
    assert_failed(&out.call, "rate_limited");
}

#[test]
fn server_error_then_success() {
    let out = run_probe(
        "call",
        vec![
            Reply::status(500, "internal error"),
            answer("second time lucky"),
        ],
        5_000,
    );
    assert_eq!(out.requests, 2);
    assert_eq!(out.probe["answer"], "second time lucky");
    let seen = attempts(&out.call);
    assert_eq!(seen[0].0, Some(500));
    assert_eq!(seen[0].1.as_deref(), Some("provider_error"));
    assert_eq!(seen[1], (Some(200), None, None));
    assert_eq!(out.call.status.code, "unset");
}

#[test]
fn a_hang_past_the_timeout_is_retried_then_times_out() {
    let out = run_probe("call", vec![Reply::Hang, Reply::Hang, Reply::Hang], 300);
    assert_eq!(out.requests, 3);
    assert_eq!(out.probe["error_kind"], "timeout");
    assert!(
        out.probe["error"].as_str().unwrap_or("").contains("300 ms"),
        "{}",
        out.probe
    );
    let seen = attempts(&out.call);
    assert_eq!(seen.len(), 3);
    assert!(
        seen.iter()
            .all(|(status, kind, _)| status.is_none() && kind.as_deref() == Some("timeout"))
    );
    assert_failed(&out.call, "timeout");
}

#[test]
fn a_connection_reset_mid_stream_ends_the_stream_without_retry() {
    let Reply::Stream { pieces, .. } = openai_stream(
        "chatcmpl-s",
        "gpt-4o-mini",
        &["Hel", "lo", " world"],
        (1, 3),
    ) else {
        panic!("a stream");
    };
    // The role chunk and two deltas, then the connection is cut.
    let cut = Reply::Stream {
        content_type: "text/event-stream",
        pieces: pieces[..3].to_vec(),
        break_off: false,
    }
    .broken_off();
    let out = run_probe("stream", vec![cut], 5_000);
    assert_eq!(out.requests, 1, "text was handed out: no retry");
    assert_eq!(out.probe["seen"], json!(["Hel", "lo"]));
    assert_eq!(out.probe["error_kind"], "provider");
    assert!(
        out.probe["error"]
            .as_str()
            .unwrap_or("")
            .contains("the stream broke off"),
        "{}",
        out.probe
    );
    assert_eq!(attempts(&out.call), [(Some(200), None, None)]);
    assert!(
        out.call.attributes["gen_ai.response.time_to_first_chunk"]
            .as_f64()
            .is_some()
    );
    assert_failed(&out.call, "provider_error");
}

#[test]
fn malformed_json_is_a_provider_error_without_retry() {
    let out = run_probe(
        "call",
        vec![Reply::status(
            200,
            r#"{"id": "chatcmpl-x", "choices": [{"index": 0, "mess"#,
        )],
        5_000,
    );
    assert_eq!(out.requests, 1);
    assert_eq!(out.probe["error_kind"], "provider");
    assert!(
        out.probe["error"]
            .as_str()
            .unwrap_or("")
            .contains("not a chat completion"),
        "{}",
        out.probe
    );
    assert_failed(&out.call, "provider_error");
}

#[test]
fn an_empty_choices_list_is_a_provider_error() {
    let out = run_probe(
        "call",
        vec![Reply::json(&json!({
            "id": "chatcmpl-empty", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
            "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3}
        }))],
        5_000,
    );
    assert_eq!(out.requests, 1);
    assert_eq!(out.probe["error_kind"], "provider");
    assert_eq!(
        out.probe["error"],
        "provider error: the provider answered with no choices"
    );
    assert_failed(&out.call, "provider_error");
}

#[test]
fn a_refused_key_is_denied_at_once() {
    let out = run_probe(
        "call",
        vec![Reply::status(
            401,
            r#"{"error":{"message":"Incorrect API key provided"}}"#,
        )],
        5_000,
    );
    assert_eq!(out.requests, 1);
    assert_eq!(out.probe["error_kind"], "denied");
    assert_failed(&out.call, "denied");
}

#[test]
fn a_stream_dropped_before_its_end_ends_its_span_as_cancelled() {
    let out = run_probe(
        "stream_first",
        vec![openai_stream(
            "chatcmpl-d",
            "gpt-4o-mini",
            &["one", " two", " three"],
            (1, 3),
        )],
        5_000,
    );
    assert_eq!(out.requests, 1);
    assert_eq!(out.probe["first"], r#"Ok(Ok(Some(Delta("one"))))"#);
    assert_eq!(out.call.status.code, "error");
    assert_eq!(out.call.attributes["kettle.cancelled"], true);
    assert!(
        out.call.attributes["gen_ai.response.time_to_first_chunk"]
            .as_f64()
            .is_some()
    );
}
