//! `kettle validate`: every problem of a broken agent at once, each at its file:line:column
//! with a hint; exit 0 for a valid agent, 2 otherwise.

use crate::support::{Scratch, repo, stderr, stdout};

fn validate(scratch: &Scratch, name: &str, yaml: &str) -> std::process::Output {
    scratch.agent(name, yaml);
    scratch
        .kettle()
        .arg("validate")
        .arg(name)
        .output()
        .expect("kettle validate")
}

/// The first line of every reported problem.
fn problems(output: &std::process::Output) -> Vec<String> {
    stderr(output)
        .lines()
        .filter(|l| l.starts_with("agent.yaml:"))
        .map(str::to_string)
        .collect()
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let yaml = r#"name: broken
nodes:
  - name: start
    run: {type: expression, value: "1", output_key: x}
    goto:
      - if: "state.x >"
        to: middle
      - to: nowhere
  - name: middle
    component: missing-node
  - name: branch_a
    uses: llm.call
    with: {prompt: "a"}
  - name: branch_b
    uses: llm.call
    with: {prompt: "b"}
  - name: collect
    run: {type: expression, value: "parallel_results | length", output_key: n}
  - name: orphan
    uses: llm.call
    with: {prompt: "never"}
    goto: __end__
  - name: spin
    type: while_loop
    condition: "state.x < 3"
    body:
      - name: inline
        language: javascript
        run: |
          x(1).
  - name: fan
    type: dynamic_parallel
    action:
      uses: http.get
      with: {url: "{{ item }}"}
edges:
  - {from: middle, to: branch_a, type: parallel, fan_in: collect}
  - {from: middle, to: branch_b, type: parallel, fan_in: collect}
  - {from: branch_a, to: collect}
  - {from: branch_b, to: collect}
  - {from: collect, to: spin, when: "state.n >= "}
  - {from: collect, to: ghost}
"#;
    let scratch = Scratch::new();
    let output = validate(&scratch, "agent.yaml", yaml);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        problems(&output),
        [
            "agent.yaml:6:9: bad condition on the way out of `start`: unexpected end of input, expected expression (syntax error)",
            "agent.yaml:8:9: `nowhere` is not a node of this agent",
            "agent.yaml:10:5: component of node `middle`: ./missing-node does not exist",
            "agent.yaml:23:5: while_loop `spin` has no `max_iterations:`; it is required so that no loop runs forever",
            "agent.yaml:29:9: a step of node `spin` has inline code (`run:`, javascript), which Kettle does not run: it has no sandboxed interpreter for javascript",
            "agent.yaml:31:5: dynamic_parallel `fan` has no `items:`",
            "agent.yaml:34:7: a step of node `fan` uses the unknown action `http.get`",
            "agent.yaml:37:50: `collect` is the fan-in node of `middle`, but it is not marked `fan_in: true`",
            "agent.yaml:41:31: bad condition on the way out of `collect`: unexpected end of input, expected expression (syntax error)",
            "agent.yaml:42:21: `ghost` is not a node of this agent",
        ]
    );
    let text = stderr(&output);
    // TEA allows unreachable nodes: a warning, printed after the problems.
    assert!(
        text.contains("warning: agent.yaml:19:5: node `orphan` is unreachable: no route from __start__ leads to it"),
        "{text}"
    );
    assert_eq!(
        text.matches("\n  hint: ").count(),
        11,
        "every problem and warning has a hint:\n{text}"
    );
    assert!(
        text.contains("kettle: agent.yaml has 10 problems and 1 warning"),
        "{text}"
    );

    // `kettle run` refuses the same file with the same problems, before running anything.
    let run = scratch
        .kettle()
        .current_dir(scratch.path())
        .args(["run", "agent.yaml", "--no-trace"])
        .output()
        .expect("kettle run");
    assert_eq!(run.status.code(), Some(2));
    assert_eq!(problems(&run), problems(&output));
}

#[test]
fn each_broken_case_is_located() {
    let cases: &[(&str, &str)] = &[
        (
            "name: a\nnodes:\n  - name: one\n    uses: llm.call\n    with: {prompt: hi}\n    goto: two\n",
            "agent.yaml:6:5: `two` is not a node of this agent",
        ),
        (
            "name: a\nnodes:\n  - name: one\n    run:\n      type: expression\n      value: \"state.x +\"\n",
            "agent.yaml:6:7: bad expression in node `one`, field `run.value`: unexpected end of input, expected expression (syntax error)",
        ),
        (
            "name: a\nnodes:\n  - name: one\n    isolation: sometimes\n    run: |\n      return {\"x\": 1}\n",
            "agent.yaml:4:5: node `one` has the unknown isolation `sometimes`",
        ),
        (
            "name: a\nnodes:\n  - name: one\n    language: javascript\n    run: \"state(value, V).\"\n",
            "agent.yaml:5:5: node `one` has inline code (`run:`, javascript), which Kettle does not run: it has no sandboxed interpreter for javascript",
        ),
        (
            "name: a\nnodes:\n  - name: one\n    uses: http.get\n",
            "agent.yaml:4:5: node `one` uses the unknown action `http.get`",
        ),
        (
            "name: a\nnodes:\n  - name: loop\n    type: while_loop\n    condition: \"true\"\n    max_iterations: 5000\n    body:\n      - run: {type: expression, value: \"1\", output_key: x}\n",
            "agent.yaml:6:5: `max_iterations` of while_loop `loop` is 5000, outside 1 to 1000",
        ),
        (
            "name: a\nnodes:\n  - name: fork\n    uses: llm.call\n    with: {prompt: hi}\n  - name: b\n    uses: llm.call\n    with: {prompt: hi}\n  - name: join\n    uses: llm.call\n    with: {prompt: hi}\nedges:\n  - {from: fork, to: b, type: parallel}\n",
            "agent.yaml:13:6: parallel edge `fork` → `b` has no `fan_in:`",
        ),
        (
            "name: a\nnodes:\n  - name: one\n    uses: llm.call\n    with: {prompt: \"{{ state.x \"}\n",
            "agent.yaml:5:12: bad template in node `one`, field `prompt`",
        ),
        (
            "name: a\nnodes:\n  - name: each\n    type: dynamic_parallel\n    items: \"{{ state.list }}\"\n    fan_in: nowhere\n    action: {uses: llm.call, with: {prompt: \"{{ item }}\"}}\n",
            "agent.yaml:6:5: `nowhere` is not a node of this agent",
        ),
        (
            "name: a\nnodes:\n  - name: one\n    uses: llm.call\n    with: {prompt: hi}\n    goto:\n      - to: __end__\n      - if: \"state.x\"\n        to: one\n",
            "agent.yaml:8:9: this rule of `one` never runs: the rule before it has no `if:` and always matches",
        ),
    ];
    let scratch = Scratch::new();
    let mut missed = Vec::new();
    for (yaml, expected) in cases {
        let output = validate(&scratch, "agent.yaml", yaml);
        assert_eq!(output.status.code(), Some(2), "{yaml}\n{}", stderr(&output));
        let found = problems(&output);
        if !found.iter().any(|p| p.starts_with(expected)) {
            missed.push(format!(
                "expected `{expected}` for\n{yaml}\nfound {found:#?}"
            ));
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n\n"));
}

#[test]
fn valid_agents_pass_with_exit_0() {
    let scratch = Scratch::new();
    for example in [
        "examples/hello/agent.yaml",
        "examples/tea/counter.yaml",
        "examples/tea/confidence-router.yaml",
        "examples/tea/batch-validator.yaml",
        "examples/tea/document-processor.yaml",
    ] {
        let path = repo().join(example);
        let output = scratch
            .kettle()
            .arg("validate")
            .arg(&path)
            .output()
            .expect("kettle validate");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{example}: {}",
            stderr(&output)
        );
        assert!(stdout(&output).contains(": valid ("), "{}", stdout(&output));
    }
}
