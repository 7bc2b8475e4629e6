//! The trace survives what guests and failures do: leaked guest spans are closed by the host,
//! failed runs still write their whole trace.

use crate::support::{Scratch, assert_whole_trace, children, names, repo, span, stderr, stdout};

#[test]
fn leaked_guest_spans_parent_the_llm_call_and_are_closed_by_the_host() {
    let scratch = Scratch::new();
    let node = repo().join("tests/nodes/leaky-span");
    let agent = scratch.agent(
        "leaky.yaml",
        &format!(
            "name: leaky\nnodes:\n  - name: leaky\n    component: {}\n",
            node.display()
        ),
    );
    let output = scratch.run(&agent, &[]);
    assert!(output.status.success(), "{}", stderr(&output));

    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node_span = span(&spans, "node leaky");
    assert_eq!(node_span.attribute_i64("kettle.node.leaked_spans"), Some(2));
    let outer = span(&spans, "outer");
    let inner = span(&spans, "inner");
    assert_eq!(names(&children(&spans, node_span)), ["outer"]);
    assert_eq!(names(&children(&spans, outer)), ["inner"]);
    assert_eq!(
        names(&children(&spans, inner)),
        ["chat mock-1", "closed"],
        "the LLM call made inside the open guest span is its child"
    );
    for leaked in [outer, inner] {
        assert_eq!(
            leaked.attributes["kettle.span.leaked"], true,
            "{} is marked leaked",
            leaked.name
        );
        assert_eq!(leaked.status.code, "error");
        assert!(
            leaked
                .status
                .message
                .as_deref()
                .unwrap_or("")
                .contains("left open")
        );
        assert!(
            leaked.end_time_unix_nano <= node_span.end_time_unix_nano,
            "closed before the node span ended"
        );
    }
    assert_eq!(outer.attribute_i64("test.depth"), Some(1));
    let logs: Vec<_> = inner.events.iter().filter(|e| e.name == "log").collect();
    assert_eq!(
        logs.len(),
        1,
        "the guest's log line is an event of its innermost open span"
    );
    assert_eq!(
        logs[0].attributes["log.message"],
        "answered inside the inner span"
    );
    assert_eq!(logs[0].attributes["log.severity"], "info");
    assert!(
        stderr(&output).contains("answered inside the inner span"),
        "and reaches the host's log"
    );
    let closed = span(&spans, "closed");
    assert!(!closed.attributes.contains_key("kettle.span.leaked"));
    assert_eq!(closed.status.code, "unset");
}

#[test]
fn a_failed_run_exits_1_and_still_writes_its_whole_trace() {
    let scratch = Scratch::new();
    let node = repo().join("examples/hello/nodes/summarize");
    // No topic in the state and no default in the config: the node reports invalid input.
    let agent = scratch.agent(
        "failing.yaml",
        &format!(
            "name: failing\nnodes:\n  - name: summarize\n    component: {}\n",
            node.display()
        ),
    );
    let output = scratch.run(&agent, &["--input", r#"{"other": 1}"#]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("node `summarize` failed (invalid_input)"),
        "{text}"
    );
    let state: serde_json::Value =
        serde_json::from_str(&stdout(&output)).expect("the state so far is printed");
    assert_eq!(state, serde_json::json!({"other": 1}));

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(root.status.code, "error");
    let node_span = span(&spans, "node summarize");
    assert_eq!(node_span.status.code, "error");
    assert_eq!(node_span.attributes["error.type"], "invalid_input");
    assert!(
        node_span
            .status
            .message
            .as_deref()
            .unwrap_or("")
            .contains("give a topic")
    );
}
