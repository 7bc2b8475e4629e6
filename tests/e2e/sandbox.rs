//! The hostile-node suite: each misbehaviour runs as a node whose failure is routed to a
//! well-behaved node, and each ends in its specific error kind, with the process alive, the
//! other node's result intact and the trace whole.

use crate::support::tiny_server::{Answer, TinyServer};
use crate::support::{Scratch, assert_whole_trace, final_state, repo, span, stderr};
use serde_json::{Value, json};
use std::time::Duration;

/// Runs the hostile node (configured by `config` and the extra node keys `node_yaml`) in a
/// parallel group beside a well-behaved sibling. The hostile node's failure is routed to a
/// handler inside its branch, so the group always completes. Returns the hostile branch's
/// final state, and the trace.
fn run_hostile(
    scratch: &Scratch,
    config: Value,
    node_yaml: &str,
) -> (Value, Vec<kettle::telemetry::SpanRecord>) {
    let hostile = repo().join("tests/nodes/hostile");
    let echo = repo().join("tests/nodes/echo");
    let agent = scratch.agent(
        "hostile.yaml",
        &format!(
            "name: hostile
nodes:
  - name: fork
    run: {{type: expression, value: \"1\", output_key: forked}}
  - name: hostile
    component: {hostile}
    config: {config}
    on_error: recover
{node_yaml}  - name: recover
    run: {{type: expression, value: \"state.error.kind\", output_key: recovered}}
  - name: sibling
    component: {echo}
  - name: join
    fan_in: true
    run: {{type: expression, value: \"parallel_results\", output_key: branches}}
edges:
  - {{from: fork, to: hostile, type: parallel, fan_in: join}}
  - {{from: fork, to: sibling, type: parallel, fan_in: join}}
  - {{from: hostile, to: join}}
  - {{from: recover, to: join}}
  - {{from: sibling, to: join}}
  - {{from: join, to: __end__}}
",
            hostile = hostile.display(),
            echo = echo.display()
        ),
    );
    // One trace file per run: drop those of the scratch folder's earlier runs.
    let _ = std::fs::remove_dir_all(scratch.traces());
    let output = scratch.run(&agent, &["--input", r#"{"keep": "me"}"#]);
    let state = final_state(&output);
    // The well-behaved sibling ran in parallel and its result is intact.
    let sibling = &state["branches"][1];
    assert_eq!(
        sibling["echo"]["keep"], "me",
        "the sibling's result is intact: {state}"
    );
    assert_eq!(sibling["echo"]["forked"], 1);
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let sibling_span = span(&spans, "node sibling");
    assert_eq!(sibling_span.status.code, "ok", "the sibling succeeded");
    let group = span(&spans, "parallel fork");
    assert_eq!(
        sibling_span.parent_span_id.as_deref(),
        Some(group.span_id.as_str())
    );
    let hostile_branch = state["branches"][0].clone();
    if let Some(kind) = hostile_branch["error"]["kind"].as_str() {
        assert_eq!(
            hostile_branch["recovered"], kind,
            "the handler saw the error"
        );
    }
    (hostile_branch, spans)
}

fn error_kind(state: &Value) -> &str {
    state["error"]["kind"].as_str().unwrap_or("<no error>")
}

fn error_message(state: &Value) -> &str {
    state["error"]["message"].as_str().unwrap_or_default()
}

#[test]
fn an_infinite_loop_is_stopped_at_its_time_limit() {
    let scratch = Scratch::new();
    let (state, spans) = run_hostile(
        &scratch,
        json!({"mode": "spin"}),
        "    limits: {timeout_ms: 1000}\n",
    );
    assert_eq!(error_kind(&state), "limit.timeout_ms");
    assert!(error_message(&state).contains("timeout_ms=1000"), "{state}");
    assert!(
        error_message(&state).contains("--limit timeout_ms="),
        "says how to raise it: {state}"
    );
    let node = span(&spans, "node hostile");
    assert_eq!(node.status.code, "error");
    assert!(
        node.duration_ms() < 1500.0,
        "stopped within 1.5x the limit: {} ms",
        node.duration_ms()
    );
}

#[test]
fn an_infinite_retry_loop_around_a_host_call_is_stopped_at_its_time_limit() {
    let scratch = Scratch::new();
    let (state, spans) = run_hostile(
        &scratch,
        json!({"mode": "llm-retry-forever"}),
        "    limits: {timeout_ms: 1000, max_llm_calls: 20}\n",
    );
    assert_eq!(error_kind(&state), "limit.timeout_ms");
    let calls = spans.iter().filter(|s| s.name.starts_with("chat ")).count();
    assert_eq!(
        calls, 20,
        "calls past max_llm_calls are refused before any span is made"
    );
}

#[test]
fn fuel_bounds_instructions_deterministically() {
    let scratch = Scratch::new();
    let (state, _) = run_hostile(
        &scratch,
        json!({"mode": "spin"}),
        "    limits: {fuel: 1000000}\n",
    );
    assert_eq!(error_kind(&state), "limit.fuel");
}

#[test]
fn memory_bombs_hit_the_memory_limit() {
    for mode in ["grow-memory", "vec-bomb"] {
        let scratch = Scratch::new();
        let (state, _) = run_hostile(
            &scratch,
            json!({"mode": mode}),
            "    limits: {memory_mb: 64}\n",
        );
        assert_eq!(error_kind(&state), "limit.memory_mb", "{mode}: {state}");
        assert!(
            error_message(&state).contains("memory_mb=64"),
            "{mode}: {state}"
        );
    }
}

#[test]
fn unbounded_recursion_is_a_stack_overflow_not_a_host_crash() {
    let scratch = Scratch::new();
    let (state, _) = run_hostile(&scratch, json!({"mode": "recurse"}), "");
    assert_eq!(error_kind(&state), "stack_overflow", "{state}");
}

#[test]
fn a_rust_node_is_linked_with_a_256_kib_shadow_stack() {
    let scratch = Scratch::new();
    let (state, _) = run_hostile(&scratch, json!({"mode": "stack-address"}), "");
    let address = state["stack_address"]
        .as_u64()
        .unwrap_or_else(|| panic!("no stack address: {state}"));
    // The stack is the first 256 KiB of linear memory and grows down from its top; Rust's own
    // default would put this local just below 1 MiB.
    assert!(
        (256 << 10) - (16 << 10) < address && address < 256 << 10,
        "a local at {address}: {state}"
    );
}

#[test]
fn a_100_mb_output_is_refused() {
    let scratch = Scratch::new();
    let (state, _) = run_hostile(&scratch, json!({"mode": "big-output"}), "");
    assert_eq!(error_kind(&state), "limit.max_output_bytes", "{state}");
    assert!(error_message(&state).contains("104857610 bytes"), "{state}");
}

#[test]
fn a_million_log_lines_are_capped() {
    let scratch = Scratch::new();
    let (state, spans) = run_hostile(&scratch, json!({"mode": "log-flood"}), "");
    assert_eq!(state["logged"], 1_000_000, "the node itself succeeds");
    assert!(state.get("error").is_none());
    let node = span(&spans, "node hostile");
    assert_eq!(
        node.attribute_i64("kettle.log.dropped_lines"),
        Some(999_000)
    );
    // 1000 lines reach the host log; a span keeps at most 128 events (the SDK's span limit).
    assert_eq!(node.events.iter().filter(|e| e.name == "log").count(), 128);
}

#[test]
fn a_hundred_thousand_llm_calls_hit_the_call_limit() {
    let scratch = Scratch::new();
    let (state, spans) = run_hostile(
        &scratch,
        json!({"mode": "llm-flood"}),
        "    limits: {max_llm_calls: 50}\n",
    );
    assert_eq!(error_kind(&state), "limit.max_llm_calls", "{state}");
    assert_eq!(
        spans.iter().filter(|s| s.name.starts_with("chat ")).count(),
        50
    );
}

#[test]
fn files_outside_the_grants_cannot_be_read_or_written() {
    let scratch = Scratch::new();
    let granted = scratch.path().join("granted");
    std::fs::create_dir(&granted).expect("granted folder");
    std::fs::write(granted.join("inside.txt"), "visible").expect("inside file");
    std::fs::write(scratch.path().join("secret.txt"), "top secret").expect("secret file");
    std::os::unix::fs::symlink(scratch.path().join("secret.txt"), granted.join("link"))
        .expect("symlink");
    let grant = "    permissions:\n      fs: [{path: granted, access: read, as: /data}]\n";

    let (state, _) = run_hostile(
        &scratch,
        json!({"mode": "read", "path": "/data/inside.txt"}),
        grant,
    );
    assert_eq!(state["content"], "visible", "the grant itself works");

    for path in ["/etc/passwd", "/data/../secret.txt", "/data/link"] {
        let (state, _) = run_hostile(&scratch, json!({"mode": "read", "path": path}), grant);
        assert_eq!(error_kind(&state), "failed", "{path}: {state}");
        assert!(
            error_message(&state).contains(&format!("cannot read {path}")),
            "{path}: {state}"
        );
        assert!(
            !state.to_string().contains("top secret") && !state.to_string().contains("root:"),
            "{path} leaked"
        );
    }
    let (state, _) = run_hostile(
        &scratch,
        json!({"mode": "write", "path": "/data/new.txt"}),
        grant,
    );
    assert_eq!(error_kind(&state), "failed", "{state}");
    assert!(
        !granted.join("new.txt").exists(),
        "nothing was written through a read-only grant"
    );
}

#[test]
fn http_goes_only_to_granted_hosts_redirects_included() {
    let allowed = TinyServer::start(Answer::Body("hello from an allowed host".into()));
    let forbidden = TinyServer::start(Answer::Body("must not be reached".into()));
    let redirector = TinyServer::start(Answer::Redirect(forbidden.url()));
    let scratch = Scratch::new();
    let grant = format!(
        "    permissions:\n      http: [\"http://{}\", \"http://{}\"]\n",
        allowed.addr, redirector.addr
    );

    let (state, _) = run_hostile(
        &scratch,
        json!({"mode": "http-get", "url": allowed.url()}),
        &grant,
    );
    assert_eq!(state["body"], "200 hello from an allowed host", "{state}");

    let (state, _) = run_hostile(
        &scratch,
        json!({"mode": "http-get", "url": forbidden.url()}),
        &grant,
    );
    assert_eq!(error_kind(&state), "failed");
    assert!(
        error_message(&state).contains("HttpRequestDenied"),
        "{state}"
    );

    let (state, _) = run_hostile(
        &scratch,
        json!({"mode": "http-get", "url": redirector.url()}),
        &grant,
    );
    assert!(
        error_message(&state).contains("HttpRequestDenied"),
        "{state}"
    );
    assert_eq!(redirector.hits(), 1, "the allowed first hop was made");
    assert_eq!(
        forbidden.hits(),
        0,
        "neither directly nor through the redirect"
    );

    let (state, _) = run_hostile(
        &scratch,
        json!({"mode": "http-get", "url": allowed.url()}),
        "",
    );
    assert!(
        error_message(&state).contains("HttpRequestDenied"),
        "no grant, no network: {state}"
    );
}

#[test]
fn only_granted_environment_variables_are_visible() {
    let scratch = Scratch::new();
    let agent_env = |command: &mut std::process::Command| {
        command
            .env("KETTLE_TEST_VISIBLE", "yes")
            .env("KETTLE_TEST_HIDDEN", "no")
            .env("OPENAI_API_KEY", "sk-secret");
    };
    let hostile = repo().join("tests/nodes/hostile");
    let agent = scratch.agent(
        "env.yaml",
        &format!(
            "name: env\nnodes:\n  - name: hostile\n    component: {}\n    config: {{mode: env}}\n    permissions: {{env: [KETTLE_TEST_VISIBLE, KETTLE_TEST_UNSET]}}\n",
            hostile.display()
        ),
    );
    let mut command = scratch.kettle();
    agent_env(&mut command);
    let output = command
        .arg("run")
        .arg(&agent)
        .arg("--trace-dir")
        .arg(scratch.traces())
        .output()
        .expect("kettle");
    let state = final_state(&output);
    assert_eq!(state["env"], json!({"KETTLE_TEST_VISIBLE": "yes"}));
}

#[test]
fn provider_keys_cannot_be_granted() {
    let scratch = Scratch::new();
    let hostile = repo().join("tests/nodes/hostile");
    let agent = scratch.agent(
        "env.yaml",
        &format!(
            "name: env\nnodes:\n  - name: hostile\n    component: {}\n    permissions: {{env: [OPENAI_API_KEY]}}\n",
            hostile.display()
        ),
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("may not read `OPENAI_API_KEY`"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn panics_and_bad_outputs_are_named() {
    let scratch = Scratch::new();
    let (state, _) = run_hostile(&scratch, json!({"mode": "panic"}), "");
    assert_eq!(error_kind(&state), "trap");
    assert!(
        error_message(&state).contains("panics on purpose"),
        "the guest's stderr is quoted: {state}"
    );
    let (state, _) = run_hostile(&scratch, json!({"mode": "invalid-json"}), "");
    assert_eq!(error_kind(&state), "bad_output");
    assert!(error_message(&state).contains("not JSON"), "{state}");
    let (state, _) = run_hostile(&scratch, json!({"mode": "non-object"}), "");
    assert_eq!(error_kind(&state), "bad_output");
    assert!(error_message(&state).contains("not an array"), "{state}");
}

#[test]
fn crashes_are_retried_only_when_the_node_is_idempotent() {
    let scratch = Scratch::new();
    let (state, spans) = run_hostile(
        &scratch,
        json!({"mode": "crash-first"}),
        "    idempotent: true\n    retry: {max_attempts: 3, backoff_ms: 10}\n",
    );
    assert_eq!(state["succeeded_at_attempt"], 2, "{state}");
    let attempts: Vec<i64> = spans
        .iter()
        .filter(|s| s.name == "node hostile")
        .filter_map(|s| s.attribute_i64("kettle.node.attempt"))
        .collect();
    assert_eq!(attempts.len(), 2, "one span per attempt");
    assert!(attempts.contains(&1) && attempts.contains(&2));

    let (state, spans) = run_hostile(
        &scratch,
        json!({"mode": "crash-first"}),
        "    retry: {max_attempts: 3, backoff_ms: 10}\n",
    );
    assert_eq!(
        error_kind(&state),
        "trap",
        "a crash of a node not marked idempotent is not retried: {state}"
    );
    assert_eq!(spans.iter().filter(|s| s.name == "node hostile").count(), 1);
}

#[test]
fn without_on_error_a_failure_fails_the_run_with_exit_code_1() {
    let scratch = Scratch::new();
    let hostile = repo().join("tests/nodes/hostile");
    let agent = scratch.agent(
        "fail.yaml",
        &format!("name: fail\nnodes:\n  - name: hostile\n    component: {}\n    config: {{mode: panic}}\n", hostile.display()),
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("node `hostile` failed (trap)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_time_limit_covers_an_llm_call_to_a_server_that_never_answers() {
    use crate::support::openai_server::{Behaviour, FakeOpenAi};
    let server = FakeOpenAi::start(Behaviour::Hang);
    let scratch = Scratch::new();
    let node = repo().join("examples/hello/nodes/summarize");
    let agent = scratch.agent(
        "hang.yaml",
        &format!(
            "name: hang\nsettings:\n  llm: {{provider: openai, model: m, base_url: {}}}\nnodes:\n  - name: summarize\n    component: {}\n    limits: {{timeout_ms: 1000}}\n",
            server.base_url(),
            node.display()
        ),
    );
    let output = scratch.run(&agent, &["--input", r#"{"topic": "tea"}"#]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("failed (limit.timeout_ms)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        server.requests().len(),
        1,
        "the node was blocked in its first LLM call"
    );
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node_span = span(&spans, "node summarize");
    assert!(
        node_span.duration_ms() < 1500.0,
        "stopped within 1.5x the limit: {} ms",
        node_span.duration_ms()
    );
    let call = span(&spans, "chat m");
    assert_eq!(
        call.status.code, "error",
        "the abandoned call is closed too"
    );
}

/// Node executions are tasks of the run's runtime (branches use every core): a branch whose
/// group fails (here a sibling's time limit) is aborted wherever its guest is, and the spans its guest left open are closed
/// before the trace is written — under the node span of its branch, marked as not finished.
#[test]
fn a_cancelled_branch_running_on_another_core_leaves_no_span_open() {
    let scratch = Scratch::new();
    let hostile = repo().join("tests/nodes/hostile");
    let mut yaml = String::from(
        "name: cancelcores\nnodes:\n  - name: fork\n    run: {type: expression, value: \"1\", output_key: forked}\n  - name: crash\n    component: HOSTILE\n    config: {mode: spin}\n    limits: {timeout_ms: 1500}\n",
    );
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - name: spin{i}\n    component: HOSTILE\n    config: {{mode: trace-spin-in-span}}\n    limits: {{timeout_ms: 30000}}\n"
        ));
    }
    yaml.push_str("  - name: join\n    fan_in: true\n    run: {type: expression, value: \"parallel_results | length\", output_key: n}\nedges:\n");
    for name in ["crash", "spin0", "spin1", "spin2", "spin3"] {
        yaml.push_str(&format!(
            "  - {{from: fork, to: {name}, type: parallel, fan_in: join}}\n  - {{from: {name}, to: join}}\n"
        ));
    }
    let yaml = yaml.replace("HOSTILE", &hostile.display().to_string());
    let agent = scratch.agent("cancelcores.yaml", &yaml);
    let started = std::time::Instant::now();
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "the spinning branches were stopped, not waited for: {:?}",
        started.elapsed()
    );
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    // The failing branch times out after 1.5 s: by then every other branch's guest has
    // opened its span and is spinning in it.
    let spinning: Vec<_> = spans.iter().filter(|s| s.name == "spinning").collect();
    assert_eq!(spinning.len(), 4, "every guest span was closed and written");
    for span in &spinning {
        let parent = spans
            .iter()
            .find(|p| Some(&p.span_id) == span.parent_span_id.as_ref())
            .expect("the guest span's parent is in the trace");
        assert!(
            parent.name.starts_with("node spin"),
            "under its node: {}",
            parent.name
        );
    }
    for i in 0..4 {
        let node = span(&spans, &format!("node spin{i}"));
        assert_eq!(
            node.attributes["kettle.cancelled"], true,
            "spin{i} was cancelled"
        );
    }
}

#[test]
fn a_failing_branch_cancels_its_siblings_promptly_and_corrupts_nothing() {
    let scratch = Scratch::new();
    let hostile = repo().join("tests/nodes/hostile");
    let agent = scratch.agent(
        "failfast.yaml",
        &format!(
            "name: failfast
nodes:
  - name: fork
    run: {{type: expression, value: \"1\", output_key: forked}}
  - name: crash
    component: {h}
    config: {{mode: panic}}
  - name: slow
    component: {h}
    config: {{mode: spin}}
    limits: {{timeout_ms: 30000}}
  - name: join
    fan_in: true
    run: {{type: expression, value: \"parallel_results | length\", output_key: n}}
edges:
  - {{from: fork, to: crash, type: parallel, fan_in: join}}
  - {{from: fork, to: slow, type: parallel, fan_in: join}}
  - {{from: crash, to: join}}
  - {{from: slow, to: join}}
",
            h = hostile.display()
        ),
    );
    let output = scratch.run(&agent, &["--input", r#"{"keep": "me"}"#]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("node `crash` failed (trap)"),
        "{}",
        stderr(&output)
    );
    let state: Value = serde_json::from_slice(&output.stdout).expect("the state so far");
    assert_eq!(
        state,
        json!({"keep": "me", "forked": 1}),
        "no branch state leaked into the run's"
    );

    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    assert!(
        spans.iter().any(|s| s.name == "node slow"),
        "the sibling started before the failure cancelled it:\n{}",
        stderr(&output)
    );
    let slow = span(&spans, "node slow");
    assert_eq!(slow.status.code, "error");
    assert_eq!(
        slow.attributes["kettle.cancelled"], true,
        "the sibling was cancelled, not left running"
    );
    assert!(
        slow.duration_ms() < 30_000.0,
        "cancelled long before its own limit: {} ms",
        slow.duration_ms()
    );
}

#[test]
fn no_page_of_an_execution_is_left_for_the_next_in_its_slot() {
    // A thousand disjoint dirty pages (the reset in place goes past wasmtime 48's 32 regions),
    // then sixteen thousand (past the 16 MiB kept resident, so the rest is decommitted): after
    // each, the next execution of the same component reads every page and finds no mark.
    let scratch = Scratch::new();
    let hostile = repo().join("tests/nodes/hostile");
    let agent = scratch.agent(
        "residue.yaml",
        &format!(
            "name: residue
nodes:
  - name: scatter_some
    component: {h}
    config: {{mode: scatter, pages: 128, seed: 11, key: scattered_some}}
  - name: find_some
    component: {h}
    config: {{mode: find-scattered, pages: 144, seed: 11, key: found_some}}
  - name: scatter_many
    component: {h}
    config: {{mode: scatter, pages: 2048, seed: 12, key: scattered_many}}
  - name: find_many
    component: {h}
    config: {{mode: find-scattered, pages: 2064, seed: 12, key: found_many}}
",
            h = hostile.display()
        ),
    );
    let output = scratch.run(&agent, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let state = final_state(&output);
    for (which, marks) in [("some", 1024), ("many", 16384)] {
        let scattered = &state[format!("scattered_{which}")];
        let found = &state[format!("found_{which}")];
        assert_eq!(scattered["written"], marks, "{state}");
        assert!(
            found["last_address"].as_u64() >= scattered["last_address"].as_u64(),
            "the finder read as far as the marks go: {state}"
        );
        assert_eq!(
            found["found"], 0,
            "a page of the previous execution was left: {state}"
        );
    }
}
