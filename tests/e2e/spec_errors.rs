//! Bad agent files and bad input: exit code 2 and messages that say what, where, and how to fix.

use crate::support::{Scratch, stderr};

fn expect_bad_input(scratch: &Scratch, yaml: &str, expected: &[&str]) {
    let agent = scratch.agent("agent.yaml", yaml);
    let output = scratch.run(&agent, &[]);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{text}");
    for part in expected {
        assert!(text.contains(part), "expected `{part}` in:\n{text}");
    }
}

#[test]
fn unknown_keys_are_located() {
    let scratch = Scratch::new();
    expect_bad_input(
        &scratch,
        "name: a\nnodes:\n  - name: one\n    uses: llm.call\n    wiht: {prompt: hi}\n",
        &["agent.yaml:5:5: nodes[0]: unknown field `wiht`", "hint:"],
    );
}

#[test]
fn structural_errors_are_all_reported_with_locations() {
    let scratch = Scratch::new();
    expect_bad_input(
        &scratch,
        "name: a\nnodes:\n  - name: one\n    component: missing-folder\n  - name: two\n    language: javascript\n    run: |\n      x.\n  - name: three\n    uses: llm.call\n    with:\n      prompt: \"{{ state.x \"\nedges:\n  - from: one\n    to: nowhere\n",
        &[
            "agent.yaml:4:5: component of node `one`",
            "does not exist",
            "agent.yaml:7:5: node `two` has inline code",
            "no sandboxed interpreter for javascript",
            "agent.yaml:12:7: bad template in node `three`, field `prompt`",
            "agent.yaml:15:5: `nowhere` is not a node of this agent",
        ],
    );
}

#[test]
fn a_missing_agent_file_and_bad_input_are_bad_input() {
    let scratch = Scratch::new();
    let output = scratch.run(&scratch.path().join("nope.yaml"), &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("cannot read the agent file"));

    let agent = scratch.agent(
        "ok.yaml",
        "name: a\nnodes:\n  - name: one\n    uses: llm.call\n    with: {prompt: hi}\n",
    );
    let output = scratch.run(&agent, &["--input", "[1, 2]"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("must be a JSON object"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_template_reading_a_missing_key_names_node_field_and_key() {
    // As TEA documents: `{{ state.topic }}` alone is None; reading into it is an error.
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        "name: a\nnodes:\n  - name: ask\n    uses: llm.call\n    with: {prompt: \"About {{ state.topic.title }}\"}\n",
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(
            "node `ask` failed (template): field `with.prompt`: `state.topic` is not defined"
        ),
        "{}",
        stderr(&output)
    );
}
