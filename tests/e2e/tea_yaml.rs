//! Agents written in TEA's YAML run unchanged: TEA's keys with TEA's meaning (`initial_state`,
//! `action:`, `output:` mappings, string `condition:`, `settings.parallel`, documentation
//! keys), Python built-ins in expressions, pass-through nodes, missing keys as TEA documents
//! them, and `kettle validate` reporting every mistake at once, in plain words.

use crate::support::openai_server::{Behaviour, FakeOpenAi};
use crate::support::{Scratch, final_state, stderr, stdout};
use serde_json::json;

fn validate(scratch: &Scratch, yaml: &str, extra: &[&str]) -> std::process::Output {
    let agent = scratch.agent("agent.yaml", yaml);
    scratch
        .kettle()
        .arg("validate")
        .args(extra)
        .arg(&agent)
        .output()
        .expect("kettle validate")
}

/// The lines of `kettle validate` that start with the agent file's path.
fn located(output: &std::process::Output, prefix: &str) -> Vec<String> {
    stderr(output)
        .lines()
        .filter_map(|l| l.split_once(prefix).map(|(_, rest)| rest.to_string()))
        .collect()
}

const TEA_AGENT: &str = r#"
version: "1.0"
description: A TEA agent, unchanged
config:
  raise_exceptions: true
initial_state:
  count: 2
  topic: green tea
settings:
  llm: {provider: mock, responses: ["Sencha"]}
  parallel: {strategy: thread, max_workers: 2}
nodes:
  - name: start
    description: Does nothing; TEA runs it as a pass-through
  - name: ask
    description: Names a tea
    action: llm.call
    with:
      prompt: "Name a {{ state.topic }}{{ state.hint }}"
      timeout: 30
    output:
      tea: "{{ result.content }}"
      asked: true
  - name: label
    run:
      type: expression
      value: "'%s x%d (%s)' % (state.tea, state.count, str(max(state.count, 3)))"
  - name: branch
    run: {type: expression, value: "int('4') + round(abs(-1.5))", output_key: n}
  - name: done
    run: {type: expression, value: "sorted([3, 1, 2])", output_key: ordered}
edges:
  - {from: __start__, to: start}
  - {from: start, to: ask}
  - {from: ask, to: label}
  - {from: label, to: branch}
  - {from: branch, to: done, condition: "state.n > 5"}
  - {from: branch, to: __end__, condition: "{{ state.n <= 5 }}"}
  - {from: done, to: __end__}
"#;

#[test]
fn a_tea_agent_runs_with_teas_meaning_of_every_key() {
    let scratch = Scratch::new();
    let agent = scratch.agent("agent.yaml", TEA_AGENT);
    let output = scratch.run(&agent, &["--quiet", "--input", r#"{"count": 5}"#]);
    // `initial_state` seeds the state and `--input` replaces its keys; `action:` is `uses:`;
    // the `output:` mapping renders over `result`; an expression without `output_key`
    // writes `result`; `'%s' % (...)`, str, max, int, round, abs, sorted are Python's;
    // `state.hint` (missing, read directly) renders as nothing; the string condition routes.
    assert_eq!(
        final_state(&output),
        json!({
            "count": 5,
            "topic": "green tea",
            "tea": "Sencha",
            "asked": true,
            "result": "Sencha x5 (5)",
            "n": 6,
            "ordered": [1, 2, 3],
        })
    );

    let valid = validate(&scratch, TEA_AGENT, &["--strict"]);
    assert_eq!(valid.status.code(), Some(0), "{}", stderr(&valid));
    assert!(
        stdout(&valid).contains("valid (5 nodes)"),
        "{}",
        stdout(&valid)
    );

    // Without `name:`, the agent is named after its file; descriptions are shown in the graph.
    let graph = scratch
        .kettle()
        .arg("graph")
        .arg(&agent)
        .output()
        .expect("kettle graph");
    assert_eq!(graph.status.code(), Some(0), "{}", stderr(&graph));
    let text = stdout(&graph);
    assert!(text.contains("Names a tea"), "{text}");
    assert!(
        text.contains("Does nothing; TEA runs it as a pass-through"),
        "{text}"
    );
}

#[test]
fn missing_keys_fail_expressions_and_follow_tea_in_templates() {
    let scratch = Scratch::new();
    let expression = scratch.agent(
        "expression.yaml",
        "nodes:\n  - name: read\n    run: {type: expression, value: \"state['nope']\", output_key: x}\n",
    );
    let output = scratch.run(&expression, &["--quiet"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output)
            .contains("node `read` failed (expression): field `run.value` (`state['nope']`):"),
        "{}",
        stderr(&output)
    );

    // In a template, a key read directly is None: null as the whole value, nothing inside
    // text, and `default` replaces it; reading into it is an error naming it.
    let templates = scratch.agent(
        "templates.yaml",
        r#"
settings: {llm: {provider: mock}}
nodes:
  - name: ask
    uses: llm.call
    with: {prompt: "About {{ state.topic }}{{ state.style | default('tea') }}"}
    output:
      answer: "{{ result.content }}"
      missing: "{{ state.nothing }}"
"#,
    );
    assert_eq!(
        final_state(&scratch.run(&templates, &["--quiet"])),
        json!({"answer": "[mock] About tea", "missing": null})
    );
    let nested = scratch.agent(
        "nested.yaml",
        "settings: {llm: {provider: mock}}\nnodes:\n  - name: ask\n    uses: llm.call\n    with: {prompt: \"About {{ state.topic.name }}\"}\n",
    );
    let output = scratch.run(&nested, &["--quiet"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "node `ask` failed (template): field `with.prompt`: `state.topic` is not defined"
        ),
        "{}",
        stderr(&output)
    );
}

#[test]
fn null_items_are_no_items_and_the_fan_in_still_runs() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        r#"
name: empty
nodes:
  - name: each
    type: dynamic_parallel
    items: "{{ state.urls }}"
    action: {run: {type: expression, value: "item * 2", output_key: doubled}}
    fan_in: count
    output: results
  - name: count
    run: {type: expression, value: "len(state.results)", output_key: total}
"#,
    );
    assert_eq!(
        final_state(&scratch.run(&agent, &["--quiet"])),
        json!({"results": [], "total": 0})
    );
}

#[test]
fn unreachable_nodes_and_edges_never_taken_are_warnings_and_strict_makes_them_errors() {
    let yaml = "name: w\nnodes:\n  - name: one\n    run: {type: expression, value: \"1\", output_key: x}\n    goto: __end__\n  - name: orphan\n    run: {type: expression, value: \"2\", output_key: y}\nedges:\n  - {from: __start__, to: one}\n  - {from: __start__, to: orphan}\n";
    let scratch = Scratch::new();
    let output = validate(&scratch, yaml, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        located(&output, "warning: "),
        [
            format!(
                "{}:6:5: node `orphan` is unreachable: no route from __start__ leads to it",
                scratch.path().join("agent.yaml").display()
            ),
            format!(
                "{}:10:6: `__start__` already has an edge (edges[0]) that is always taken, so this one never is",
                scratch.path().join("agent.yaml").display()
            ),
        ]
    );
    assert!(
        stdout(&output).contains("valid (2 nodes, 2 warnings)"),
        "{}",
        stdout(&output)
    );

    let strict = validate(&scratch, yaml, &["--strict"]);
    assert_eq!(strict.status.code(), Some(2), "{}", stderr(&strict));
    assert!(stderr(&strict).contains("has 2 problems (warnings count as problems with --strict)"));

    // TEA runs such an agent: the first edge is taken.
    let agent = scratch.agent("agent.yaml", yaml);
    assert_eq!(
        final_state(&scratch.run(&agent, &["--quiet"])),
        json!({"x": 1})
    );
}

#[test]
fn every_type_error_is_reported_at_once_in_plain_words() {
    let yaml = r#"name: typed
settings:
  max_steps: many
nodes:
  - name: one
    uses: llm.call
    with: {prompt: hi}
    retry: {max_attempts: -1}
  - name: two
    goto: 5
    wiht: {}
  - name: three
    type: while_loop
    condition: "true"
    max_iterations: 3
    body: ["not a step"]
edges:
  - {from: one, to: [two, three]}
"#;
    let scratch = Scratch::new();
    let output = validate(&scratch, yaml, &[]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    let problems: Vec<&str> = text.lines().filter(|l| l.contains("agent.yaml:")).collect();
    let file = scratch.path().join("agent.yaml");
    let at = |rest: &str| format!("{}:{rest}", file.display());
    assert_eq!(
        problems,
        [
            at(
                "3:14: settings.max_steps: expected a whole number (0 or more), but found the text `many`"
            ),
            at(
                "8:27: nodes[0].retry.max_attempts: expected a whole number (0 or more), but found the number -1"
            ),
            at(
                "10:11: nodes[1].goto: expected a node name, or a list of `{if: EXPR, to: NODE}` rules, but found the number 5"
            ),
            at(
                "11:5: nodes[1]: unknown field `wiht`, expected one of `name`, `component`, `config`, `uses`, `with`, `description`, `output`, `run`, `script`, `language`, `type`, `limits`, `permissions`, `retry`, `isolation`, `idempotent`, `interrupt_before`, `interrupt_after`, `on_error`, `goto`, `fan_in`, `steps`, `condition`, `max_iterations`, `body`, `items`, `item_var`, `index_var`, `max_concurrency`, `fail_fast`, `action`"
            ),
            at(
                "16:12: nodes[2].body[0]: expected a step (a mapping with `uses:`, `component:` or `run:`), but found the text `not a step`"
            ),
            at("18:21: edges[0].to: expected text, but found a list"),
            // With its `to:` unreadable, the edge leads nowhere.
            format!(
                "warning: {}",
                at("9:5: node `two` is unreachable: no route from __start__ leads to it")
            ),
            format!(
                "warning: {}",
                at("12:5: node `three` is unreachable: no route from __start__ leads to it")
            ),
        ]
    );
    assert!(
        text.contains(&format!(
            "kettle: {} has 6 problems and 2 warnings",
            file.display()
        )),
        "{text}"
    );
    assert!(text.contains("hint: did you mean `with`?"), "{text}");
    for rust in ["struct", "enum", "u32", "u64", "untagged", "Spec"] {
        assert!(!text.contains(rust), "`{rust}` in:\n{text}");
    }
}

#[test]
fn the_timeout_of_an_llm_call_is_its_own() {
    let server = FakeOpenAi::start(Behaviour::Hang);
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        &format!(
            "name: slow\nsettings:\n  llm: {{provider: openai, model: m, base_url: {}, api_key_env: KETTLE_TEST_KEY}}\nnodes:\n  - name: ask\n    uses: llm.call\n    with: {{prompt: hi, timeout: 1}}\n",
            server.base_url()
        ),
    );
    let started = std::time::Instant::now();
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_TEST_KEY", "sk-test")
        .arg("--quiet")
        .output()
        .expect("kettle run");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "node `ask` failed (llm.timeout): the LLM call did not finish within its `with.timeout` of 1 s"
        ),
        "{}",
        stderr(&output)
    );
    // Well before the node's own 60 s limit.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn settings_parallel_max_workers_bounds_the_branches_in_flight() {
    // The server answers nobody until 2 calls wait at once; with `max_workers: 2` there are
    // never more than 2 (without the bound, all 4 branches would be in flight).
    let server = FakeOpenAi::start(Behaviour::GateAt(2));
    let scratch = Scratch::new();
    let mut yaml = format!(
        "name: bounded\nsettings:\n  llm: {{provider: openai, model: m, base_url: {}, api_key_env: KETTLE_TEST_KEY, timeout_ms: 20000}}\n  parallel: {{strategy: thread, max_workers: 2}}\nnodes:\n  - name: fork\n    run: {{type: expression, value: \"1\", output_key: started}}\n",
        server.base_url()
    );
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - name: b{i}\n    uses: llm.call\n    with: {{prompt: \"branch {i}\"}}\n    output: answer\n"
        ));
    }
    yaml.push_str("  - name: join\n    fan_in: true\n    run: {type: expression, value: \"parallel_results | map(attribute='answer') | map(attribute='content') | list\", output_key: answers}\nedges:\n");
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - {{from: fork, to: b{i}, type: parallel, fan_in: join}}\n  - {{from: b{i}, to: join}}\n"
        ));
    }
    yaml.push_str("  - {from: join, to: __end__}\n");
    let agent = scratch.agent("agent.yaml", &yaml);
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_TEST_KEY", "sk-test")
        .arg("--quiet")
        .output()
        .expect("kettle run");
    let state = final_state(&output);
    assert_eq!(server.max_in_flight(), 2);
    assert_eq!(server.requests().len(), 4);
    assert_eq!(
        state["answers"].as_array().map(Vec::len),
        Some(4),
        "{state}"
    );
}
