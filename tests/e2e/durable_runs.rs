//! Durable runs: `kettle run --checkpoint` killed with SIGKILL in the middle of a parallel
//! fan-out whose branches call a local OpenAI-format server, then `kettle resume`: the final
//! state equals an uninterrupted run's, no call completed before the kill reaches the server
//! again, and the trace is one trace with every parent present. Interrupts
//! (`interrupt_before`/`interrupt_after`) stop with exit code 3 and resume with an answer.

use crate::support::llm_server::{LlmServer, Recorded, Reply};
use crate::support::provider_shapes::openai_completion;
use crate::support::{Scratch, assert_whole_trace, final_state, repo, stderr, stdout};
use serde_json::{Value, json};
use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The text of a request's last message.
fn last_message(request: &Recorded) -> String {
    request.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Answers the probe's tool loop (a tool call, then the answer), and echoes every other
/// prompt; while `hang` is set, a prompt starting with `Second` is never answered.
fn server(hang: Arc<AtomicBool>) -> LlmServer {
    LlmServer::start(move |request| {
        let messages = request.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let last = last_message(request);
        if messages.iter().any(|m| m["role"] == "tool") {
            return Reply::json(&openai_completion(
                "c2",
                "m",
                Some("Rain in Lima."),
                &[],
                "stop",
                (20, 4),
            ));
        }
        if last.starts_with("Weather") {
            return Reply::json(&openai_completion(
                "c1",
                "m",
                None,
                &[("call_1", "weather", "{\"city\":\"Lima\"}")],
                "tool_calls",
                (10, 5),
            ));
        }
        if last.starts_with("Second") && hang.load(Ordering::SeqCst) {
            return Reply::Hang;
        }
        Reply::json(&openai_completion(
            "c3",
            "m",
            Some(&format!("echo: {last}")),
            &[],
            "stop",
            (7, 3),
        ))
    })
}

fn fanout_agent(scratch: &Scratch, server: &LlmServer) -> std::path::PathBuf {
    scratch.agent(
        "agent.yaml",
        &format!(
            r#"name: durable-fanout
settings:
  llm: {{provider: openai, model: m, base_url: {base}, max_retries: 0}}
nodes:
  - name: split
    run: {{type: expression, value: "'go'", output_key: phase}}
  - name: probe
    component: {probe}
    config: {{mode: tools, key: tools}}
  - name: writer
    steps:
      - name: first
        uses: llm.call
        with: {{prompt: "First: {{{{ state.prompt }}}}"}}
        output: first
      - name: second
        uses: llm.call
        with: {{prompt: "Second: {{{{ state.first.content }}}}"}}
        output: second
  - name: join
    fan_in: true
    run: {{type: expression, value: "parallel_results | length", output_key: joined}}
edges:
  - {{from: __start__, to: split}}
  - {{from: split, to: probe, type: parallel, fan_in: join}}
  - {{from: split, to: writer, type: parallel, fan_in: join}}
  - {{from: probe, to: join}}
  - {{from: writer, to: join}}
  - {{from: join, to: __end__}}
"#,
            base = server.url("/v1"),
            probe = repo().join("tests/nodes/llm-probe").display()
        ),
    )
}

/// `kettle resume ARGS` in `scratch`, traces in its trace folder.
pub(crate) fn resume(scratch: &Scratch, run_id: &str, extra: &[&str]) -> Output {
    scratch
        .kettle()
        .args(["resume", run_id, "--trace-dir"])
        .arg(scratch.traces())
        .args(extra)
        .output()
        .expect("kettle resume runs")
}

/// The id of the only run in the scratch folder's store.
fn only_run_id(scratch: &Scratch) -> String {
    let listed = scratch
        .kettle()
        .args(["runs", "list"])
        .output()
        .expect("kettle runs list");
    let text = stdout(&listed);
    let ids: Vec<&str> = text
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(ids.len(), 1, "expected one run:\n{text}{}", stderr(&listed));
    ids[0].to_string()
}

#[test]
fn a_run_killed_mid_fan_out_resumes_without_paying_twice() {
    let hang = Arc::new(AtomicBool::new(true));
    let server = server(hang.clone());
    let input = r#"{"prompt": "Weather in Lima?"}"#;

    // The run is killed while `writer`'s second call hangs: `probe` finished (2 calls) and
    // `writer` made its first call.
    let scratch = Scratch::new();
    let agent = fanout_agent(&scratch, &server);
    let mut child = scratch
        .run_command(&agent)
        .args(["--checkpoint", "--input", input])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(scratch.path().join("killed.stderr")).expect("stderr file"))
        .arg("--events")
        .spawn()
        .expect("kettle starts");
    let deadline = Instant::now() + Duration::from_secs(300);
    let hanging = |s: &LlmServer| {
        s.requests()
            .iter()
            .any(|r| last_message(r).starts_with("Second"))
    };
    while !(hanging(&server) && server.requests().len() >= 4) {
        assert!(
            Instant::now() < deadline,
            "the run never reached the hanging call"
        );
        assert!(
            child.try_wait().expect("child status").is_none(),
            "the run ended early"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // `probe`'s node span and its checkpoint may lag its last call by a moment.
    std::thread::sleep(Duration::from_millis(500));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    let before_kill: Vec<String> = server.requests().iter().map(last_message).collect();
    assert_eq!(
        before_kill.len(),
        4,
        "calls before the kill: {before_kill:?}\n{}",
        std::fs::read_to_string(scratch.path().join("killed.stderr")).unwrap_or_default()
    );

    let run_id = only_run_id(&scratch);
    let shown = scratch
        .kettle()
        .args(["runs", "show", &run_id])
        .output()
        .expect("runs show");
    assert!(
        stdout(&shown).contains("status   running"),
        "{}",
        stdout(&shown)
    );
    assert!(
        stdout(&shown).contains("[done, writer] then join"),
        "{}",
        stdout(&shown)
    );

    hang.store(false, Ordering::SeqCst);
    let resumed = resume(&scratch, &run_id, &[]);
    let resumed_state = final_state(&resumed);
    let after: Vec<String> = server.requests()[4..].iter().map(last_message).collect();
    // Only the call that never completed reaches the server again.
    assert_eq!(
        after,
        ["Second: echo: First: Weather in Lima?"],
        "{}",
        stderr(&resumed)
    );
    // The run's LLM use counts each of the 4 calls once, across the kill.
    assert!(
        stderr(&resumed).contains("4 LLM calls"),
        "{}",
        stderr(&resumed)
    );

    // An uninterrupted run of the same agent ends in the same state.
    let clean = Scratch::new();
    let clean_agent = fanout_agent(&clean, &server);
    let expected = final_state(&clean.run(&clean_agent, &["--input", input]));
    assert_eq!(resumed_state, expected);
    assert_eq!(resumed_state["joined"], json!(2));
    assert_eq!(
        resumed_state["parallel_results"][1]["second"]["content"],
        "echo: Second: echo: First: Weather in Lima?"
    );

    // One trace: the resumed segment's root is a child of the original root, and every span
    // has its parent (spans open at the kill are written as stand-ins).
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(root.name, "invoke_agent durable-fanout");
    let resumed_root = spans
        .iter()
        .find(|s| s.attributes.contains_key("kettle.run.resumed_from"))
        .expect("the resumed segment's root");
    assert_eq!(
        resumed_root.parent_span_id.as_deref(),
        Some(root.span_id.as_str())
    );
    let replayed: Vec<&str> = spans
        .iter()
        .filter(|s| s.attributes.get("kettle.llm.replayed") == Some(&Value::Bool(true)))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(
        replayed,
        ["chat m"],
        "the first call of `writer` is answered from its tape"
    );

    let history = scratch
        .kettle()
        .args(["runs", "show", &run_id, "--history"])
        .output()
        .expect("runs show --history");
    let text = stdout(&history);
    assert!(text.contains("status   completed"), "{text}");
    assert!(
        text.contains("fan-in join") && text.contains("after node probe"),
        "{text}"
    );
}

pub(crate) fn interrupt_agent(scratch: &Scratch, key: &str) -> std::path::PathBuf {
    scratch.agent(
        "agent.yaml",
        &format!(
            r#"name: approve
settings:
  {key}
nodes:
  - name: draft
    run: {{type: expression, value: "'draft of ' ~ state.topic", output_key: draft}}
  - name: review
    run: {{type: expression, value: "state.draft ~ ' / ' ~ state.get('answer', 'none')", output_key: reviewed}}
  - name: publish
    run: {{type: expression, value: "state.reviewed | upper", output_key: published}}
"#
        ),
    )
}

pub(crate) fn interrupted(output: &Output) -> String {
    assert_eq!(output.status.code(), Some(3), "{}", stderr(output));
    let text = stderr(output);
    let hint = text
        .lines()
        .find(|l| l.trim_start().starts_with("kettle resume "))
        .unwrap_or_else(|| panic!("no resume hint in:\n{text}"));
    hint.split_whitespace()
        .nth(2)
        .expect("the run id")
        .to_string()
}

#[test]
fn interrupt_before_stops_and_resumes_with_the_answer() {
    let scratch = Scratch::new();
    let agent = interrupt_agent(&scratch, "interrupt_before: [review]");
    let first = scratch.run(&agent, &["--input", r#"{"topic": "tea"}"#]);
    let run_id = interrupted(&first);
    // `review` has not run.
    let shown = stdout(
        &scratch
            .kettle()
            .args(["runs", "show", &run_id])
            .output()
            .expect("show"),
    );
    assert!(
        shown.contains("status   interrupted") && shown.contains("next     review"),
        "{shown}"
    );
    let resumed = resume(&scratch, &run_id, &["--input", r#"{"answer": "approved"}"#]);
    assert_eq!(
        final_state(&resumed),
        json!({"topic": "tea", "draft": "draft of tea", "answer": "approved",
               "reviewed": "draft of tea / approved", "published": "DRAFT OF TEA / APPROVED"})
    );
    // A completed run is not resumed again.
    let again = resume(&scratch, &run_id, &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(stderr(&again).contains("completed"), "{}", stderr(&again));
}

#[test]
fn interrupt_after_stops_and_resumes_with_the_answer() {
    let scratch = Scratch::new();
    let agent = interrupt_agent(&scratch, "interrupt_after: [review]");
    let first = scratch.run(&agent, &["--input", r#"{"topic": "tea"}"#]);
    let run_id = interrupted(&first);
    let shown = stdout(
        &scratch
            .kettle()
            .args(["runs", "show", &run_id])
            .output()
            .expect("show"),
    );
    assert!(shown.contains("next     publish"), "{shown}");
    // The answer replaces what `review` wrote before `publish` reads it.
    let resumed = resume(
        &scratch,
        &run_id,
        &["--input", r#"{"reviewed": "edited by a person"}"#],
    );
    assert_eq!(
        final_state(&resumed),
        json!({"topic": "tea", "draft": "draft of tea",
               "reviewed": "edited by a person", "published": "EDITED BY A PERSON"})
    );
}

#[test]
fn a_node_flag_interrupts_and_from_forks_an_earlier_checkpoint() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        r#"name: fork-me
nodes:
  - name: one
    run: {type: expression, value: "state.n + 1", output_key: n}
  - name: two
    interrupt_before: true
    run: {type: expression, value: "state.n * 10", output_key: n}
"#,
    );
    let run_id = interrupted(&scratch.run(&agent, &["--input", r#"{"n": 1}"#]));
    assert_eq!(
        final_state(&resume(&scratch, &run_id, &[])),
        json!({"n": 20})
    );
    // Checkpoint 1 is the start: forking from it with another input runs both nodes again.
    let history = stdout(
        &scratch
            .kettle()
            .args(["runs", "show", &run_id, "--history"])
            .output()
            .expect("history"),
    );
    assert!(
        history
            .lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("start")),
        "{history}"
    );
    let forked = resume(
        &scratch,
        &run_id,
        &["--from", "1", "--input", r#"{"n": 5}"#],
    );
    // The fork stops at the interrupt again, then finishes.
    let again = interrupted(&forked);
    assert_eq!(again, run_id);
    assert_eq!(
        final_state(&resume(&scratch, &run_id, &[])),
        json!({"n": 60})
    );
}

#[test]
fn a_killed_dynamic_parallel_resumes_without_running_its_finished_items_again() {
    let hang = Arc::new(AtomicBool::new(true));
    let server = server(hang.clone());
    let scratch = Scratch::new();
    let yaml = format!(
        r#"name: durable-items
settings:
  llm: {{provider: openai, model: m, base_url: {base}, max_retries: 0}}
nodes:
  - name: each
    type: dynamic_parallel
    items: "{{{{ state.words }}}}"
    max_concurrency: 1
    fan_in: collect
    action:
      uses: llm.call
      with: {{prompt: "{{{{ item }}}}"}}
      output: said
  - name: collect
    run: {{type: expression, value: "parallel_results | map(attribute='state') | map(attribute='said') | map(attribute='content') | join(' | ')", output_key: all}}
"#,
        base = server.url("/v1")
    );
    let agent = scratch.agent("agent.yaml", &yaml);
    let input = r#"{"words": ["alpha", "beta", "Second gamma"]}"#;
    let mut child = scratch
        .run_command(&agent)
        .args(["--checkpoint", "--input", input])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("kettle starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    while server.requests().len() < 3 {
        assert!(
            Instant::now() < deadline,
            "the run never reached the hanging item"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    assert_eq!(server.requests().len(), 3);

    let run_id = only_run_id(&scratch);
    hang.store(false, Ordering::SeqCst);
    let state = final_state(&resume(&scratch, &run_id, &[]));
    let after: Vec<String> = server.requests()[3..].iter().map(last_message).collect();
    assert_eq!(after, ["Second gamma"], "finished items are not run again");
    assert_eq!(
        state["all"],
        "echo: alpha | echo: beta | echo: Second gamma"
    );
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
}

/// A node (`tests/nodes/ask-person` or its Python and JavaScript twins) drafts with one LLM
/// call and asks a person through the `interrupt` import: the run stops with exit code 3 and
/// the question; resumed with an answer, the node runs again, its LLM call answered from the
/// checkpoint, and `interrupt` returns the answer.
fn node_asks_a_person_and_gets_the_answer_on_resume(node: &Path) {
    let server = server(Arc::new(AtomicBool::new(false)));
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        &format!(
            r#"name: ask
settings:
  llm: {{provider: openai, model: m, base_url: {base}, max_retries: 0}}
nodes:
  - name: ask
    component: {node}
  - name: after
    run: {{type: expression, value: "'published' if state.decision.ok else 'held'", output_key: outcome}}
"#,
            base = server.url("/v1"),
            node = node.display()
        ),
    );
    let first = scratch.run(&agent, &["--checkpoint", "--input", r#"{"topic": "tea"}"#]);
    let run_id = interrupted(&first);
    let text = stderr(&first);
    let asked: Value = text
        .lines()
        .find_map(|l| l.strip_prefix("kettle: node `ask` asks: "))
        .and_then(|payload| serde_json::from_str(payload).ok())
        .unwrap_or_else(|| panic!("no question in:\n{text}"));
    assert_eq!(
        asked,
        json!({"question": "Publish this draft?", "draft": "echo: Draft about tea"})
    );
    assert_eq!(server.requests().len(), 1);
    let resumed = resume(
        &scratch,
        &run_id,
        &["--input", r#"{"answer": {"ok": true}}"#],
    );
    assert_eq!(
        final_state(&resumed),
        json!({"topic": "tea", "answer": {"ok": true}, "draft": "echo: Draft about tea",
               "decision": {"ok": true}, "outcome": "published"})
    );
    // The node ran again from its start; its LLM call was answered from the checkpoint.
    assert_eq!(server.requests().len(), 1, "the draft call was paid once");
    assert_whole_trace(&scratch.only_trace());
}

#[test]
fn a_rust_node_asks_a_person_and_gets_the_answer_on_resume() {
    node_asks_a_person_and_gets_the_answer_on_resume(&repo().join("tests/nodes/ask-person"));
}

#[test]
fn a_python_node_asks_a_person_and_gets_the_answer_on_resume() {
    node_asks_a_person_and_gets_the_answer_on_resume(&repo().join("tests/polyglot-nodes/ask-py"));
}

#[test]
fn a_javascript_node_asks_a_person_and_gets_the_answer_on_resume() {
    node_asks_a_person_and_gets_the_answer_on_resume(&repo().join("tests/polyglot-nodes/ask-js"));
}
