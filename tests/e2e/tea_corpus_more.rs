//! More of TEA's own agents load and run: shell providers (a local program answering LLM
//! calls, run only when the operator grants it), TEA's `settings:` sections Kettle has no
//! counterpart for (loaded with a warning), TEA's `settings.llm` keys, and one agent mixing
//! inline Python, inline Lua, a Rust component and `llm.call` in one trace.
//!
//! The agents marked "from TEA" are copied from The Edge Agent (github.com/fabceolin/the_edge_agent,
//! commit f507cd9, MIT License, Copyright (c) 2024 Fabrício Ceolin, Claudionor Coelho Jr.), with
//! the changes noted.

use crate::support::openai_server::{Behaviour, FakeOpenAi};
use crate::support::{
    Scratch, assert_whole_trace, children, final_state, names, repo, span, stderr,
};
use serde_json::json;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// Tests with inline code share one cache, and take turns: the first builds the Python and
/// Lua interpreters into it, the next find them built.
fn inline_cache() -> (MutexGuard<'static, ()>, PathBuf) {
    static TURN: Mutex<()> = Mutex::new(());
    let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
    (
        turn,
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tea-corpus-more-cache"),
    )
}

/// A shell provider whose program leaves a mark in the run's folder, then answers with the
/// prompt in capitals.
const SHELL_AGENT: &str = r#"
name: tea-shell
initial_state: {topic: green tea}
settings:
  llm:
    shell_providers:
      upper:
        command: sh
        args: ["-c", "echo ran >> ran.txt; tr a-z A-Z"]
        timeout: 30
nodes:
  - name: ask
    action: llm.call
    with:
      provider: shell
      shell_provider: upper
      messages:
        - role: system
          content: be brief
        - role: user
          content: "name a {{ state.topic }}"
    output: response
"#;

#[test]
fn a_shell_provider_runs_only_when_the_operator_grants_it() {
    let scratch = Scratch::new();
    let agent = scratch.agent("shell.yaml", SHELL_AGENT);
    let marker = scratch.path().join("ran.txt");

    // The agent loads, but its file alone does not make the host run the program.
    let validate = scratch
        .kettle()
        .arg("validate")
        .arg(&agent)
        .output()
        .expect("validate");
    assert!(validate.status.success(), "{}", stderr(&validate));
    let refused = scratch.run(&agent, &["--quiet"]);
    assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("node `ask` failed (denied)")
            && stderr(&refused).contains("sh -c echo ran >> ran.txt; tr a-z A-Z")
            && stderr(&refused).contains("--allow-shell-provider upper"),
        "{}",
        stderr(&refused)
    );
    assert!(!marker.exists(), "the program ran without a grant");

    // A grant naming a provider the agent lacks is a mistake, not a silent no-op.
    let typo = scratch.run(&agent, &["--quiet", "--allow-shell-provider", "uper"]);
    assert_eq!(typo.status.code(), Some(2), "{}", stderr(&typo));
    assert!(
        stderr(&typo).contains("the agent has no shell provider `uper`"),
        "{}",
        stderr(&typo)
    );
    assert!(!marker.exists());

    // A fresh folder, so that the trace read below is the granted run's alone.
    let scratch = Scratch::new();
    let agent = scratch.agent("shell.yaml", SHELL_AGENT);
    let marker = scratch.path().join("ran.txt");
    let granted = scratch.run(&agent, &["--allow-shell-provider", "upper"]);
    assert_eq!(
        final_state(&granted),
        json!({
            "topic": "green tea",
            "response": {
                "content": "SYSTEM: BE BRIEF\n\nNAME A GREEN TEA",
                "model": "upper",
                "finish_reason": "stop",
                "usage": {"input_tokens": 0, "output_tokens": 0},
                "tool_calls": []
            }
        })
    );
    assert!(
        stderr(&granted).contains("shell provider `upper` granted"),
        "{}",
        stderr(&granted)
    );
    assert_eq!(
        std::fs::read_to_string(&marker).expect("the program ran"),
        "ran\n"
    );
    // The call has the span of any LLM call, under its node.
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node = span(&spans, "node ask");
    assert_eq!(names(&children(&spans, node)), ["chat upper"]);
    assert_eq!(
        span(&spans, "chat upper").attributes["gen_ai.provider.name"],
        "shell"
    );
}

#[test]
fn a_granted_shell_provider_keeps_the_nodes_limits_and_the_runs_budget() {
    let scratch = Scratch::new();
    // TEA's older place, `settings.shell_providers`, and a `{prompt}` argument.
    let agent = scratch.agent(
        "bounded.yaml",
        r#"
name: bounded
settings:
  budget: {max_llm_calls: 1}
  shell_providers:
    say: {command: printf, args: ["%s!", "{prompt}"]}
    slow: {command: sleep, args: ["30"]}
nodes:
  - name: first
    uses: llm.call
    with: {provider: shell, shell_provider: say, prompt: one}
    output: a
  - name: second
    uses: llm.call
    with: {provider: shell, shell_provider: say, prompt: two}
    output: b
"#,
    );
    let output = scratch.run(&agent, &["--quiet", "--allow-shell-provider", "say"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("node `second` failed"),
        "{}",
        stderr(&output)
    );
    let state: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the state so far");
    assert_eq!(state["a"]["content"], "one!");
    assert!(state.get("b").is_none(), "{state}");

    let slow = scratch.agent(
        "slow.yaml",
        r#"
name: slow
settings:
  shell_providers:
    slow: {command: sleep, args: ["30"]}
nodes:
  - name: wait
    uses: llm.call
    limits: {timeout_ms: 500}
    with: {provider: shell, shell_provider: slow, prompt: x}
"#,
    );
    let started = std::time::Instant::now();
    let output = scratch.run(&slow, &["--quiet", "--allow-shell-provider", "slow"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("node `wait` failed (limit.timeout_ms)"),
        "{}",
        stderr(&output)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

/// From TEA: python/tests/fixtures/hierarchical_ltm_minimal.yaml (unchanged).
const TEA_LTM_MINIMAL: &str = include_str!("tea_corpus/hierarchical_ltm_minimal.yaml");

#[test]
fn tea_settings_sections_load_with_a_warning_and_strict_refuses_them() {
    let (_turn, cache) = inline_cache();
    let scratch = Scratch::new();
    let agent = scratch.agent("ltm.yaml", TEA_LTM_MINIMAL);
    let output = scratch
        .kettle()
        .arg("validate")
        .arg(&agent)
        .output()
        .expect("validate");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("warning: ")
            && stderr(&output)
                .contains("settings.ltm (TEA) is ignored: Kettle has no long-term memory store"),
        "{}",
        stderr(&output)
    );
    let strict = scratch
        .kettle()
        .args(["validate", "--strict"])
        .arg(&agent)
        .output()
        .expect("validate");
    assert_eq!(strict.status.code(), Some(2), "{}", stderr(&strict));
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_CACHE_DIR", &cache)
        .args(["--input", r#"{"input": "hi"}"#])
        .output()
        .expect("kettle run");
    assert_eq!(final_state(&output), json!({"input": "hi", "output": "hi"}));
    // `kettle run` says it too.
    assert!(
        stderr(&output).contains("kettle: warning: ")
            && stderr(&output).contains("settings.ltm (TEA) is ignored"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn what_tea_ignores_on_a_node_loads_with_a_warning() {
    // From TEA: python/tests/fixtures/validate/strict_known_good/output_key_used.yaml (unchanged):
    // TEA applies `output:` to actions only; the inline code's dict is merged as it is.
    let (_turn, cache) = inline_cache();
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "output_key_used.yaml",
        r#"name: output-key-used
state_schema:
  raw: str
nodes:
  - name: extract
    run: 'return {"raw": "data"}'
    output: parsed
  - name: branch_a
    run: 'return {}'
  - name: branch_b
    run: 'return {}'
edges:
  - from: __start__
    to: extract
  - from: extract
    to: branch_a
    when: "state.parsed"
  - from: extract
    to: branch_b
    when: "not state.parsed"
  - from: branch_a
    to: __end__
  - from: branch_b
    to: __end__
"#,
    );
    let output = scratch
        .kettle()
        .arg("validate")
        .arg(&agent)
        .output()
        .expect("validate");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("`output:` of node `extract` has no effect"),
        "{}",
        stderr(&output)
    );
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_CACHE_DIR", &cache)
        // Kettle's conditions refuse a missing key (TEA reads None), so the input sets it.
        .args(["--events", "--input", r#"{"parsed": null}"#])
        .output()
        .expect("kettle run");
    // `output:` did not set `parsed`, so the run goes to branch_b, as in TEA.
    assert_eq!(final_state(&output), json!({"parsed": null, "raw": "data"}));
    assert!(
        stderr(&output).contains("\"branch_b\""),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("\"branch_a\""),
        "{}",
        stderr(&output)
    );

    // A node's `condition:` outside a loop, and TEA-Rust's `llm.chat`, and a per-edge
    // `parallel_strategy`.
    let agent = scratch.agent(
        "tea-keys.yaml",
        r#"
name: tea-node-keys
nodes:
  - name: start
  - name: greet
    condition: "{{ state.never }}"
    uses: llm.chat
    with:
      messages: [{role: user, content: hello}]
    output: answer
  - name: other
    run: {type: expression, value: "1", output_key: other}
  - name: join
    fan_in: true
    run: {type: expression, value: "parallel_results | length", output_key: joined}
edges:
  - {from: __start__, to: start}
  - {from: start, to: greet, type: parallel, parallel_strategy: thread, fan_in: join}
  - {from: start, to: other, type: parallel, parallel_strategy: process, fan_in: join}
  - {from: greet, to: join}
  - {from: other, to: join}
  - {from: join, to: __end__}
"#,
    );
    let output = scratch
        .kettle()
        .arg("validate")
        .arg(&agent)
        .output()
        .expect("validate");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("`condition:` of node `greet` has no effect"));
    let output = scratch.run(&agent, &["--quiet"]);
    let state = final_state(&output);
    assert_eq!(state["joined"], 2, "{state}");
}

#[test]
fn tea_llm_settings_keys_mean_what_they_mean_in_tea_and_the_key_stays_secret() {
    let server = FakeOpenAi::start(Behaviour::Answer);
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "keys.yaml",
        &format!(
            r#"
name: tea-llm-keys
settings:
  auto_trace: true
  llm:
    default_provider: openai
    default_model: gpt-tea
    api_base: {}
    api_key: "${{TEA_TEST_API_KEY}}"
    timeout: 30
    max_tokens: 7
nodes:
  - name: ask
    uses: llm.call
    with: {{prompt: hello}}
    output: answer
"#,
            server.base_url()
        ),
    );
    let key = "sk-tea-test-0123456789abcdef";
    let output = scratch
        .run_command(&agent)
        .env("TEA_TEST_API_KEY", key)
        .output()
        .expect("kettle run");
    let state = final_state(&output);
    assert_eq!(state["answer"]["content"], "echo: hello");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].body["model"], "gpt-tea");
    assert_eq!(requests[0].body["max_tokens"], 7);
    assert_eq!(
        requests[0].headers.get("authorization").map(String::as_str),
        Some(format!("Bearer {key}").as_str())
    );
    let trace = std::fs::read_dir(scratch.traces())
        .expect("traces")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("trace"))
        .collect::<String>();
    assert!(!trace.contains(key) && !stderr(&output).contains(key));

    // A key written into the file is refused, and not repeated.
    let written = scratch.agent(
        "written.yaml",
        "name: w\nsettings:\n  llm: {provider: openai, model: m, api_key: sk-written-0123456789}\nnodes:\n  - name: a\n    uses: llm.call\n    with: {prompt: x}\n",
    );
    let output = scratch
        .kettle()
        .arg("validate")
        .arg(&written)
        .output()
        .expect("validate");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("settings.llm.api_key holds a key written into the agent file")
    );
    assert!(
        !stderr(&output).contains("sk-written"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn inline_python_inline_lua_a_rust_component_and_llm_call_make_one_tree() {
    let (_turn, cache) = inline_cache();
    let scratch = Scratch::new();
    let probe = repo().join("tests/nodes/llm-probe");
    let yaml = format!(
        r#"
name: four-kinds
initial_state: {{prompt: "name a tea"}}
nodes:
  - name: python
    run: |
      answer = llm.call("Say tea", max_tokens=5)
      return {{"from_python": answer.content}}
  - name: lua
    language: lua
    run: |
      return {{from_lua = string.upper(state.from_python)}}
  - name: rust
    component: {}
    config: {{mode: call, key: from_rust}}
  - name: summarize
    uses: llm.call
    with:
      prompt: "{{{{ state.from_lua }}}}"
    output: summary
"#,
        probe.display()
    );
    let agent = scratch.agent("four.yaml", &yaml);
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_CACHE_DIR", &cache)
        .arg("--quiet")
        .output()
        .expect("kettle run");
    let state = final_state(&output);
    // The offline mock answers `[mock] ` and the prompt.
    assert_eq!(state["from_python"], "[mock] Say tea");
    assert_eq!(state["from_lua"], "[MOCK] SAY TEA");
    assert_eq!(
        state["from_rust"],
        json!({"answer": "[mock] name a tea", "finish_reason": "stop"})
    );
    assert_eq!(state["summary"]["content"], "[mock] [MOCK] SAY TEA");
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(
        names(&children(&spans, root)),
        ["node python", "node lua", "node rust", "node summarize"]
    );
    for (node, calls) in [("python", 1), ("lua", 0), ("rust", 1), ("summarize", 1)] {
        let kids = children(&spans, span(&spans, &format!("node {node}")));
        let chats = kids.iter().filter(|s| s.name.starts_with("chat ")).count();
        assert_eq!(
            chats,
            calls,
            "LLM calls under node {node}: {:?}",
            names(&kids)
        );
    }
    assert_eq!(
        spans.iter().filter(|s| s.name.starts_with("chat ")).count(),
        3,
        "every LLM call is under its node"
    );
}

#[test]
fn file_read_and_write_stay_inside_the_nodes_fs_grants() {
    let scratch = Scratch::new();
    let data = scratch.path().join("data");
    std::fs::create_dir_all(&data).expect("data folder");
    std::fs::write(data.join("in.txt"), "sencha").expect("input");
    std::fs::write(scratch.path().join("secret.txt"), "do not read").expect("secret");
    #[cfg(unix)]
    std::os::unix::fs::symlink(scratch.path().join("secret.txt"), data.join("link.txt"))
        .expect("symlink");
    let agent = scratch.agent(
        "files.yaml",
        r#"
name: tea-files
nodes:
  - name: load
    uses: file.read
    with: {path: "data/{{ state.name }}"}
    permissions:
      fs: [{path: data, access: read}]
    output: loaded
  - name: missing
    uses: file.read
    with: {path: data/none.txt}
    permissions:
      fs: [{path: data, access: read}]
    output: absent
  - name: save
    uses: file.write
    with: {path: "data/out/{{ state.name }}", content: "{{ state.loaded.content | upper }}"}
    permissions:
      fs: [{path: data, access: read_write}]
    output: saved
"#,
    );
    let output = scratch.run(&agent, &["--quiet", "--input", r#"{"name": "in.txt"}"#]);
    assert_eq!(
        final_state(&output),
        json!({
            "name": "in.txt",
            "loaded": {"content": "sencha", "success": true},
            "absent": {"success": false, "error": "entity not found", "error_type": "FileNotFoundError"},
            "saved": {"path": "data/out/in.txt", "success": true}
        })
    );
    assert_eq!(
        std::fs::read_to_string(data.join("out/in.txt")).expect("written"),
        "SENCHA"
    );

    // Outside the grant, through `..`, through a symlink, writing with a read grant, or with
    // no grant at all (TEA's agents as they are): the node fails, saying what to grant.
    for (name, yaml) in [
        (
            "dotdot",
            "uses: file.read\n    with: {path: data/../secret.txt}\n    permissions: {fs: [{path: data, access: read}]}",
        ),
        (
            "link",
            "uses: file.read\n    with: {path: data/link.txt}\n    permissions: {fs: [{path: data, access: read}]}",
        ),
        (
            "readonly",
            "uses: file.write\n    with: {path: data/x.txt, content: x}\n    permissions: {fs: [{path: data, access: read}]}",
        ),
        (
            "ungranted",
            "uses: file.read\n    with: {path: data/in.txt}",
        ),
    ] {
        let agent = scratch.agent(
            &format!("{name}.yaml"),
            &format!("name: {name}\nnodes:\n  - name: touch\n    {yaml}\n"),
        );
        let output = scratch.run(&agent, &["--quiet"]);
        assert_eq!(output.status.code(), Some(1), "{name}: {}", stderr(&output));
        assert!(
            stderr(&output).contains("node `touch` failed (denied)")
                && stderr(&output).contains("permissions.fs"),
            "{name}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("do not read"), "{name}");
    }
    assert!(!data.join("x.txt").exists());
}
