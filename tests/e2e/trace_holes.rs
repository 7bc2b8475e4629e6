//! What a hostile node does to the trace, and what the host keeps: every span of a run reaches
//! the file and the console, whatever burst the guests cause; the run's span budget refuses
//! guest and `chat` spans past it (never the host's) and says how many; the host's attributes
//! on a node span can be neither forged nor crowded out.

use crate::support::{Scratch, assert_whole_trace, children, final_state, repo, span, stderr};
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};

fn hostile() -> String {
    repo().join("tests/nodes/hostile").display().to_string()
}

/// A `dynamic_parallel` node `each` running the hostile node with `config` once per item of
/// `state.items`, all at once.
fn fan_out_agent(scratch: &Scratch, config: Value, settings: &str) -> std::path::PathBuf {
    scratch.agent(
        "agent.yaml",
        &format!(
            "name: holes\n{settings}nodes:\n  - name: each\n    type: dynamic_parallel\n    items: \"{{{{ state.items }}}}\"\n    item_var: item\n    component: {hostile}\n    config: {config}\n    output: results\n",
            hostile = hostile()
        ),
    )
}

fn items(n: usize) -> String {
    json!({ "items": (0..n).collect::<Vec<_>>() }).to_string()
}

fn count(spans: &[SpanRecord], prefix: &str) -> usize {
    spans.iter().filter(|s| s.name.starts_with(prefix)).count()
}

#[test]
fn a_burst_of_leaked_guest_spans_reaches_the_file_and_the_console_whole() {
    // 40 items leave 1000 spans open each (the per-node cap): 40,000 spans end in a burst,
    // more than the local exporters' queue holds.
    let (items_n, per_item) = (40, 1000);
    let scratch = Scratch::new();
    let agent = fan_out_agent(
        &scratch,
        json!({"mode": "trace-leak-spans", "spans": per_item}),
        "",
    );
    let output = scratch.run(
        &agent,
        &[
            "--input",
            &items(items_n),
            "--trace-exporter",
            "file,console",
        ],
    );
    let state = final_state(&output);
    assert_eq!(state["results"].as_array().map(Vec::len), Some(items_n));

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(root.name, "invoke_agent holes");
    assert_eq!(
        count(&spans, "leaked "),
        items_n * per_item,
        "every guest span is written"
    );
    assert_eq!(count(&spans, "item "), items_n);
    assert_eq!(count(&spans, "node each"), 1);
    let tree = stderr(&output);
    assert_eq!(
        tree.matches("leaked ").count(),
        items_n * per_item,
        "the console prints every guest span too"
    );
    assert!(tree.contains("invoke_agent holes"), "and the root");
}

#[test]
fn held_llm_streams_end_together_and_every_chat_span_is_written() {
    let (items_n, streams) = (4, 5000);
    let scratch = Scratch::new();
    let agent = fan_out_agent(
        &scratch,
        json!({"mode": "trace-hold-streams", "streams": streams}),
        "",
    );
    let output = scratch.run(&agent, &["--quiet", "--input", &items(items_n)]);
    let state = final_state(&output);
    let answered: u64 = state["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|result| result["state"]["answered"].as_u64().expect("answered"))
        .sum();
    let text = stderr(&output);
    assert!(
        text.contains("35 spans refused") && text.contains("settings.budget.max_spans (25)"),
        "the summary says how many spans were refused: {text}"
    );

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(root.attribute_i64("kettle.spans.refused"), Some(35));
    assert_eq!(
        count(&spans, "guest ") + count(&spans, "chat "),
        25,
        "guest and chat spans stop at the budget"
    );
    assert_eq!(
        answered as usize,
        count(&spans, "chat "),
        "an LLM call past the span budget is denied, never made without its span"
    );
    // The host's own spans are never refused.
    assert_eq!(count(&spans, "item "), 3);
    assert_eq!(count(&spans, "node each"), 1);
    let refused_by_nodes: i64 = spans
        .iter()
        .filter(|s| s.name.starts_with("item "))
        .filter_map(|s| s.attribute_i64("kettle.node.dropped_spans"))
        .sum();
    assert!(refused_by_nodes > 0, "nodes say they lost spans");
}

#[test]
fn a_guest_can_neither_forge_nor_crowd_out_the_hosts_attributes() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "forge.yaml",
        &format!(
            "name: forge\nnodes:\n  - name: forger\n    component: {}\n    config: {{mode: trace-forge, fillers: 200}}\n    limits: {{max_log_lines: 1}}\n",
            hostile()
        ),
    );
    let output = scratch.run(&agent, &[]);
    final_state(&output);

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    let run_id = root.attributes["kettle.run.id"].clone();
    let node = span(&spans, "node forger");
    assert_eq!(node.attributes["kettle.node.name"], "forger");
    assert_eq!(node.attributes["kettle.run.id"], run_id);
    assert!(
        !node.attributes.contains_key("error.type"),
        "the node succeeded: {:?}",
        node.attributes.get("error.type")
    );
    assert!(!node.attributes.contains_key("gen_ai.agent.name"));
    // Set by the host after the guest filled the span.
    assert_eq!(node.attribute_i64("kettle.node.leaked_spans"), Some(1));
    assert!(node.attribute_i64("kettle.log.dropped_lines").unwrap_or(0) > 0);
    let node_fillers = node
        .attributes
        .keys()
        .filter(|k| k.starts_with("filler."))
        .count();
    assert!(
        node_fillers > 0 && node_fillers < 128,
        "{node_fillers} guest attributes"
    );
    assert_eq!(
        node.attribute_i64("kettle.span.refused_attributes"),
        Some(4 + 200 - node_fillers as i64),
        "the forged keys and the fillers past the cap are counted"
    );

    let own = span(&spans, "own");
    assert_eq!(children(&spans, node).len(), 1);
    assert_eq!(own.attributes["kettle.span.origin"], "guest");
    assert_eq!(own.attributes["kettle.run.id"], run_id);
    assert_eq!(own.attributes["kettle.span.leaked"], true);
    let own_fillers = own
        .attributes
        .keys()
        .filter(|k| k.starts_with("filler."))
        .count();
    assert_eq!(
        own.attribute_i64("kettle.span.refused_attributes"),
        Some(2 + 200 - own_fillers as i64)
    );
}

#[test]
fn a_trace_that_cannot_be_written_whole_fails_the_run_naming_the_cause() {
    let scratch = Scratch::new();
    let agent = fan_out_agent(
        &scratch,
        json!({"mode": "trace-leak-spans", "spans": 3}),
        "",
    );
    // The trace folder's path is taken by a file: no span can be written.
    std::fs::write(scratch.traces(), "not a folder").expect("write");
    let output = scratch.run(&agent, &["--input", &items(2)]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(
        text.contains("the trace of run")
            && text.contains("is incomplete")
            && text.contains(&format!(
                "could not be written to the trace folder {}",
                scratch.traces().display()
            ))
            && text.contains("cannot write trace file"),
        "{text}"
    );
    let state: Value = serde_json::from_str(&crate::support::stdout(&output)).expect("state");
    assert_eq!(
        state["results"].as_array().map(Vec::len),
        Some(2),
        "the nodes ran"
    );
}
