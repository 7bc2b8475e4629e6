//! The OpenAI-compatible provider against a real local HTTP server: the exact requests sent,
//! responses parsed into state and spans, and a run interrupted while a call is in flight.

use crate::support::openai_server::{Behaviour, FakeOpenAi};
use crate::support::{
    Scratch, assert_whole_trace, children, final_state, names, repo, span, stderr,
};
use serde_json::json;

fn agent_for(scratch: &Scratch, server: &FakeOpenAi) -> std::path::PathBuf {
    let node = repo().join("examples/hello/nodes/summarize");
    scratch.agent(
        "openai.yaml",
        &format!(
            r#"name: openai-hello
settings:
  llm:
    provider: openai
    model: gpt-4o-mini
    base_url: {base}
    api_key_env: KETTLE_TEST_KEY
    temperature: 0.2
nodes:
  - name: summarize
    component: {node}
  - name: polish
    uses: llm.call
    with:
      prompt: "Polish: {{{{ state.summary }}}}"
      max_tokens: 20
    output: polished
"#,
            base = server.base_url(),
            node = node.display()
        ),
    )
}

#[test]
fn requests_and_responses_follow_the_openai_wire_format() {
    let server = FakeOpenAi::start(Behaviour::Answer);
    let scratch = Scratch::new();
    let agent = agent_for(&scratch, &server);
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_TEST_KEY", "sk-test-123")
        .args(["--input", r#"{"topic": "tea"}"#])
        .output()
        .expect("kettle runs");
    let state = final_state(&output);
    assert_eq!(
        state["outline"],
        "echo: Write a three-point outline about tea."
    );
    assert_eq!(
        state["summary"],
        "echo: Summarize this outline in one sentence: echo: Write a three-point outline about tea."
    );
    assert_eq!(
        state["polished"],
        json!({
            "content": "echo: Polish: echo: Summarize this outline in one sentence: echo: Write a three-point outline about tea.",
            "model": "gpt-4o-mini-2024-07-18",
            "finish_reason": "stop",
            "usage": {"input_tokens": 10, "output_tokens": 7},
            "tool_calls": [],
        })
    );

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/v1/chat/completions");
        assert_eq!(request.headers["authorization"], "Bearer sk-test-123");
        assert!(
            !request.headers.contains_key("tracestate"),
            "no tracestate to pass on"
        );
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(request.body["model"], "gpt-4o-mini");
        assert!((request.body["temperature"].as_f64().unwrap_or_default() - 0.2).abs() < 1e-6);
    }
    assert_eq!(
        requests[0].body["messages"],
        json!([
            {"role": "system", "content": "You are a concise writer."},
            {"role": "user", "content": "Write a three-point outline about tea."}
        ])
    );
    assert_eq!(requests[2].body["max_tokens"], 20);

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    let summarize = span(&spans, "node summarize");
    let calls = children(&spans, summarize);
    assert_eq!(names(&calls), ["chat gpt-4o-mini", "chat gpt-4o-mini"]);
    let polish_calls = children(&spans, span(&spans, "node polish"));
    for (i, call) in calls.iter().chain(polish_calls.iter()).enumerate() {
        assert_eq!(call.attributes["gen_ai.provider.name"], "openai");
        assert_eq!(call.attributes["gen_ai.system"], "openai");
        assert_eq!(
            call.attributes["gen_ai.response.model"],
            "gpt-4o-mini-2024-07-18"
        );
        assert_eq!(
            call.attributes["gen_ai.response.id"],
            format!("chatcmpl-test-{}", i + 1)
        );
        assert_eq!(call.attributes["server.address"], "127.0.0.1");
        assert_eq!(
            call.attribute_i64("server.port"),
            Some(i64::from(server.addr.port()))
        );
        assert_eq!(call.attribute_i64("gen_ai.usage.output_tokens"), Some(7));
        // The request carried this very span as its traceparent.
        assert_eq!(
            requests[i].headers["traceparent"],
            format!("00-{}-{}-01", root.trace_id, call.span_id)
        );
    }
}

#[test]
fn the_callers_trace_context_goes_on_to_the_provider() {
    let server = FakeOpenAi::start(Behaviour::Answer);
    let scratch = Scratch::new();
    let agent = agent_for(&scratch, &server);
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_TEST_KEY", "sk-test-123")
        .env(
            "TRACEPARENT",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .env("TRACESTATE", "congo=t61rcWkgMzE")
        .args(["--input", r#"{"topic": "tea"}"#])
        .output()
        .expect("kettle runs");
    final_state(&output);
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for request in &requests {
        let traceparent = &request.headers["traceparent"];
        assert!(
            traceparent.starts_with(&format!("00-{caller_trace}-")),
            "{traceparent}"
        );
        assert_eq!(request.headers["tracestate"], "congo=t61rcWkgMzE");
    }
}

#[test]
fn a_missing_api_key_variable_is_bad_input_that_names_it() {
    let server = FakeOpenAi::start(Behaviour::Answer);
    let scratch = Scratch::new();
    let agent = agent_for(&scratch, &server);
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("KETTLE_TEST_KEY"),
        "{}",
        stderr(&output)
    );
    assert!(server.requests().is_empty());
}

#[test]
fn ctrl_c_during_an_llm_call_flushes_every_span() {
    let server = FakeOpenAi::start(Behaviour::Hang);
    let scratch = Scratch::new();
    let agent = agent_for(&scratch, &server);
    let child = scratch
        .run_command(&agent)
        .env("KETTLE_TEST_KEY", "sk-test-123")
        .args(["--input", r#"{"topic": "tea"}"#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kettle starts");
    // The guest is now suspended inside llm.call, waiting for a server that never answers.
    server.wait_for_requests(1);
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let output = child.wait_with_output().expect("kettle exits");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("interrupted (Ctrl-C)"),
        "{}",
        stderr(&output)
    );

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(spans.len(), 3, "root, the node and its pending LLM call");
    assert_eq!(root.status.code, "error");
    assert!(
        root.status
            .message
            .as_deref()
            .unwrap_or("")
            .contains("interrupted")
    );
    let node = span(&spans, "node summarize");
    let call = span(&spans, "chat gpt-4o-mini");
    assert_eq!(call.parent_span_id.as_deref(), Some(node.span_id.as_str()));
    for pending in [node, call] {
        assert_eq!(pending.status.code, "error");
        assert_eq!(pending.attributes["kettle.cancelled"], true);
    }
}
