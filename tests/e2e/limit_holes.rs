//! The holes a hostile node found in the limits' accounting, each closed: memory counted over
//! all of a node's memories, LLM streams and parallel calls counted against their limits,
//! default bounds on LLM calls, byte caps on errors, logs and output, and a shadow-stack
//! overflow named as one.

use crate::support::llm_server::{LlmServer, Reply};
use crate::support::{Scratch, assert_whole_trace, final_state, repo, span, stderr};
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};
use std::process::Output;
use std::time::Duration;

/// Runs the hostile node alone (configured by `config`, with the extra node keys `node_yaml`
/// and the agent's `settings_yaml`); its failure is routed to a handler, so the run succeeds.
/// Returns the final state, the trace and the kettle process's output.
fn run_alone(
    scratch: &Scratch,
    settings_yaml: &str,
    config: Value,
    node_yaml: &str,
) -> (Value, Vec<SpanRecord>, Output) {
    let hostile = repo().join("tests/nodes/hostile");
    let agent = scratch.agent(
        "alone.yaml",
        &format!(
            "name: alone
{settings_yaml}nodes:
  - name: hostile
    component: {hostile}
    config: {config}
    on_error: recover
{node_yaml}  - name: recover
    run: {{type: expression, value: \"state.error.kind\", output_key: recovered}}
edges:
  - {{from: hostile, to: __end__}}
  - {{from: recover, to: __end__}}
",
            hostile = hostile.display(),
        ),
    );
    let _ = std::fs::remove_dir_all(scratch.traces());
    let output = scratch.run(&agent, &[]);
    let state = final_state(&output);
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    (state, spans, output)
}

fn error_kind(state: &Value) -> &str {
    state["error"]["kind"].as_str().unwrap_or("<no error>")
}

fn error_message(state: &Value) -> &str {
    state["error"]["message"].as_str().unwrap_or_default()
}

fn chat_spans(spans: &[SpanRecord]) -> Vec<&SpanRecord> {
    spans
        .iter()
        .filter(|s| s.name.starts_with("chat "))
        .collect()
}

/// A component of eight core modules, each with its own linear memory, whose `run` grows
/// every memory by `pages` pages (trapping if one is refused) and returns `{"grown": 8}`.
fn eight_memories(pages: u32) -> Vec<u8> {
    let growers: String = (1..=7)
        .map(|i| format!("(core instance $m{i} (instantiate $grower))\n"))
        .collect();
    let imports: String = (1..=7)
        .map(|i| format!("(import \"m{i}\" \"grow\" (func $g{i} (param i32) (result i32)))\n"))
        .collect();
    let grows: String = (1..=7)
        .map(|i| format!("(call $check (call $g{i} (i32.const {pages})))\n"))
        .collect();
    let with: String = (1..=7)
        .map(|i| format!("(with \"m{i}\" (instance $m{i})) "))
        .collect();
    let text = format!(
        r#"(component
  (type $ctx (record (field "run-id" string) (field "node-name" string)
                     (field "attempt" u32) (field "config" string)))
  (type $err (variant (case "invalid-input" string) (case "llm" string) (case "failed" string)))
  (import "kettle:node/types@0.1.0" (instance $types
    (export "node-context" (type (eq $ctx)))
    (export "node-error" (type (eq $err)))))
  (alias export $types "node-context" (type $node-context))
  (alias export $types "node-error" (type $node-error))
  (core module $grower
    (memory 1)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
  {growers}
  (core module $main
    {imports}
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $ptr i32)
      (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.const 7)) (i32.const -8)))
      (global.set $heap (i32.add (local.get $ptr) (local.get 3)))
      (if (i32.gt_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536)))
        (then (call $check (memory.grow
          (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1))))))
      (local.get $ptr))
    (func $check (param i32)
      (if (i32.eq (local.get 0) (i32.const -1)) (then unreachable)))
    (func (export "run") (param i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)
      {grows}
      (call $check (memory.grow (i32.const {pages})))
      (i32.const 16))
    (data (i32.const 16) "\00\00\00\00\20\00\00\00\0c\00\00\00")
    (data (i32.const 32) "{{\"grown\": 8}}"))
  (core instance $main (instantiate $main {with}))
  (func $run (param "ctx" $node-context) (param "state" string)
    (result (result string (error $node-error)))
    (canon lift (core func $main "run") (memory (core memory $main "memory"))
      (realloc (core func $main "realloc"))))
  (export "run" (func $run)))"#
    );
    wat::parse_str(text).expect("the component's text is valid")
}

#[test]
fn memory_mb_bounds_all_of_a_nodes_memories_together() {
    let scratch = Scratch::new();
    // Each memory grows by 16 MiB: 8 x 16 MiB = 128 MiB, each one far below 64 MiB.
    std::fs::write(scratch.path().join("eight.wasm"), eight_memories(256)).expect("write");
    let run = |memory_mb: u32| {
        let agent = scratch.agent(
            "eight.yaml",
            &format!(
                "name: eight\nnodes:\n  - name: many\n    component: eight.wasm\n    limits: {{memory_mb: {memory_mb}}}\n"
            ),
        );
        scratch.run(&agent, &[])
    };
    let output = run(256);
    assert_eq!(
        final_state(&output)["grown"],
        8,
        "the component is real and fits in 256 MiB"
    );
    let output = run(64);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("node `many` failed (limit.memory_mb)"),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("memory_mb=64"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn tokens_of_streams_count_toward_max_llm_tokens() {
    let scratch = Scratch::new();
    let (state, spans, _) = run_alone(
        &scratch,
        "",
        json!({"mode": "stream-to-end", "n": 100}),
        "    limits: {max_llm_tokens: 100}\n",
    );
    assert_eq!(error_kind(&state), "limit.max_llm_tokens", "{state}");
    let chats = chat_spans(&spans);
    let per_stream = chats[0]
        .attribute_i64("gen_ai.usage.input_tokens")
        .unwrap_or(0)
        + chats[0]
            .attribute_i64("gen_ai.usage.output_tokens")
            .unwrap_or(0);
    assert!(per_stream > 0, "the stream's usage is on its span");
    // Streams are admitted while fewer than 100 tokens are used.
    let expected = (100 + per_stream - 1) / per_stream;
    assert_eq!(chats.len() as i64, expected, "{per_stream} tokens a stream");
}

#[test]
fn dropped_streams_count_as_calls_of_the_run() {
    let scratch = Scratch::new();
    let (state, spans, output) = run_alone(
        &scratch,
        "settings:\n  budget: {max_llm_calls: 3}\n",
        json!({"mode": "stream-drop", "n": 20}),
        "",
    );
    assert_eq!(error_kind(&state), "limit.budget.max_llm_calls", "{state}");
    assert!(
        error_message(&state).contains("budget.max_llm_calls=3"),
        "{state}"
    );
    let chats = chat_spans(&spans);
    assert_eq!(chats.len(), 3, "three streams were opened");
    for chat in chats {
        assert_eq!(
            chat.status.code, "error",
            "an abandoned stream ends as such"
        );
        assert!(
            chat.attribute_i64("gen_ai.usage.output_tokens").is_none(),
            "no usage was reported"
        );
    }
    assert!(
        stderr(&output).contains("3 LLM calls"),
        "the summary counts the abandoned streams: {}",
        stderr(&output)
    );
}

#[test]
fn parallel_calls_cannot_overshoot_the_run_budget() {
    // A slow provider: every item asks before any call has finished.
    let server = LlmServer::start(|_| {
        std::thread::sleep(Duration::from_millis(50));
        Reply::json(&json!({
            "id": "c1", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1}
        }))
    });
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "wide.yaml",
        &format!(
            "name: wide
settings:
  llm: {{provider: openai, model: m, base_url: '{}', max_retries: 0}}
  budget: {{max_llm_calls: 3}}
nodes:
  - name: each
    type: dynamic_parallel
    items: \"{{{{ range(20) | list }}}}\"
    item_var: item
    max_concurrency: 20
    action: {{uses: llm.call, with: {{prompt: \"item {{{{ item }}}}\"}}}}
    output: answers
",
            server.url("/v1")
        ),
    );
    let output = scratch.run(&agent, &[]);
    let answers = crate::support::stdout(&output);
    assert_eq!(server.requests().len(), 3, "{answers}");
    assert_eq!(
        answers.matches("budget.max_llm_calls=3 is used up").count(),
        17,
        "the other items were refused: {answers}"
    );
    assert!(
        stderr(&output).contains("3 LLM calls"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn llm_calls_are_bounded_by_default() {
    let scratch = Scratch::new();
    let (state, spans, _) = run_alone(&scratch, "", json!({"mode": "llm-flood"}), "");
    assert_eq!(error_kind(&state), "limit.max_llm_calls", "{state}");
    assert!(
        error_message(&state).contains("max_llm_calls=100"),
        "{state}"
    );
    assert_eq!(chat_spans(&spans).len(), 100);

    let (state, spans, _) = run_alone(
        &scratch,
        "",
        json!({"mode": "llm-flood"}),
        "    limits: {max_llm_calls: 100000}\n",
    );
    assert_eq!(error_kind(&state), "limit.budget.max_llm_calls", "{state}");
    assert!(
        error_message(&state).contains("budget.max_llm_calls=1000"),
        "{state}"
    );
    assert_eq!(chat_spans(&spans).len(), 1000);
}

#[test]
fn a_10_mib_error_message_is_cut() {
    let scratch = Scratch::new();
    let (state, spans, output) = run_alone(&scratch, "", json!({"mode": "huge-error"}), "");
    assert_eq!(error_kind(&state), "failed");
    let message = error_message(&state);
    let cut = (10 << 20) - (16 << 10);
    assert!(
        message.ends_with(&format!("… [{cut} bytes cut]")),
        "{}",
        &message[message.len().saturating_sub(100)..]
    );
    assert!(message.len() < (16 << 10) + 200, "{} bytes", message.len());
    let node = span(&spans, "node hostile");
    assert_eq!(node.attribute_i64("kettle.error.cut_bytes"), Some(cut));
    assert!(
        output.stderr.len() < 200 << 10,
        "{} bytes on stderr",
        output.stderr.len()
    );
    let trace_bytes: u64 = std::fs::read_dir(scratch.traces())
        .expect("traces")
        .map(|e| e.expect("entry").metadata().expect("metadata").len())
        .sum();
    assert!(trace_bytes < 1 << 20, "{trace_bytes} bytes of trace");
}

#[test]
fn log_lines_are_capped_in_bytes() {
    let scratch = Scratch::new();
    let (state, spans, output) = run_alone(
        &scratch,
        "",
        json!({"mode": "huge-log-lines", "lines": 100}),
        "",
    );
    assert_eq!(state["logged"], 100, "the node itself succeeds: {state}");
    let stderr_bytes = output.stderr.len();
    assert!(
        stderr_bytes < 2 << 20,
        "1 MiB of log at most, not {stderr_bytes} bytes"
    );
    assert!(stderr(&output).contains("bytes cut]"), "the cut is visible");
    let node = span(&spans, "node hostile");
    // 64 lines of 16 KiB fill the 1 MiB; the other 36 are dropped.
    assert_eq!(node.attribute_i64("kettle.log.dropped_lines"), Some(36));
    assert_eq!(
        node.attribute_i64("kettle.log.dropped_bytes"),
        Some(100 * (10 << 20) - (1 << 20))
    );
}

#[test]
fn printing_past_the_capture_is_dropped_not_a_crash() {
    let scratch = Scratch::new();
    let (state, spans, _) = run_alone(
        &scratch,
        "",
        json!({"mode": "print-flood", "lines": 1024}),
        "",
    );
    assert_eq!(state["printed"], 1024, "println! did not panic: {state}");
    let node = span(&spans, "node hostile");
    // 1 MiB to each of stdout and stderr; 64 KiB of each is captured.
    assert_eq!(
        node.attribute_i64("kettle.output.dropped_bytes"),
        Some(2 * ((1 << 20) - (64 << 10)))
    );
}

#[test]
fn a_shadow_stack_overflow_is_a_stack_overflow() {
    let scratch = Scratch::new();
    let (state, _, _) = run_alone(&scratch, "", json!({"mode": "deep-frames"}), "");
    assert_eq!(error_kind(&state), "stack_overflow", "{state}");
    assert!(
        error_message(&state).contains("exhausted its stack in linear memory"),
        "{state}"
    );
}
