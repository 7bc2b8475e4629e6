//! Each provider's wire format against a real local HTTP server: the exact request sent (path,
//! query, headers, body), real-shaped answers parsed into state and spans, tool calls in both
//! directions, and streams (SSE and NDJSON) read delta by delta.

use crate::support::llm_server::{LlmServer, Recorded, Reply};
use crate::support::provider_shapes::*;
use crate::support::{Scratch, assert_whole_trace, final_state, repo};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789";

fn probe() -> String {
    repo().join("tests/nodes/llm-probe").display().to_string()
}

fn no_fallback(r: &Recorded) -> Reply {
    Reply::status(500, format!("unexpected request to {}", r.path))
}

fn run(scratch: &Scratch, yaml: &str, input: &str) -> std::process::Output {
    let agent = scratch.agent("agent.yaml", yaml);
    scratch
        .run_command(&agent)
        .env("KETTLE_TEST_KEY", KEY)
        .args(["--input", input])
        .output()
        .expect("kettle runs")
}

fn chat_spans(spans: &[kettle::telemetry::SpanRecord]) -> Vec<&kettle::telemetry::SpanRecord> {
    let mut calls: Vec<_> = spans
        .iter()
        .filter(|s| s.name.starts_with("chat "))
        .collect();
    calls.sort_by_key(|s| s.start_time_unix_nano);
    calls
}

fn weather_tool() -> Value {
    json!({"type": "function", "function": {
        "name": "weather", "description": "Current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}})
}

#[test]
fn openai_tool_loop_then_stream_from_a_component() {
    let server = LlmServer::start(no_fallback);
    server.then([
        Reply::json(&openai_completion(
            "chatcmpl-1",
            "gpt-4o-mini-2024-07-18",
            None,
            &[("call_abc", "weather", "{\"city\":\"Oslo\"}")],
            "tool_calls",
            (50, 12),
        )),
        Reply::json(&openai_completion(
            "chatcmpl-2",
            "gpt-4o-mini-2024-07-18",
            Some("It rains in Oslo."),
            &[],
            "stop",
            (70, 6),
        )),
        openai_stream(
            "chatcmpl-3",
            "gpt-4o-mini-2024-07-18",
            &["It ", "rains", "."],
            (9, 3),
        ),
    ]);
    let scratch = Scratch::new();
    let yaml = format!(
        r#"name: openai-tools
settings:
  llm:
    provider: openai
    model: gpt-4o-mini
    base_url: {base}
    api_key_env: KETTLE_TEST_KEY
nodes:
  - name: ask
    component: {probe}
    config: {{mode: tools, key: tools}}
  - name: tell
    component: {probe}
    config: {{mode: stream, key: streamed}}
"#,
        base = server.url("/v1"),
        probe = probe()
    );
    let state = final_state(&run(
        &scratch,
        &yaml,
        r#"{"prompt": "What is the weather in Oslo?"}"#,
    ));
    assert_eq!(
        state["tools"],
        json!({"answer": "It rains in Oslo.", "finish_reason": "stop",
               "tool_calls": [{"id": "call_abc", "name": "weather", "city": "Oslo"}],
               "usage": [70, 6]})
    );
    assert_eq!(
        state["streamed"],
        json!({"deltas": ["It ", "rains", "."], "answer": "It rains.", "finish_reason": "stop",
               "usage": [9, 3], "after_end": "Ok(None)"})
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for r in &requests {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/v1/chat/completions");
        assert_eq!(r.query, None);
        assert_eq!(r.headers["authorization"], format!("Bearer {KEY}"));
        assert_eq!(r.headers["content-type"], "application/json");
    }
    let user = json!({"role": "user", "content": "What is the weather in Oslo?"});
    assert_eq!(
        requests[0].body,
        json!({"model": "gpt-4o-mini", "messages": [user], "tools": [weather_tool()]})
    );
    assert_eq!(
        requests[1].body,
        json!({"model": "gpt-4o-mini", "tools": [weather_tool()], "messages": [
            user,
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_abc", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
            {"role": "tool", "content": "rain in Oslo", "tool_call_id": "call_abc"}
        ]})
    );
    assert_eq!(
        requests[2].body,
        json!({"model": "gpt-4o-mini", "messages": [user], "stream": true,
               "stream_options": {"include_usage": true}})
    );

    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let calls = chat_spans(&spans);
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[0].attributes["kettle.llm.tool_calls"], 1);
    assert_eq!(
        calls[0].attributes["gen_ai.response.finish_reasons"],
        json!(["tool_calls"])
    );
    assert_eq!(calls[0].attributes["kettle.llm.tools"], 1);
    assert_eq!(
        calls[1].attribute_i64("gen_ai.usage.input_tokens"),
        Some(70)
    );
    let stream = calls[2];
    assert_eq!(stream.attributes["gen_ai.request.stream"], true);
    assert_eq!(stream.attributes["gen_ai.response.id"], "chatcmpl-3");
    assert_eq!(stream.attribute_i64("gen_ai.usage.output_tokens"), Some(3));
    let ttfc = stream.attributes["gen_ai.response.time_to_first_chunk"]
        .as_f64()
        .expect("time to first chunk");
    let duration = (stream.end_time_unix_nano - stream.start_time_unix_nano) as f64 / 1e9;
    assert!(ttfc > 0.0 && ttfc <= duration, "{ttfc} within {duration}");
    assert_eq!(stream.status.code, "unset");
    // One attempt each, reported as an event.
    for call in &calls {
        assert_eq!(call.events.len(), 1);
        assert_eq!(call.events[0].name, "kettle.llm.attempt");
        assert_eq!(call.events[0].attributes["http.response.status_code"], 200);
    }
    // The key is nowhere in the trace.
    let trace_text = std::fs::read_dir(scratch.traces())
        .expect("traces")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read"))
        .collect::<String>();
    assert!(!trace_text.contains(KEY));
}

#[test]
fn named_providers_azure_ollama_anthropic_and_mock_from_one_agent() {
    let server = LlmServer::start(no_fallback);
    server.then([
        // azure (api-key header), llm.call
        Reply::json(&openai_completion(
            "chatcmpl-az",
            "gpt-4o-2024-08-06",
            Some("Azure says hi"),
            &[],
            "stop",
            (11, 3),
        )),
        // azure with an Entra ID token, llm.call
        Reply::json(&openai_completion(
            "chatcmpl-az2",
            "gpt-4o-2024-08-06",
            Some("Token accepted"),
            &[],
            "stop",
            (11, 2),
        )),
        // ollama, llm.stream (NDJSON)
        ollama_stream("llama3.2", &["Lla", "ma ", "here"], (26, 3)),
        // ollama, llm.tools
        Reply::json(&ollama_answer(
            "llama3.2",
            "",
            &[("weather", json!({"city": "Bergen"}))],
            (30, 9),
        )),
        // anthropic, llm.tools
        Reply::json(&anthropic_message(
            "msg_01",
            "claude-sonnet-4-5-20250929",
            Some("Let me check."),
            &[("toolu_01", "weather", json!({"city": "Oslo"}))],
            "tool_use",
            (120, 40),
        )),
        // anthropic, streamed to a component
        anthropic_stream(
            "msg_02",
            "claude-sonnet-4-5-20250929",
            &["Hello", " from", " Claude"],
            (15, 4),
        ),
    ]);
    let scratch = Scratch::new();
    let yaml = format!(
        r#"name: many-providers
settings:
  llm:
    default: azure
    max_retries: 0
    providers:
      azure:
        type: azure_openai
        base_url: {base}
        deployment: prod-gpt4o
        api_version: 2024-10-21
        api_key_env: KETTLE_TEST_KEY
      entra:
        type: azure_openai
        base_url: {base}
        model: gpt-4o
        auth: bearer
        api_key_env: KETTLE_TEST_KEY
        max_tokens_field: max_completion_tokens
      local:
        type: ollama
        base_url: {base}
        model: llama3.2
      claude:
        type: anthropic
        base_url: {base}
        model: claude-sonnet-4-5
        api_key_env: KETTLE_TEST_KEY
        max_tokens: 512
      scripted:
        type: mock
        responses:
          - "first scripted"
          - content: "second"
            finish_reason: stop
nodes:
  - name: azure_call
    uses: llm.call
    with: {{prompt: "hi azure", temperature: 0.5, max_tokens: 30, seed: 7}}
    output: azure
  - name: entra_call
    uses: llm.call
    with: {{prompt: "hi entra", provider: entra, max_tokens: 9, response_format: json}}
    output: entra
  - name: ollama_stream
    uses: llm.stream
    with: {{prompt: "hi llama", provider: local, temperature: 0, stop: ["END"]}}
    output: llama
  - name: ollama_tools
    uses: llm.tools
    with:
      provider: local
      prompt: "weather in Bergen?"
      tools: [{{name: weather, description: Current weather in a city, parameters: {{type: object}}}}]
    output: llama_tools
  - name: claude_tools
    uses: llm.tools
    with:
      provider: claude
      system: "Be brief."
      messages: [{{role: user, content: "weather in Oslo?"}}]
      tools: [{{name: weather, description: Current weather in a city, parameters: {{type: object}}}}]
      tool_choice: required
      stop: ["@@"]
    output: claude
  - name: claude_stream
    component: {probe}
    config: {{mode: stream, key: claude_stream, provider: claude}}
  - name: scripted_one
    uses: llm.call
    with: {{prompt: "anything", provider: scripted}}
    output: scripted_one
  - name: scripted_two
    uses: llm.call
    with: {{prompt: "anything", provider: scripted}}
    output: scripted_two
"#,
        base = server.url(""),
        probe = probe()
    );
    let output = run(&scratch, &yaml, r#"{"prompt": "hi claude"}"#);
    let state = final_state(&output);
    let no_calls = json!([]);
    assert_eq!(
        state["azure"],
        json!({"content": "Azure says hi", "model": "gpt-4o-2024-08-06", "finish_reason": "stop",
               "usage": {"input_tokens": 11, "output_tokens": 3}, "tool_calls": no_calls})
    );
    assert_eq!(state["entra"]["content"], "Token accepted");
    assert_eq!(
        state["llama"],
        json!({"content": "Llama here", "model": "llama3.2", "finish_reason": "stop",
               "usage": {"input_tokens": 26, "output_tokens": 3}, "tool_calls": no_calls})
    );
    assert_eq!(
        state["llama_tools"]["tool_calls"],
        json!([{"id": "call_0", "name": "weather", "arguments": {"city": "Bergen"}}])
    );
    assert_eq!(
        state["claude"],
        json!({"content": "Let me check.", "model": "claude-sonnet-4-5-20250929", "finish_reason": "tool_use",
               "usage": {"input_tokens": 120, "output_tokens": 40},
               "tool_calls": [{"id": "toolu_01", "name": "weather", "arguments": {"city": "Oslo"}}]})
    );
    assert_eq!(
        state["claude_stream"],
        json!({"deltas": ["Hello", " from", " Claude"], "answer": "Hello from Claude",
               "finish_reason": "end_turn", "usage": [15, 4], "after_end": "Ok(None)"})
    );
    assert_eq!(state["scripted_one"]["content"], "first scripted");
    assert_eq!(state["scripted_two"]["content"], "second");

    let r = server.requests();
    assert_eq!(r.len(), 6, "the mock provider makes no request");
    // Azure: deployment in the path, api-version in the query, the key in `api-key`.
    assert_eq!(r[0].path, "/openai/deployments/prod-gpt4o/chat/completions");
    assert_eq!(r[0].query.as_deref(), Some("api-version=2024-10-21"));
    assert_eq!(r[0].headers["api-key"], KEY);
    assert!(!r[0].headers.contains_key("authorization"));
    assert_eq!(
        r[0].body,
        json!({"model": "prod-gpt4o", "messages": [{"role": "user", "content": "hi azure"}],
               "temperature": 0.5, "max_tokens": 30, "seed": 7})
    );
    assert_eq!(r[1].path, "/openai/deployments/gpt-4o/chat/completions");
    assert_eq!(r[1].headers["authorization"], format!("Bearer {KEY}"));
    assert!(!r[1].headers.contains_key("api-key"));
    assert_eq!(
        r[1].body,
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi entra"}],
               "max_completion_tokens": 9, "response_format": {"type": "json_object"}})
    );
    // Ollama: native /api/chat, options apart, no key.
    assert_eq!(r[2].path, "/api/chat");
    assert!(!r[2].headers.contains_key("authorization"));
    assert_eq!(
        r[2].body,
        json!({"model": "llama3.2", "stream": true, "messages": [{"role": "user", "content": "hi llama"}],
               "options": {"temperature": 0, "stop": ["END"]}})
    );
    assert_eq!(
        r[3].body,
        json!({"model": "llama3.2", "stream": false, "messages": [{"role": "user", "content": "weather in Bergen?"}],
               "tools": [{"type": "function", "function": {"name": "weather", "description": "Current weather in a city", "parameters": {"type": "object"}}}]})
    );
    // Anthropic: /v1/messages, x-api-key and anthropic-version, system apart, max_tokens.
    assert_eq!(r[4].path, "/v1/messages");
    assert_eq!(r[4].headers["x-api-key"], KEY);
    assert_eq!(r[4].headers["anthropic-version"], "2023-06-01");
    assert!(!r[4].headers.contains_key("authorization"));
    assert_eq!(
        r[4].body,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 512, "system": "Be brief.",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "weather in Oslo?"}]}],
               "stop_sequences": ["@@"],
               "tools": [{"name": "weather", "description": "Current weather in a city", "input_schema": {"type": "object"}}],
               "tool_choice": {"type": "any"}})
    );
    assert_eq!(
        r[5].body,
        json!({"model": "claude-sonnet-4-5", "max_tokens": 512, "stream": true,
               "messages": [{"role": "user", "content": [{"type": "text", "text": "hi claude"}]}]})
    );

    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let calls = chat_spans(&spans);
    let systems: Vec<&str> = calls
        .iter()
        .map(|s| s.attributes["gen_ai.provider.name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        systems,
        [
            "azure.ai.openai",
            "azure.ai.openai",
            "ollama",
            "ollama",
            "anthropic",
            "anthropic",
            "mock",
            "mock"
        ]
    );
    let providers: Vec<&str> = calls
        .iter()
        .map(|s| s.attributes["kettle.llm.provider"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        providers,
        [
            "azure", "entra", "local", "local", "claude", "claude", "scripted", "scripted"
        ]
    );
    for streamed in [calls[2], calls[5]] {
        assert!(
            streamed.attributes["gen_ai.response.time_to_first_chunk"]
                .as_f64()
                .is_some()
        );
    }
}

#[test]
fn a_node_built_against_the_first_0_1_contract_still_links_and_calls() {
    let scratch = Scratch::new();
    let node = repo().join("tests/nodes/v01-compat");
    let yaml = format!(
        "name: old\nnodes:\n  - name: old\n    component: {}\n",
        node.display()
    );
    let state = final_state(&run(&scratch, &yaml, "{}"));
    assert_eq!(state, json!({"old_node": "[mock] still here", "tokens": 3}));
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    assert_eq!(chat_spans(&spans).len(), 1);
}

#[test]
fn api_base_sends_one_call_elsewhere() {
    let server = LlmServer::start(|r| {
        Reply::json(&openai_completion(
            "chatcmpl-alt",
            "m-1",
            Some(&r.path),
            &[],
            "stop",
            (1, 1),
        ))
    });
    let scratch = Scratch::new();
    // The provider's own address is a closed port: only the call's api_base can answer.
    let yaml = format!(
        r#"name: api-base
settings:
  llm: {{provider: openai, model: m, base_url: "http://127.0.0.1:9/v1", max_retries: 0}}
nodes:
  - name: a
    uses: llm.call
    with: {{prompt: hi, api_base: "{alt}"}}
    output: a
"#,
        alt = server.url("/alt/v1")
    );
    let state = final_state(&run(&scratch, &yaml, "{}"));
    assert_eq!(state["a"]["content"], "/alt/v1/chat/completions");
    let spans = scratch.only_trace();
    let call = chat_spans(&spans)[0];
    assert_eq!(
        call.attribute_i64("server.port"),
        Some(i64::from(server.addr.port()))
    );
}
