//! `kettle run --record` against a real local server, then `--replay` with the server stopped:
//! the same final state and the same span tree, no key in the recording, and a clear failure
//! for a call the recording does not have.

use crate::support::llm_server::{LlmServer, Reply};
use crate::support::provider_shapes::{openai_completion, openai_stream};
use crate::support::{Scratch, assert_whole_trace, final_state, repo, stderr};
use kettle::telemetry::SpanRecord;
use serde_json::json;

const KEY: &str = "sk-record-0123456789";

/// The tree as nested (name, children) in start order: its shape, without ids or times.
fn shape(spans: &[SpanRecord]) -> serde_json::Value {
    fn node(spans: &[SpanRecord], span: &SpanRecord) -> serde_json::Value {
        let mut kids: Vec<&SpanRecord> = spans
            .iter()
            .filter(|s| s.parent_span_id.as_deref() == Some(span.span_id.as_str()))
            .collect();
        kids.sort_by_key(|s| s.start_time_unix_nano);
        json!({"name": span.name, "kind": span.kind, "status": span.status.code,
               "children": kids.into_iter().map(|k| node(spans, k)).collect::<Vec<_>>()})
    }
    node(spans, assert_whole_trace(spans))
}

fn run(
    scratch: &Scratch,
    agent: &std::path::Path,
    input: &str,
    tape: (&str, &std::path::Path),
) -> std::process::Output {
    scratch
        .run_command(agent)
        .env("KETTLE_TEST_KEY", KEY)
        .args(["--input", input, tape.0])
        .arg(tape.1)
        .output()
        .expect("kettle runs")
}

#[test]
fn a_recorded_run_replays_identically_with_the_server_stopped() {
    let mut server = LlmServer::start(|_| Reply::status(500, "the script ran out"));
    server.then([
        Reply::json(&openai_completion(
            "chatcmpl-1",
            "gpt-4o-mini-2024-07-18",
            None,
            &[("call_1", "weather", "{\"city\":\"Lima\"}")],
            "tool_calls",
            (40, 10),
        )),
        Reply::json(&openai_completion(
            "chatcmpl-2",
            "gpt-4o-mini-2024-07-18",
            Some("Rain in Lima."),
            &[],
            "stop",
            (60, 4),
        )),
        openai_stream(
            "chatcmpl-3",
            "gpt-4o-mini-2024-07-18",
            &["Lima", " is", " wet"],
            (8, 3),
        ),
        // The first attempt of the last call fails and is retried: replay needs no retry.
        Reply::status(503, "busy"),
        Reply::json(&openai_completion(
            "chatcmpl-4",
            "gpt-4o-mini-2024-07-18",
            Some("Lima, wet."),
            &[],
            "stop",
            (12, 3),
        )),
    ]);
    let recording = Scratch::new();
    let agent = recording.agent(
        "agent.yaml",
        &format!(
            r#"name: record-me
settings:
  llm:
    provider: openai
    model: gpt-4o-mini
    base_url: {base}
    api_key_env: KETTLE_TEST_KEY
    backoff_ms: 10
nodes:
  - name: ask
    component: {probe}
    config: {{mode: tools, key: tools}}
  - name: narrate
    uses: llm.stream
    with: {{prompt: "Narrate: {{{{ state.tools.answer }}}}"}}
    output: narration
  - name: shorten
    uses: llm.call
    with: {{prompt: "Shorten: {{{{ state.narration.content }}}}", max_tokens: 5}}
    output: short
"#,
            base = server.url("/v1"),
            probe = repo().join("tests/nodes/llm-probe").display()
        ),
    );
    let tape = recording.path().join("calls.jsonl");
    let input = r#"{"prompt": "Weather in Lima?"}"#;
    let recorded = final_state(&run(&recording, &agent, input, ("--record", &tape)));
    assert_eq!(recorded["short"]["content"], "Lima, wet.");
    assert_eq!(recorded["narration"]["content"], "Lima is wet");
    assert_eq!(server.requests().len(), 5);
    server.stop();

    let text = std::fs::read_to_string(&tape).expect("the recording");
    assert_eq!(text.lines().count(), 4, "one line per call:\n{text}");
    assert!(!text.contains(KEY), "the key leaked into the recording");
    assert!(text.contains(r#""authorization":"[REDACTED]""#), "{text}");
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().unwrap_or("")).expect("JSON");
    assert_eq!(
        first["http"]["url"],
        format!("http://{}/v1/chat/completions", server.addr)
    );
    assert_eq!(first["response"]["tool_calls"][0]["name"], "weather");

    let replaying = Scratch::new();
    let replayed = final_state(&run(&replaying, &agent, input, ("--replay", &tape)));
    assert_eq!(replayed, recorded);
    let (before, after) = (recording.only_trace(), replaying.only_trace());
    assert_eq!(shape(&after), shape(&before));
    let chat: Vec<&SpanRecord> = after
        .iter()
        .filter(|s| s.name.starts_with("chat "))
        .collect();
    assert_eq!(chat.len(), 4);
    assert!(
        chat.iter()
            .all(|s| s.attributes["kettle.llm.replayed"] == true)
    );

    // Another input asks for a call the recording does not have: the run fails and says so.
    let output = run(
        &replaying,
        &agent,
        r#"{"prompt": "Weather in Quito?"}"#,
        ("--replay", &tape),
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("not recorded") && err.contains("record it again with --record"),
        "{err}"
    );
}

#[test]
fn an_unreadable_recording_is_bad_input() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        "name: x\nnodes:\n  - name: a\n    uses: llm.call\n    with: {prompt: hi}\n",
    );
    let tape = scratch.path().join("tape.jsonl");
    std::fs::write(&tape, "{\"not\": \"a call\"}\n").expect("write");
    let output = run(&scratch, &agent, "{}", ("--replay", &tape));
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("tape.jsonl:1: not a recorded LLM call"),
        "{}",
        stderr(&output)
    );
}
