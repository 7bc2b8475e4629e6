//! TEA's inline Lua (`language: lua`, or a `-- lua` first line) run by Kettle's Lua interpreter
//! component, which `kettle` writes into its cache and builds from the sources compiled into
//! it: exact final states, errors naming the node and the line, hostile code contained, and
//! Lua beside Python in one run and one trace.

use crate::support::{Scratch, assert_whole_trace, final_state, span, stderr};
use serde_json::json;
use std::sync::{Mutex, MutexGuard, PoisonError};

/// The tests here take turns: the first builds the interpreter from the sources in `kettle`,
/// the next finds it built.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static TURN: Mutex<()> = Mutex::new(());
    TURN.lock().unwrap_or_else(PoisonError::into_inner)
}

const AGENT: &str = r#"
name: tea-inline-lua
nodes:
  - name: count
    language: lua
    run: |
      local n = state.n + 1
      return {n = n, greeting = "hi " .. state.name}
  - name: words
    run: |
      -- lua
      local out = {}
      for w in string.gmatch(state.greeting, "%a+") do
        table.insert(out, string.upper(w))
      end
      return {words = out, count = #out, label = string.format("%d words", #out)}
  - name: python_too
    run: |
      return {"joined": "-".join(state["words"])}
edges:
  - {from: __start__, to: count}
  - {from: count, to: words}
  - {from: words, to: python_too}
  - {from: python_too, to: __end__}
"#;

#[test]
fn a_tea_agent_mixing_inline_lua_and_python_reaches_the_exact_state_in_one_trace() {
    let _turn = one_at_a_time();
    let scratch = Scratch::new();
    let agent = scratch.agent("lua.yaml", AGENT);
    let output = scratch.run(&agent, &["--input", r#"{"n": 1, "name": "ana"}"#]);
    assert_eq!(
        final_state(&output),
        json!({
            "n": 2, "name": "ana", "greeting": "hi ana",
            "words": ["HI", "ANA"], "count": 2, "label": "2 words", "joined": "HI-ANA"
        })
    );
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    for node in ["count", "words", "python_too"] {
        let node_span = span(&spans, &format!("node {node}"));
        assert_eq!(
            node_span.parent_span_id.as_deref(),
            Some(root.span_id.as_str())
        );
        assert_eq!(node_span.status.code, "ok");
    }
}

#[test]
fn a_lua_error_names_the_node_and_the_line_and_hostile_lua_is_contained() {
    let _turn = one_at_a_time();
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "broken.yaml",
        "name: broken\nnodes:\n  - name: broken\n    language: lua\n    run: |\n      local a = 1\n      return {b = a + nil}\n",
    );
    let output = scratch.run(&agent, &[]);
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("broken") && text.contains("line 2"),
        "the error names the node and the line: {text}"
    );

    let agent = scratch.agent(
        "spin.yaml",
        "name: spin\nnodes:\n  - name: spin\n    language: lua\n    limits: {timeout_ms: 300}\n    run: |\n      while true do end\n",
    );
    let output = scratch.run(&agent, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("limit.timeout_ms"),
        "{}",
        stderr(&output)
    );

    let agent = scratch.agent(
        "escape.yaml",
        "name: escape\nnodes:\n  - name: escape\n    language: lua\n    run: |\n      return {os = type(os), io = type(io), require = type(require)}\n",
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(
        final_state(&output),
        json!({"os": "nil", "io": "nil", "require": "nil"})
    );
}
