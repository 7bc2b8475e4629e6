//! Durable runs in Postgres: `kettle run --checkpoint --store postgres://…` (and
//! `settings.checkpoint: {store: postgres, url}`) against a real server started by the test;
//! the run stops at an interrupt, `kettle runs` reads it from Postgres, and `kettle resume`
//! continues it there to an exact final state, without calling the model again.

use crate::durable_runs::{interrupt_agent, interrupted, resume};
use crate::support::llm_server::{LlmServer, Reply};
use crate::support::postgres::PostgresServer;
use crate::support::provider_shapes::openai_completion;
use crate::support::{Scratch, assert_whole_trace, final_state, stderr, stdout};
use serde_json::json;

/// Answers every prompt with `echo: PROMPT`.
fn echo_server() -> LlmServer {
    LlmServer::start(|request| {
        let prompt = request.body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or_default()
            .to_string();
        Reply::json(&openai_completion(
            "c1",
            "m",
            Some(&format!("echo: {prompt}")),
            &[],
            "stop",
            (7, 3),
        ))
    })
}

fn kettle_runs(scratch: &Scratch, args: &[&str]) -> String {
    let output = scratch
        .kettle()
        .arg("runs")
        .args(args)
        .output()
        .expect("kettle runs");
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output)
}

#[test]
fn a_run_interrupted_before_a_node_resumes_from_postgres() {
    let postgres = PostgresServer::start();
    let url = postgres.database("kettle");
    let llm = echo_server();
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        &format!(
            r#"name: approve-pg
settings:
  llm: {{provider: openai, model: m, base_url: {base}, max_retries: 0}}
  interrupt_before: [review]
nodes:
  - name: draft
    uses: llm.call
    with: {{prompt: "Draft about {{{{ state.topic }}}}"}}
    output: draft
  - name: review
    run: {{type: expression, value: "state.draft.content ~ ' / ' ~ state.get('answer', 'none')", output_key: reviewed}}
  - name: publish
    run: {{type: expression, value: "state.reviewed | upper", output_key: published}}
"#,
            base = llm.url("/v1")
        ),
    );

    let first = scratch.run(
        &agent,
        &[
            "--checkpoint",
            "--store",
            &url,
            "--input",
            r#"{"topic": "tea"}"#,
        ],
    );
    let run_id = interrupted(&first);
    // The checkpoints went to Postgres, not to the default SQLite file.
    assert!(!scratch.path().join(".kettle/state.db").exists());
    let listed = kettle_runs(&scratch, &["list", "--store", &url]);
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&run_id) && l.contains("interrupted")),
        "{listed}"
    );
    let shown = kettle_runs(&scratch, &["show", &run_id, "--store", &url]);
    assert!(shown.contains("next     review"), "{shown}");

    let resumed = resume(
        &scratch,
        &run_id,
        &["--store", &url, "--input", r#"{"answer": "approved"}"#],
    );
    let draft = json!({"content": "echo: Draft about tea", "model": "m", "finish_reason": "stop",
                       "usage": {"input_tokens": 7, "output_tokens": 3}, "tool_calls": []});
    assert_eq!(
        final_state(&resumed),
        json!({"topic": "tea", "draft": draft, "answer": "approved",
               "reviewed": "echo: Draft about tea / approved",
               "published": "ECHO: DRAFT ABOUT TEA / APPROVED"}),
        "{}",
        stderr(&resumed)
    );
    // `draft` ran once, before the interrupt.
    assert_eq!(llm.requests().len(), 1);
    let history = kettle_runs(&scratch, &["show", &run_id, "--history", "--store", &url]);
    assert!(
        history.contains("status   completed") && history.contains("interrupt before review"),
        "{history}"
    );
    assert_whole_trace(&scratch.only_trace());
}

#[test]
fn settings_checkpoint_selects_postgres() {
    let postgres = PostgresServer::start();
    let url = postgres.database("kettle");
    let scratch = Scratch::new();
    let agent = interrupt_agent(
        &scratch,
        &format!("interrupt_after: [review]\n  checkpoint: {{store: postgres, url: '{url}'}}"),
    );
    let first = scratch.run(&agent, &["--input", r#"{"topic": "tea"}"#]);
    let run_id = interrupted(&first);
    assert!(!scratch.path().join(".kettle/state.db").exists());
    let resumed = resume(
        &scratch,
        &run_id,
        &["--store", &url, "--input", r#"{"reviewed": "edited"}"#],
    );
    assert_eq!(
        final_state(&resumed),
        json!({"topic": "tea", "draft": "draft of tea", "reviewed": "edited", "published": "EDITED"})
    );
}
