//! LLM calls as faithful as the official SDKs, against local servers speaking each provider's
//! wire format: a tool call fed back as it came (OpenAI, Anthropic, Ollama), streams retried
//! until their first chunk, JSON answers to stream requests, answers of another format
//! refused, temperature sent as written, time to first chunk from the attempt's start,
//! Anthropic usage in `message_delta`, captured tool calls in the GenAI message schema,
//! options a provider cannot take refused at load, `--replay` without the key, per-provider
//! counts in the summary, Anthropic structured output, and error messages on one line.

use crate::support::llm_server::{LlmServer, Recorded, Reply};
use crate::support::provider_shapes::*;
use crate::support::{Scratch, assert_whole_trace, final_state, stderr};
use serde_json::{Value, json};
use std::time::Duration;

const KEY: &str = "sk-fidelity-0123456789";

fn no_fallback(r: &Recorded) -> Reply {
    Reply::status(500, format!("unexpected request to {}", r.path))
}

fn run(scratch: &Scratch, yaml: &str) -> std::process::Output {
    let agent = scratch.agent("agent.yaml", yaml);
    scratch
        .run_command(&agent)
        .env("KETTLE_TEST_KEY", KEY)
        .output()
        .expect("kettle runs")
}

/// The agent's `settings.llm` with one provider named `name` of type `kind` at `base`, then
/// `nodes`.
fn agent(name: &str, kind: &str, model: &str, base: &str, extra: &str, nodes: &str) -> String {
    format!(
        "name: fidelity
settings:
  tracing: {{capture_content: true}}
  llm:
    default: {name}
    max_retries: 2
    backoff_ms: 1
    providers:
      {name}:
        type: {kind}
        model: {model}
        base_url: {base}
        api_key_env: KETTLE_TEST_KEY
{extra}nodes:
{nodes}"
    )
}

fn chat_spans(spans: &[kettle::telemetry::SpanRecord]) -> Vec<&kettle::telemetry::SpanRecord> {
    let mut calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("chat "))
        .collect();
    calls.sort_by_key(|s| s.start_time_unix_nano);
    calls
}

/// An attribute holding JSON text, parsed.
fn json_attribute(span: &kettle::telemetry::SpanRecord, key: &str) -> Value {
    let text = span.attributes[key]
        .as_str()
        .expect("a JSON text attribute");
    serde_json::from_str(text).expect("valid JSON")
}

/// `llm.tools` asks, an expression node answers the tool, `llm.call` sends the answer back
/// with the assistant's tool calls as `llm.tools` stored them.
const ROUND_TRIP: &str = r#"  - name: ask
    uses: llm.tools
    with:
      prompt: "Weather in Oslo?"
      tools: [{name: weather, description: Current weather in a city, parameters: {type: object, properties: {city: {type: string}}}}]
    output: asked
  - name: answer
    run: {type: expression, value: "'rain in ' ~ state.asked.tool_calls[0].arguments.city", output_key: weather}
  - name: tell
    uses: llm.call
    with:
      messages:
        - {role: user, content: "Weather in Oslo?"}
        - {role: assistant, content: "{{ state.asked.content }}", tool_calls: "{{ state.asked.tool_calls }}"}
        - {role: tool, tool_call_id: "{{ state.asked.tool_calls[0].id }}", content: "{{ state.weather }}"}
    output: told
"#;

#[test]
fn openai_tool_round_trip_feeds_the_call_back_as_it_came() {
    let server = LlmServer::start(no_fallback);
    server.then([
        Reply::json(&openai_completion(
            "chatcmpl-1",
            "gpt-4o-mini",
            None,
            &[("call_abc", "weather", "{\"city\":\"Oslo\"}")],
            "tool_calls",
            (50, 12),
        )),
        Reply::json(&openai_completion(
            "chatcmpl-2",
            "gpt-4o-mini",
            Some("It rains in Oslo."),
            &[],
            "stop",
            (70, 6),
        )),
    ]);
    let scratch = Scratch::new();
    let yaml = agent(
        "gpt",
        "openai",
        "gpt-4o-mini",
        &server.url("/v1"),
        "",
        ROUND_TRIP,
    );
    let state = final_state(&run(&scratch, &yaml));
    assert_eq!(state["weather"], "rain in Oslo");
    assert_eq!(state["told"]["content"], "It rains in Oslo.");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].body["messages"],
        json!([
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc", "type": "function",
              "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "content": "rain in Oslo", "tool_call_id": "call_abc"}
        ])
    );

    // Captured content keeps the tool call and its answer (GenAI message schema).
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let calls = chat_spans(&spans);
    assert_eq!(
        json_attribute(calls[0], "gen_ai.output.messages"),
        json!([{"role": "assistant", "finish_reason": "tool_calls", "parts": [
            {"type": "tool_call", "id": "call_abc", "name": "weather", "arguments": {"city": "Oslo"}}]}])
    );
    assert_eq!(
        json_attribute(calls[1], "gen_ai.input.messages"),
        json!([
            {"role": "user", "parts": [{"type": "text", "content": "Weather in Oslo?"}]},
            {"role": "assistant", "parts": [{"type": "tool_call", "id": "call_abc", "name": "weather", "arguments": {"city": "Oslo"}}]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_abc", "response": "rain in Oslo"}]}
        ])
    );
}

#[test]
fn anthropic_tool_round_trip_feeds_the_call_back_as_it_came() {
    let server = LlmServer::start(no_fallback);
    server.then([
        Reply::json(&anthropic_message(
            "msg_1",
            "claude-sonnet-4-5",
            Some("Let me check."),
            &[("toolu_01", "weather", json!({"city": "Oslo"}))],
            "tool_use",
            (120, 40),
        )),
        Reply::json(&anthropic_message(
            "msg_2",
            "claude-sonnet-4-5",
            Some("It rains in Oslo."),
            &[],
            "end_turn",
            (180, 8),
        )),
    ]);
    let scratch = Scratch::new();
    let yaml = agent(
        "claude",
        "anthropic",
        "claude-sonnet-4-5",
        &server.url(""),
        "",
        ROUND_TRIP,
    );
    let state = final_state(&run(&scratch, &yaml));
    assert_eq!(state["told"]["content"], "It rains in Oslo.");
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        requests[1].body["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Weather in Oslo?"}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01", "name": "weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "rain in Oslo"}]}
        ])
    );
}

#[test]
fn ollama_tool_messages_name_their_tool_and_call() {
    let server = LlmServer::start(no_fallback);
    server.then([Reply::json(&ollama_answer(
        "llama3.2",
        "Rain.",
        &[],
        (30, 2),
    ))]);
    let scratch = Scratch::new();
    let nodes = r#"  - name: tell
    uses: llm.call
    with:
      messages:
        - {role: user, content: "Weather in Oslo?"}
        - {role: assistant, tool_calls: [{id: call_0, name: weather, arguments: {city: Oslo}}]}
        - {role: tool, tool_call_id: call_0, content: "rain"}
    output: told
"#;
    let yaml = agent("local", "ollama", "llama3.2", &server.url(""), "", nodes);
    final_state(&run(&scratch, &yaml));
    let body = &server.requests()[0].body;
    assert_eq!(
        body["messages"][1]["tool_calls"],
        json!([{"id": "call_0", "function": {"name": "weather", "arguments": {"city": "Oslo"}}}])
    );
    assert_eq!(
        body["messages"][2],
        json!({"role": "tool", "content": "rain", "tool_call_id": "call_0", "tool_name": "weather"})
    );
}

#[test]
fn a_malformed_tool_call_names_the_message_and_field() {
    let scratch = Scratch::new();
    let nodes = r#"  - name: tell
    uses: llm.call
    with:
      messages:
        - {role: user, content: "hi"}
        - {role: assistant, tool_calls: [{id: c1, name: weather, arguments: [1, 2]}]}
    output: told
"#;
    let yaml = agent("gpt", "openai", "m", "http://127.0.0.1:9/v1", "", nodes);
    let output = run(&scratch, &yaml);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains(
            "`messages[1].tool_calls[0].arguments` must be an object or JSON text, not a list"
        ),
        "{err}"
    );
}

#[test]
fn anthropic_and_ollama_refuse_answers_of_another_format() {
    // An OpenAI completion sent to the Anthropic provider.
    let server = LlmServer::start(no_fallback);
    server.then([Reply::json(&openai_completion(
        "chatcmpl-1",
        "gpt-4o-mini",
        Some("hello"),
        &[],
        "stop",
        (3, 1),
    ))]);
    let scratch = Scratch::new();
    let call = "  - name: ask\n    uses: llm.call\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", call);
    let output = run(&scratch, &yaml);
    assert!(!output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("not an Anthropic message")
            && err.contains("looks like an OpenAI chat completion"),
        "{err}"
    );

    // An Ollama proxy streaming /api/generate's `{"response": …}` lines to the chat provider.
    let server = LlmServer::start(no_fallback);
    server.then([Reply::ndjson(&[
        json!({"model": "llama3.2", "response": "Hel", "done": false}),
        json!({"model": "llama3.2", "response": "lo", "done": true, "prompt_eval_count": 3, "eval_count": 2}),
    ])]);
    let scratch = Scratch::new();
    let stream = "  - name: ask\n    uses: llm.stream\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent("local", "ollama", "llama3.2", &server.url(""), "", stream);
    let output = run(&scratch, &yaml);
    assert!(!output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("not an Ollama chat answer") && err.contains("/api/generate"),
        "{err}"
    );
}

#[test]
fn a_stream_is_retried_until_its_first_chunk() {
    // An empty 200, then an error event, then the answer: three attempts.
    let server = LlmServer::start(no_fallback);
    server.then([
        Reply::empty("text/event-stream"),
        openai_error_event("server_error", "The server had an error"),
        openai_stream("chatcmpl-3", "gpt-4o-mini", &["Hel", "lo"], (5, 2)),
    ]);
    let scratch = Scratch::new();
    let stream = "  - name: ask\n    uses: llm.stream\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent(
        "gpt",
        "openai",
        "gpt-4o-mini",
        &server.url("/v1"),
        "",
        stream,
    );
    let state = final_state(&run(&scratch, &yaml));
    assert_eq!(state["asked"]["content"], "Hello");
    assert_eq!(server.requests().len(), 3);
    let spans = scratch.only_trace();
    let call = chat_spans(&spans)[0];
    assert_eq!(call.attribute_i64("kettle.llm.attempts"), Some(3));

    // Anthropic's `overloaded_error` event is retried; `invalid_request_error` is not.
    let server = LlmServer::start(no_fallback);
    server.then([
        anthropic_error_event("overloaded_error", "Overloaded"),
        anthropic_stream("msg_1", "claude-sonnet-4-5", &["Hi"], (4, 1)),
    ]);
    let scratch = Scratch::new();
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", stream);
    let state = final_state(&run(&scratch, &yaml));
    assert_eq!(state["asked"]["content"], "Hi");
    assert_eq!(server.requests().len(), 2);

    let server = LlmServer::start(no_fallback);
    server.then([anthropic_error_event(
        "invalid_request_error",
        "messages: bad",
    )]);
    let scratch = Scratch::new();
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", stream);
    let output = run(&scratch, &yaml);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("failed (invalid_request): error in the answer: messages: bad"),
        "{}",
        stderr(&output)
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_json_answer_to_a_stream_request_is_the_answer() {
    let server = LlmServer::start(no_fallback);
    server.then([Reply::json(&openai_completion(
        "chatcmpl-1",
        "gpt-4o-mini",
        Some("Whole answer"),
        &[],
        "stop",
        (6, 2),
    ))]);
    let scratch = Scratch::new();
    let stream = "  - name: ask\n    uses: llm.stream\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent(
        "gpt",
        "openai",
        "gpt-4o-mini",
        &server.url("/v1"),
        "",
        stream,
    );
    let state = final_state(&run(&scratch, &yaml));
    assert_eq!(
        state["asked"],
        json!({"content": "Whole answer", "model": "gpt-4o-mini", "finish_reason": "stop",
               "usage": {"input_tokens": 6, "output_tokens": 2}, "tool_calls": []})
    );

    // JSON that is not an answer is named as such.
    let server = LlmServer::start(no_fallback);
    server.then([Reply::json(&json!({"status": "queued"}))]);
    let scratch = Scratch::new();
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", stream);
    let output = run(&scratch, &yaml);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("answered with one JSON body (not a stream)")
            && err.contains("not an Anthropic message"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 1, "a wrong format is not retried");
}

#[test]
fn temperature_is_sent_as_written() {
    let server = LlmServer::start(|r| {
        if r.path.ends_with("/messages") {
            Reply::json(&anthropic_message(
                "msg",
                "c",
                Some("ok"),
                &[],
                "end_turn",
                (1, 1),
            ))
        } else if r.path.ends_with("/api/chat") {
            Reply::json(&ollama_answer("llama3.2", "ok", &[], (1, 1)))
        } else {
            Reply::json(&openai_completion(
                "c",
                "m",
                Some("ok"),
                &[],
                "stop",
                (1, 1),
            ))
        }
    });
    let scratch = Scratch::new();
    let yaml = format!(
        "name: temperatures
settings:
  llm:
    default: gpt
    providers:
      gpt: {{type: openai, model: m, base_url: {v1}, temperature: 0.7}}
      claude: {{type: anthropic, model: c, base_url: {root}}}
      local: {{type: ollama, model: llama3.2, base_url: {root}}}
nodes:
  - {{name: a, uses: llm.call, with: {{prompt: hi, temperature: 0.2}}, output: a}}
  - {{name: b, uses: llm.call, with: {{prompt: hi}}, output: b}}
  - {{name: c, uses: llm.call, with: {{prompt: hi, provider: claude, temperature: 0.3}}, output: c}}
  - {{name: d, uses: llm.call, with: {{prompt: hi, provider: local, temperature: 0.1}}, output: d}}
  - {{name: e, uses: llm.call, with: {{prompt: hi, temperature: 1}}, output: e}}
",
        v1 = server.url("/v1"),
        root = server.url("")
    );
    final_state(&run(&scratch, &yaml));
    let r = server.requests();
    // Compared as JSON values: 0.2 sent through an f32 reads back as 0.20000000298023224.
    assert_eq!(r[0].body["temperature"], json!(0.2));
    assert_eq!(r[1].body["temperature"], json!(0.7));
    assert_eq!(r[2].body["temperature"], json!(0.3));
    assert_eq!(r[3].body["options"]["temperature"], json!(0.1));
    assert_eq!(r[4].body["temperature"], json!(1), "an integer stays one");
    let spans = scratch.only_trace();
    let calls = chat_spans(&spans);
    assert_eq!(
        calls[0].attributes["gen_ai.request.temperature"],
        json!(0.2)
    );
    assert_eq!(
        calls[2].attributes["gen_ai.request.temperature"],
        json!(0.3)
    );
}

#[test]
fn time_to_first_chunk_counts_the_wait_for_headers() {
    let server = LlmServer::start(no_fallback);
    server.then([openai_stream("chatcmpl-1", "gpt-4o-mini", &["Hi"], (3, 1))
        .after(Duration::from_millis(600))]);
    let scratch = Scratch::new();
    let stream = "  - name: ask\n    uses: llm.stream\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent(
        "gpt",
        "openai",
        "gpt-4o-mini",
        &server.url("/v1"),
        "",
        stream,
    );
    final_state(&run(&scratch, &yaml));
    let spans = scratch.only_trace();
    let call = chat_spans(&spans)[0];
    let ttfc = call.attributes["gen_ai.response.time_to_first_chunk"]
        .as_f64()
        .expect("time to first chunk");
    let duration = (call.end_time_unix_nano - call.start_time_unix_nano) as f64 / 1e9;
    assert!(
        (0.6..=duration).contains(&ttfc),
        "{ttfc} s: the 600 ms before the headers count, within the call's {duration} s"
    );
}

#[test]
fn anthropic_stream_usage_from_message_delta() {
    let server = LlmServer::start(no_fallback);
    server.then([anthropic_stream_usage_in_delta(
        "msg_1",
        "claude-sonnet-4-5",
        &["Hel", "lo"],
        (31, 7),
    )]);
    let scratch = Scratch::new();
    let stream = "  - name: ask\n    uses: llm.stream\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", stream);
    let state = final_state(&run(&scratch, &yaml));
    assert_eq!(state["asked"]["content"], "Hello");
    assert_eq!(
        state["asked"]["usage"],
        json!({"input_tokens": 31, "output_tokens": 7})
    );
}

#[test]
fn options_a_provider_cannot_take_are_refused_at_load() {
    let server = LlmServer::start(no_fallback);
    let scratch = Scratch::new();
    let nodes =
        "  - name: ask\n    uses: llm.call\n    with: {prompt: hi, seed: 4}\n    output: asked\n";
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", nodes);
    let output = run(&scratch, &yaml);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("agent.yaml:")
            && err.contains("provider `claude` (anthropic) takes no `seed`"),
        "{err}"
    );

    let nodes = "  - name: ask\n    uses: llm.tools\n    with:\n      prompt: hi\n      tools: [{name: w, parameters: {type: object}}]\n      tool_choice: required\n    output: asked\n";
    let yaml = agent("local", "ollama", "llama3.2", &server.url(""), "", nodes);
    let output = run(&scratch, &yaml);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("provider `local` (ollama) takes no `tool_choice: required`"),
        "{}",
        stderr(&output)
    );

    // Inside a step too.
    let nodes = "  - name: each\n    steps:\n      - {name: ask, uses: llm.call, with: {prompt: hi, seed: 4}, output: asked}\n";
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", nodes);
    let output = run(&scratch, &yaml);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("step `ask`: provider `claude` (anthropic) takes no `seed`"),
        "{}",
        stderr(&output)
    );
    assert!(server.requests().is_empty(), "nothing was sent");
}

#[test]
fn replay_needs_no_key_variable() {
    let server = LlmServer::start(no_fallback);
    server.then([Reply::json(&openai_completion(
        "chatcmpl-1",
        "gpt-4o-mini",
        Some("Recorded."),
        &[],
        "stop",
        (4, 2),
    ))]);
    let recording = Scratch::new();
    let call = "  - name: ask\n    uses: llm.call\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent("gpt", "openai", "gpt-4o-mini", &server.url("/v1"), "", call);
    let agent_file = recording.agent("agent.yaml", &yaml);
    let tape = recording.path().join("calls.jsonl");
    let recorded = recording
        .run_command(&agent_file)
        .env("KETTLE_TEST_KEY", KEY)
        .arg("--record")
        .arg(&tape)
        .output()
        .expect("kettle runs");
    let recorded = final_state(&recorded);
    let replaying = Scratch::new();
    let replayed = replaying
        .run_command(&agent_file)
        .env_remove("KETTLE_TEST_KEY")
        .arg("--replay")
        .arg(&tape)
        .output()
        .expect("kettle runs");
    assert_eq!(final_state(&replayed), recorded);
    assert_eq!(server.requests().len(), 1);

    // Without --replay, the missing variable is still an error at load.
    let output = replaying
        .run_command(&agent_file)
        .env_remove("KETTLE_TEST_KEY")
        .output()
        .expect("kettle runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("api_key_env names `KETTLE_TEST_KEY`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_summary_counts_calls_per_provider_and_only_those_sent() {
    let server = LlmServer::start(|r| {
        if r.path.ends_with("/messages") {
            Reply::json(&anthropic_message(
                "msg",
                "c",
                Some("ok"),
                &[],
                "end_turn",
                (1, 1),
            ))
        } else {
            Reply::json(&openai_completion(
                "c",
                "m",
                Some("ok"),
                &[],
                "stop",
                (1, 1),
            ))
        }
    });
    let scratch = Scratch::new();
    // The last call's seed is known only at run time: it is refused before it is sent.
    let yaml = format!(
        "name: counts
settings:
  llm:
    default: gpt
    providers:
      gpt: {{type: openai, model: m, base_url: {v1}}}
      claude: {{type: anthropic, model: c, base_url: {root}}}
nodes:
  - {{name: a, uses: llm.call, with: {{prompt: hi}}, output: a}}
  - {{name: b, uses: llm.call, with: {{prompt: hi}}, output: b}}
  - {{name: c, uses: llm.call, with: {{prompt: hi, provider: claude}}, output: c}}
  - {{name: d, uses: llm.call, with: {{prompt: hi, provider: claude, seed: '{{{{ state.seed }}}}'}}, output: d}}
",
        v1 = server.url("/v1"),
        root = server.url("")
    );
    let agent_file = scratch.agent("agent.yaml", &yaml);
    let output = scratch
        .run_command(&agent_file)
        .args(["--input", r#"{"seed": 4}"#])
        .output()
        .expect("kettle runs");
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("takes no `seed`"), "{err}");
    assert!(err.contains("3 LLM calls"), "{err}");
    assert!(
        err.contains("LLM     `claude` (anthropic) 1 call, `gpt` (openai) 2 calls"),
        "{err}"
    );
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn anthropic_structured_output_as_output_config() {
    let server = LlmServer::start(no_fallback);
    server.then([Reply::json(&anthropic_message(
        "msg_1",
        "claude-sonnet-4-5",
        Some("{\"city\":\"Oslo\"}"),
        &[],
        "end_turn",
        (20, 6),
    ))]);
    let scratch = Scratch::new();
    let nodes = r#"  - name: ask
    uses: llm.call
    with:
      prompt: "Which city?"
      response_format: {type: json_schema, json_schema: {name: city, schema: {type: object, properties: {city: {type: string}}, required: [city], additionalProperties: false}}}
    output: asked
"#;
    let yaml = agent("claude", "anthropic", "c", &server.url(""), "", nodes);
    let state = final_state(&run(&scratch, &yaml));
    assert_eq!(state["asked"]["content"], "{\"city\":\"Oslo\"}");
    let request = &server.requests()[0];
    assert_eq!(request.headers["anthropic-version"], "2023-06-01");
    assert_eq!(
        request.body["output_config"],
        json!({"format": {"type": "json_schema", "schema": {"type": "object",
               "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": false}}})
    );
    assert!(request.body.get("response_format").is_none());
}

#[test]
fn errors_name_their_kind_once_and_fold_server_messages() {
    let server = LlmServer::start(no_fallback);
    server.then([Reply::status(
        401,
        json!({"error": {"message": "Incorrect API key provided.\n\n   See the\ndocs.", "type": "invalid_request_error"}}).to_string(),
    )]);
    let scratch = Scratch::new();
    let call = "  - name: ask\n    uses: llm.call\n    with: {prompt: hi}\n    output: asked\n";
    let yaml = agent("gpt", "openai", "m", &server.url("/v1"), "", call);
    let output = run(&scratch, &yaml);
    let err = stderr(&output);
    assert!(
        err.contains(
            "node `ask` failed (denied): HTTP 401: Incorrect API key provided. See the docs."
        ),
        "{err}"
    );

    // An HTML error page is folded onto one line and cut.
    let page = format!(
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n{}\n</body>\n</html>",
        "<p>upstream</p>\n".repeat(200)
    );
    let server = LlmServer::start(move |_| Reply::status(502, page.clone()));
    let scratch = Scratch::new();
    let yaml = agent("gpt", "openai", "m", &server.url("/v1"), "", call);
    let output = run(&scratch, &yaml);
    let err = stderr(&output);
    let line = err
        .lines()
        .find(|l| l.contains("failed (provider_error): HTTP 502"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("<head><title>502 Bad Gateway"), "{line}");
    assert!(line.ends_with('…') && line.chars().count() < 420, "{line}");
}
