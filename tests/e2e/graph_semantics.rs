//! TEA's graph semantics, one agent per construct, each with its exact final state: implicit
//! chaining, `goto` (precedence, loops), conditional edges both ways, nested parallel groups,
//! `dynamic_parallel` with `fail_fast` true and false, `while_loop`, `steps:`, expressions,
//! the step limit, `--events` and `kettle graph`.

use crate::support::{
    Scratch, assert_whole_trace, children, final_state, names, repo, span, stderr,
};
use serde_json::{Value, json};

fn run(scratch: &Scratch, yaml: &str, input: Value) -> std::process::Output {
    let agent = scratch.agent("agent.yaml", yaml);
    scratch.run(&agent, &["--quiet", "--input", &input.to_string()])
}

fn state_of(scratch: &Scratch, yaml: &str, input: Value) -> Value {
    final_state(&run(scratch, yaml, input))
}

#[test]
fn goto_beats_edges_beats_implicit_chaining_and_loops() {
    let yaml = r#"
name: precedence
nodes:
  - name: a
    run: {type: expression, value: "'a'", output_key: trail}
    goto: c
  - name: b
    run: {type: expression, value: "state.trail ~ 'b'", output_key: trail}
  - name: c
    run: {type: expression, value: "state.trail ~ 'c'", output_key: trail}
    goto:
      - if: "state.trail == 'ac'"
        to: b
      - to: __end__
edges:
  - {from: a, to: b}
"#;
    // a → c (goto beats the edge) → b (first rule) → c (implicit chaining) → end.
    assert_eq!(
        state_of(&Scratch::new(), yaml, json!({})),
        json!({"trail": "acbc"})
    );
}

#[test]
fn a_goto_loop_counts_until_its_condition_fails() {
    let yaml = r#"
name: loop
nodes:
  - name: init
    run: {type: expression, value: "0", output_key: count}
  - name: inc
    run: {type: expression, value: "state.count + 1", output_key: count}
    goto:
      - if: "state.count < 3"
        to: inc
      - to: done
  - name: done
    run: {type: expression, value: "state.get('count', 0) * 10", output_key: result}
"#;
    let scratch = Scratch::new();
    let output = run(&scratch, yaml, json!({}));
    assert_eq!(final_state(&output), json!({"count": 3, "result": 30}));
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(
        names(&children(&spans, root)),
        ["node init", "node inc", "node inc", "node inc", "node done"]
    );
}

#[test]
fn goto_conditions_read_the_node_result() {
    let yaml = r#"
name: result
nodes:
  - name: attempt
    run: {type: expression, value: "state.get('tries', 0) + 1", output_key: tries}
    goto:
      - if: "result.tries < 3"
        to: attempt
      - to: __end__
"#;
    assert_eq!(
        state_of(&Scratch::new(), yaml, json!({})),
        json!({"tries": 3})
    );
}

#[test]
fn conditional_edges_go_both_ways() {
    let yaml = r#"
name: conditional
nodes:
  - name: validate
    run: {type: expression, value: 'state["input"] | length > 3', output_key: is_valid}
  - name: process
    run: {type: expression, value: "'processed ' ~ state.input", output_key: result}
  - name: error_handler
    run: {type: expression, value: "'too short'", output_key: result}
edges:
  - from: validate
    to: process
    condition: {type: expression, value: 'state["is_valid"] == True'}
    when: true
  - from: validate
    to: error_handler
    condition: {type: expression, value: 'state["is_valid"] == True'}
    when: false
  - {from: process, to: __end__}
  - {from: error_handler, to: __end__}
"#;
    let scratch = Scratch::new();
    assert_eq!(
        state_of(&scratch, yaml, json!({"input": "kettle"})),
        json!({"input": "kettle", "is_valid": true, "result": "processed kettle"})
    );
    assert_eq!(
        state_of(&scratch, yaml, json!({"input": "ab"})),
        json!({"input": "ab", "is_valid": false, "result": "too short"})
    );
}

#[test]
fn when_shorthands_negate_state_keys_and_take_expressions() {
    let yaml = r#"
name: when
nodes:
  - name: check
    run: {type: expression, value: "state.count > 0", output_key: should_process}
  - name: proceed
    run: {type: expression, value: "'proceeded'", output_key: outcome}
    goto: __end__
  - name: skip
    run: {type: expression, value: "'skipped'", output_key: outcome}
edges:
  - {from: check, to: skip, when: "!should_process"}
  - {from: check, to: proceed, when: "state['count'] > 0"}
"#;
    let scratch = Scratch::new();
    assert_eq!(
        state_of(&scratch, yaml, json!({"count": 2})),
        json!({"count": 2, "should_process": true, "outcome": "proceeded"})
    );
    assert_eq!(
        state_of(&scratch, yaml, json!({"count": 0})),
        json!({"count": 0, "should_process": false, "outcome": "skipped"})
    );
}

#[test]
fn no_matching_route_fails_with_the_conditions_named() {
    let yaml = r#"
name: stuck
nodes:
  - name: only
    run: {type: expression, value: "1", output_key: x}
    goto:
      - if: "state.x > 5"
        to: __end__
"#;
    let output = run(&Scratch::new(), yaml, json!({}));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "node `only` failed (no_route): none of the conditions on the way out holds (`state.x > 5`)"
        ),
        "{}",
        stderr(&output)
    );
}

const NESTED: &str = r#"
name: nested
nodes:
  - name: fork
    run: {type: expression, value: "1", output_key: base}
  - name: left
    run: {type: expression, value: "state.base + 10", output_key: left}
  - name: left_a
    run: {type: expression, value: "state.left + 1", output_key: leaf}
  - name: left_b
    run: {type: expression, value: "state.left + 2", output_key: leaf}
  - name: left_join
    fan_in: true
    run: {type: expression, value: "parallel_results | map(attribute='leaf') | sum", output_key: left_total}
  - name: right
    run: {type: expression, value: "state.base + 100", output_key: right}
  - name: join
    fan_in: true
    run: {type: expression, value: "[parallel_results[0].left_total, parallel_results[1].right]", output_key: totals}
edges:
  - {from: fork, to: left, type: parallel, fan_in: join}
  - {from: fork, to: right, type: parallel, fan_in: join}
  - {from: left, to: left_a, type: parallel, fan_in: left_join}
  - {from: left, to: left_b, type: parallel, fan_in: left_join}
  - {from: left_a, to: left_join}
  - {from: left_b, to: left_join}
  - {from: left_join, to: join}
  - {from: right, to: join}
  - {from: join, to: __end__}
"#;

#[test]
fn nested_parallel_groups_fan_in_with_branch_states_in_edge_order() {
    let scratch = Scratch::new();
    let state = state_of(&scratch, NESTED, json!({}));
    assert_eq!(
        state,
        json!({
            "base": 1,
            "totals": [25, 101],
            "parallel_results": [
                {
                    "base": 1,
                    "left": 11,
                    "left_total": 25,
                    "parallel_results": [
                        {"base": 1, "left": 11, "leaf": 12},
                        {"base": 1, "left": 11, "leaf": 13},
                    ],
                },
                {"base": 1, "right": 101},
            ],
        })
    );

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(spans.len(), 10);
    assert_eq!(
        names(&children(&spans, root)),
        ["node fork", "parallel fork", "node join"]
    );
    let outer = span(&spans, "parallel fork");
    assert_eq!(outer.attribute_i64("kettle.parallel.branches"), Some(2));
    let mut outer_children = names(&children(&spans, outer));
    outer_children.sort();
    assert_eq!(
        outer_children,
        ["node left", "node left_join", "node right", "parallel left"]
    );
    let mut inner_children = names(&children(&spans, span(&spans, "parallel left")));
    inner_children.sort();
    assert_eq!(inner_children, ["node left_a", "node left_b"]);
}

#[test]
fn a_failing_branch_fails_the_run() {
    let node = repo().join("examples/tea/nodes/validate-item");
    let yaml = format!(
        r#"
name: branch-fails
nodes:
  - name: fork
    run: {{type: expression, value: "1", output_key: base}}
  - name: good
    run: {{type: expression, value: "'fine'", output_key: good}}
  - name: bad
    component: {node}
  - name: join
    fan_in: true
    run: {{type: expression, value: "parallel_results | length", output_key: n}}
edges:
  - {{from: fork, to: good, type: parallel, fan_in: join}}
  - {{from: fork, to: bad, type: parallel, fan_in: join}}
  - {{from: good, to: join}}
  - {{from: bad, to: join}}
"#,
        node = node.display()
    );
    let scratch = Scratch::new();
    let output = run(&scratch, &yaml, json!({"item": {"id": 7, "value": -1}}));
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "node `bad` failed (failed): the node reported an error (failed): Invalid value -1 for item 7"
        ),
        "{}",
        stderr(&output)
    );
    let state: Value = serde_json::from_slice(&output.stdout).expect("state");
    assert_eq!(state, json!({"item": {"id": 7, "value": -1}, "base": 1}));
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(root.status.code, "error");
    assert_eq!(span(&spans, "parallel fork").status.code, "error");
    assert!(spans.iter().all(|s| s.name != "node join"));
}

fn batch_validator(fail_fast: bool) -> String {
    let text =
        std::fs::read_to_string(repo().join("examples/tea/batch-validator.yaml")).expect("example");
    let nodes = repo().join("examples/tea/nodes");
    text.replace(
        "component: nodes/",
        &format!("component: {}/", nodes.display()),
    )
    .replace("fail_fast: true", &format!("fail_fast: {fail_fast}"))
}

#[test]
fn dynamic_parallel_fail_fast_cancels_the_remaining_items_and_goes_on_to_the_fan_in() {
    // One item at a time, so which items are cancelled is fixed: 3 and 4, after item 2 fails.
    let scratch = Scratch::new();
    let yaml = batch_validator(true).replace("max_concurrency: 2", "max_concurrency: 1");
    let state = state_of(&scratch, &yaml, json!({}));
    assert_eq!(
        state["report"],
        json!({"passed_count": 2, "failed_count": 3})
    );
    let results = state["validation_results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    assert_eq!(
        results[2]["error"],
        json!({
            "node": "validate_all",
            "kind": "failed",
            "message": "step `check_value`: the node reported an error (failed): Invalid value -50 for item 3"
        })
    );
    for i in [3, 4] {
        assert_eq!(
            results[i],
            json!({"index": i, "item": state["items_to_validate"][i], "error": {
                "node": "validate_all", "kind": "cancelled",
                "message": "cancelled: an earlier item failed and `fail_fast` is set"}})
        );
    }
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let failed = span(&spans, "item 2");
    assert_eq!(failed.status.code, "error");
    assert_eq!(failed.attribute_i64("kettle.parallel.index"), Some(2));
    assert!(
        spans
            .iter()
            .all(|s| s.name != "item 3" && s.name != "item 4")
    );
    assert_eq!(span(&spans, "node report").status.code, "ok");
}

#[test]
fn dynamic_parallel_without_fail_fast_collects_errors_in_item_order() {
    let scratch = Scratch::new();
    let state = state_of(&scratch, &batch_validator(false), json!({}));
    assert_eq!(
        state["report"],
        json!({"passed_count": 4, "failed_count": 1})
    );
    let results = state["validation_results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], json!(i));
        assert_eq!(result["item"], state["items_to_validate"][i]);
    }
    assert_eq!(
        results[2]["error"],
        json!({
            "node": "validate_all",
            "kind": "failed",
            "message": "step `check_value`: the node reported an error (failed): Invalid value -50 for item 3"
        })
    );
    assert!(results[2].get("state").is_none());
    let first = &results[0]["state"];
    assert_eq!(
        first["validated_item"],
        json!({"id": 1, "value": 100, "validation_status": "passed"})
    );
    assert_eq!(first["log_entry"], json!("Item 1 validated successfully"));
    assert_eq!(first["idx"], json!(0));
    assert_eq!(
        first["item"],
        json!({"id": 1, "value": 100, "type": "valid"})
    );
    assert_eq!(
        results[4]["state"]["log_entry"],
        json!("Item 5 validated successfully")
    );

    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node = span(&spans, "node validate_all");
    assert_eq!(node.attribute_i64("kettle.parallel.items"), Some(5));
    assert_eq!(node.attribute_i64("kettle.parallel.failed"), Some(1));
    let items = children(&spans, node);
    assert_eq!(items.len(), 5);
    for item in items {
        assert_eq!(
            names(&children(&spans, item)),
            if item.name == "item 2" {
                vec!["step check_value"]
            } else {
                vec!["step check_value", "step log_success"]
            }
        );
    }
}

#[test]
fn the_step_limit_names_the_loop() {
    let yaml = r#"
name: forever
settings: {max_steps: 5}
nodes:
  - name: start
    run: {type: expression, value: "0", output_key: count}
  - name: ping
    run: {type: expression, value: "state.count + 1", output_key: count}
    goto: pong
  - name: pong
    run: {type: expression, value: "state.count + 1", output_key: count}
    goto: ping
"#;
    let scratch = Scratch::new();
    let output = run(&scratch, yaml, json!({}));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "the run made 5 node executions without reaching the end, looping through `ping` → `pong` → `ping`; the next node was `ping`"
        ),
        "{}",
        stderr(&output)
    );
    let state: Value = serde_json::from_slice(&output.stdout).expect("state");
    assert_eq!(state, json!({"count": 4}));

    let agent = scratch.agent("agent.yaml", yaml);
    let output = scratch.run(&agent, &["--quiet", "--max-steps", "3"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("the run made 3 node executions"),
        "{}",
        stderr(&output)
    );
    let state: Value = serde_json::from_slice(&output.stdout).expect("state");
    assert_eq!(state, json!({"count": 2}));
}

#[test]
fn while_loop_records_iterations_and_exit_reason() {
    let yaml = r#"
name: bounded
nodes:
  - name: spin
    type: while_loop
    condition: "state.get('stop') != True"
    max_iterations: 3
    body:
      - name: bump
        run: {type: expression, value: "state.n + 1", output_key: n}
"#;
    let scratch = Scratch::new();
    assert_eq!(state_of(&scratch, yaml, json!({"n": 0})), json!({"n": 3}));
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node = span(&spans, "node spin");
    assert_eq!(
        node.attributes["kettle.loop.exit_reason"],
        "max_iterations_reached"
    );
    assert_eq!(node.attribute_i64("kettle.loop.iterations"), Some(3));
    assert_eq!(
        names(&children(&spans, node)),
        ["iteration 1", "iteration 2", "iteration 3"]
    );
    assert_eq!(
        names(&children(&spans, span(&spans, "iteration 2"))),
        ["step bump"]
    );
}

#[test]
fn steps_run_in_order_each_under_its_own_span() {
    let yaml = r#"
name: steps
nodes:
  - name: write
    steps:
      - name: draft
        uses: llm.call
        with: {prompt: "Draft about {{ state.topic }}"}
        output: draft
      - name: measure
        run: {type: expression, value: "state.draft.content | length", output_key: draft_chars}
"#;
    let scratch = Scratch::new();
    assert_eq!(
        state_of(&scratch, yaml, json!({"topic": "tea"})),
        json!({
            "topic": "tea",
            "draft": {
                "content": "[mock] Draft about tea",
                "model": "mock-1",
                "finish_reason": "stop",
                "usage": {"input_tokens": 3, "output_tokens": 4},
                "tool_calls": [],
            },
            "draft_chars": 22,
        })
    );
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node = span(&spans, "node write");
    assert_eq!(
        names(&children(&spans, node)),
        ["step draft", "step measure"]
    );
    assert_eq!(
        names(&children(&spans, span(&spans, "step draft"))),
        ["chat mock-1"]
    );
}

#[test]
fn expressions_speak_python_and_missing_keys_are_named() {
    let yaml = r#"
name: python
variables: {limit: 2}
nodes:
  - name: check
    run:
      type: expression
      value: 'len(state.get("items", [])) > variables.limit and not state["done"] == True'
      output_key: has_items
  - name: upper
    run: {type: expression, value: "state.name.upper()", output_key: shout}
"#;
    let scratch = Scratch::new();
    assert_eq!(
        state_of(
            &scratch,
            yaml,
            json!({"items": [1, 2, 3], "done": false, "name": "tea"})
        ),
        json!({"items": [1, 2, 3], "done": false, "name": "tea", "has_items": true, "shout": "TEA"})
    );
    let output = run(&scratch, yaml, json!({"items": [], "done": false}));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "node `upper` failed (expression): field `run.value` (`state.name.upper()`): `state.name` is not defined"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn events_stream_one_json_line_per_node_start_and_finish() {
    let yaml = r#"
name: events
nodes:
  - name: one
    run: {type: expression, value: "1", output_key: x}
  - name: two
    run: {type: expression, value: "state.x + 1", output_key: x}
"#;
    let scratch = Scratch::new();
    let agent = scratch.agent("agent.yaml", yaml);
    let output = scratch.run(&agent, &["--quiet", "--events"]);
    assert_eq!(final_state(&output), json!({"x": 2}));
    let events: Vec<Value> = stderr(&output)
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("an event is JSON"))
        .collect();
    let summary: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap_or_default().to_string(),
                e["node"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("node_start".into(), "one".into()),
            ("node_finish".into(), "one".into()),
            ("node_start".into(), "two".into()),
            ("node_finish".into(), "two".into()),
        ]
    );
    assert_eq!(events[0]["kind"], "expression");
    assert_eq!(events[1]["status"], "ok");
    assert!(events[1]["duration_ms"].is_u64());
    let run_ids: std::collections::HashSet<&str> =
        events.iter().filter_map(|e| e["run_id"].as_str()).collect();
    assert_eq!(run_ids.len(), 1);
}

#[test]
fn graph_prints_conditions_and_parallel_groups() {
    let scratch = Scratch::new();
    let agent = scratch.agent("nested.yaml", NESTED);
    let output = scratch
        .kettle()
        .args(["graph"])
        .arg(&agent)
        .output()
        .expect("kettle graph");
    assert!(output.status.success(), "{}", stderr(&output));
    let mermaid = String::from_utf8_lossy(&output.stdout);
    for line in [
        "flowchart TD",
        "    subgraph p0[\"parallel fork\"]",
        "    n0 ==>|\"parallel\"| n1",
        "    n0 -.->|\"fan-in\"| n6",
        "    n1 ==>|\"parallel\"| n2",
        "    n6 --> __end__",
        "    n4[\"left_join<br/>expression, fan-in\"]",
    ] {
        assert!(
            mermaid.lines().any(|l| l == line),
            "no `{line}` in:\n{mermaid}"
        );
    }

    let agent = scratch.agent(
        "cond.yaml",
        "name: c\nnodes:\n  - name: a\n    run: {type: expression, value: '1', output_key: x}\n    goto:\n      - if: 'state.x > 0'\n        to: b\n      - to: __end__\n  - name: b\n    uses: llm.call\n    with: {prompt: hi}\n",
    );
    let output = scratch
        .kettle()
        .args(["graph", "--format", "dot"])
        .arg(&agent)
        .output()
        .expect("kettle graph");
    assert!(output.status.success(), "{}", stderr(&output));
    let dot = String::from_utf8_lossy(&output.stdout);
    assert!(dot.starts_with("digraph \"c\" {\n"), "{dot}");
    for line in [
        "    \"n0\" -> \"n1\" [label=\"state.x > 0\"];",
        "    \"n0\" -> \"__end__\";",
        "    \"__start__\" -> \"n0\";",
        "    n1 [shape=box, label=\"b\\nllm.call\"];",
    ] {
        assert!(dot.lines().any(|l| l == line), "no `{line}` in:\n{dot}");
    }
}
