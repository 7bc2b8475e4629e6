//! `settings.tracing.conventions`: with `openinference`, every kind of host span carries the
//! OpenInference attributes backends such as Phoenix read (the span kind, agent, session,
//! graph node and its parent, node input and output, the LLM's model, tokens, messages and
//! tools), guest spans get none, and with `genai` (the default) none of them is added.

use crate::support::*;
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};

/// A fan-out (an LLM call with a tool, and a component making a call and a guest span), a
/// fan-in, a `while_loop` and a `dynamic_parallel` with steps: every span kind the host makes.
fn kinds_agent(scratch: &Scratch, conventions: &str) -> std::path::PathBuf {
    scratch.agent(
        "kinds.yaml",
        &format!(
            r#"name: kinds
settings:
  tracing: {{capture_content: true{conventions}}}
nodes:
  - name: fork
    run: {{type: expression, value: "'go'", output_key: phase}}
  - name: left
    uses: llm.tools
    with:
      prompt: "weather in {{{{ state.topic }}}}?"
      tools: [{{name: weather, description: Current weather in a city, parameters: {{type: object, properties: {{city: {{type: string}}}}}}}}]
    output: left
  - name: right
    component: {shapes}
    config: {{depth: 1, calls: 1}}
  - name: join
    fan_in: true
    run: {{type: expression, value: "'joined'", output_key: joined}}
  - name: spin
    type: while_loop
    condition: "state.n < 2"
    max_iterations: 5
    body:
      - name: bump
        run: {{type: expression, value: "state.n + 1", output_key: n}}
  - name: each
    type: dynamic_parallel
    items: "{{{{ state['items'] }}}}"
    steps:
      - name: twice
        run: {{type: expression, value: "item * 2", output_key: doubled}}
    output: doubled_all
edges:
  - {{from: __start__, to: fork}}
  - {{from: fork, to: left, type: parallel, fan_in: join}}
  - {{from: fork, to: right, type: parallel, fan_in: join}}
  - {{from: left, to: join}}
  - {{from: right, to: join}}
  - {{from: join, to: spin}}
  - {{from: spin, to: each}}
  - {{from: each, to: __end__}}
"#,
            shapes = repo().join("tests/nodes/trace-shapes").display()
        ),
    )
}

fn run_kinds(conventions: &str) -> Vec<SpanRecord> {
    let scratch = Scratch::new();
    let agent = kinds_agent(&scratch, conventions);
    let output = scratch.run(
        &agent,
        &[
            "--input",
            r#"{"topic": "Bergen", "session_id": "s-42", "n": 0, "items": [1, 2]}"#,
        ],
    );
    final_state(&output);
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    spans
}

fn kind(span: &SpanRecord) -> Option<&str> {
    span.attributes
        .get("openinference.span.kind")
        .and_then(Value::as_str)
}

fn is_openinference_key(key: &str) -> bool {
    key.starts_with("openinference.")
        || key.starts_with("llm.")
        || key.starts_with("graph.")
        || key == "agent.name"
        || key == "session.id"
}

#[test]
fn openinference_conventions_mark_every_span_kind() {
    let spans = run_kinds(", conventions: openinference");
    let root = span(&spans, "invoke_agent kinds");
    assert_eq!(kind(root), Some("AGENT"));
    assert_eq!(root.attributes["agent.name"], "kinds");
    assert_eq!(root.attributes["session.id"], "s-42");
    assert_eq!(root.attributes["graph.node.id"], "kinds");

    for (node, parent) in [
        ("fork", "kinds"),
        ("left", "fork"),
        ("right", "fork"),
        ("join", "kinds"),
        ("spin", "kinds"),
        ("each", "kinds"),
    ] {
        let s = span(&spans, &format!("node {node}"));
        assert_eq!(kind(s), Some("CHAIN"), "node {node}");
        assert_eq!(s.attributes["graph.node.id"], node);
        assert_eq!(s.attributes["graph.node.parent_id"], parent, "node {node}");
        assert_eq!(s.attributes["input.mime_type"], "application/json");
        assert!(s.attributes.contains_key("input.value"), "node {node}");
    }
    let join = span(&spans, "node join");
    assert_eq!(join.attributes["output.value"], r#"{"joined":"joined"}"#);
    let fork_input: Value = serde_json::from_str(
        span(&spans, "node fork").attributes["input.value"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(fork_input["topic"], "Bergen");

    for name in [
        "parallel fork",
        "iteration 1",
        "iteration 2",
        "step bump",
        "item 0",
        "item 1",
        "step twice",
    ] {
        let named: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == name).collect();
        assert!(!named.is_empty(), "a `{name}` span");
        for s in named {
            assert_eq!(kind(s), Some("CHAIN"), "{name}");
            assert!(!s.attributes.contains_key("graph.node.id"), "{name}");
        }
    }

    let chats: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.name.starts_with("chat "))
        .collect();
    assert_eq!(chats.len(), 2, "the tool call and the component's call");
    for chat in &chats {
        assert_eq!(kind(chat), Some("LLM"));
        assert!(chat.attributes["llm.model_name"].is_string());
        let prompt = chat
            .attribute_i64("llm.token_count.prompt")
            .expect("prompt tokens");
        let completion = chat
            .attribute_i64("llm.token_count.completion")
            .expect("completion tokens");
        assert_eq!(
            chat.attribute_i64("llm.token_count.total"),
            Some(prompt + completion)
        );
        assert_eq!(chat.attributes["llm.input_messages.0.message.role"], "user");
        assert!(chat.attributes["input.value"].is_string());
        assert_eq!(
            chat.attributes["llm.output_messages.0.message.role"],
            "assistant"
        );
        assert_eq!(
            chat.attributes["output.value"],
            chat.attributes["llm.output_messages.0.message.content"]
        );
    }
    let tools = chats
        .iter()
        .find(|c| c.attributes.contains_key("llm.tools.0.tool.json_schema"))
        .expect("the llm.tools call lists its tool");
    assert_eq!(
        tools.attributes["llm.input_messages.0.message.content"],
        "weather in Bergen?"
    );
    let schema: Value = serde_json::from_str(
        tools.attributes["llm.tools.0.tool.json_schema"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        schema,
        json!({"type": "function", "function": {"name": "weather", "description": "Current weather in a city",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})
    );

    let guest: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.attributes.get("kettle.span.origin") == Some(&json!("guest")))
        .collect();
    assert!(!guest.is_empty());
    for s in guest {
        assert!(
            !s.attributes.keys().any(|k| is_openinference_key(k)),
            "a guest span gets no OpenInference attribute: {:?}",
            s.attributes
        );
    }
    assert!(
        spans
            .iter()
            .all(|s| !s.attributes.contains_key("kettle.graph.parent")),
        "Kettle's bookkeeping is not exported"
    );
}

#[test]
fn genai_conventions_add_no_openinference_attribute() {
    for conventions in ["", ", conventions: genai"] {
        let spans = run_kinds(conventions);
        for s in &spans {
            let added: Vec<&String> = s
                .attributes
                .keys()
                .filter(|k| is_openinference_key(k) || k.as_str() == "kettle.graph.parent")
                .collect();
            assert!(added.is_empty(), "`{}` has {added:?}", s.name);
            if s.name.starts_with("node ") {
                assert!(!s.attributes.contains_key("input.value"), "{}", s.name);
                assert!(!s.attributes.contains_key("output.value"), "{}", s.name);
            }
        }
    }
}

#[test]
fn an_unknown_convention_is_refused_with_the_choices() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "bad.yaml",
        "name: bad\nsettings:\n  tracing: {conventions: phoenix}\nnodes:\n  - name: a\n    run: {type: expression, value: \"1\", output_key: a}\n",
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("phoenix") && text.contains("openinference"),
        "{text}"
    );
}
