//! TEA's inline Python (`run: |`, `script: |`, `language: python`) run by Kettle's Python
//! interpreter component: TEA's semantics with exact final states, errors naming the node and
//! the line, hostile code contained like a hostile component, the run's instance shared by
//! its inline nodes only (`isolation: node` for a fresh one), and one trace per run.

use crate::support::{
    Scratch, assert_whole_trace, children, final_state, names, repo, span, stderr,
};
use serde_json::json;
use std::path::PathBuf;
use std::process::Output;
use std::sync::Mutex;

/// One compile cache for every test here: the interpreter is built and compiled once, by the
/// first test that needs it, while the others wait.
fn shared_cache() -> PathBuf {
    static WARM: Mutex<bool> = Mutex::new(false);
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("inline-python-cache");
    let mut warm = WARM
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !*warm {
        let scratch = Scratch::new();
        let agent = scratch.agent(
            "warm.yaml",
            "name: warm\nnodes:\n  - name: warm\n    run: |\n      return {\"ok\": True}\n",
        );
        let output = scratch
            .kettle()
            .env("KETTLE_CACHE_DIR", &cache)
            .arg("run")
            .arg(&agent)
            .output()
            .expect("kettle runs");
        assert_eq!(final_state(&output), json!({"ok": true}));
        *warm = true;
    }
    cache
}

fn run(scratch: &Scratch, name: &str, yaml: &str, input: &str) -> Output {
    let agent = scratch.agent(name, yaml);
    scratch
        .run_command(&agent)
        .env("KETTLE_CACHE_DIR", shared_cache())
        .args(["--input", input])
        .output()
        .expect("kettle runs")
}

const TEA_AGENT: &str = r#"
name: tea-inline
variables:
  factor: 3
state_schema:
  n: int
nodes:
  - name: double
    run: |
      n = state["n"] * 2
      return {"n": n, "encoded": json.dumps({"n": n})}
  - name: scale
    script: |
      # without the r-word, the names it leaves are the update (not `_` names, not modules)
      import math
      scaled = state["n"] * variables["factor"]
      root = math.isqrt(scaled)
      _scratch = 1
  - name: templated
    language: python
    run: |
      return {"label": "n is {{ state.n }}"}
  - name: fan
    run: |
      return {"items": [1, 2, 3]}
  - name: per_item
    type: dynamic_parallel
    items: "{{ state['items'] }}"
    fan_in: collect
    action:
      run: |
        return {"square": item * item, "at": index}
  - name: collect
    run: |
      return {"squares": [r["state"]["square"] for r in state["parallel_results"]]}
  - name: loop
    type: while_loop
    condition: "state.count < 3"
    max_iterations: 10
    body:
      - run: |
          return {"count": state.get("count", 0) + 1}
  - name: steps
    steps:
      - name: first
        run: |
          return {"trail": ["first"]}
      - name: second
        run: |
          return {"trail": state["trail"] + ["second"]}
"#;

#[test]
fn a_tea_agent_with_inline_python_reaches_the_exact_state() {
    let scratch = Scratch::new();
    let output = run(&scratch, "tea.yaml", TEA_AGENT, r#"{"n": 2, "count": 0}"#);
    assert_eq!(
        final_state(&output),
        json!({
            "n": 4,
            "encoded": "{\"n\": 4}",
            "scaled": 12,
            "root": 3,
            "label": "n is 4",
            "items": [1, 2, 3],
            // Each item runs on the whole state, with its item and index (TEA's branch state).
            "parallel_results": ([0, 1, 2].map(|i| {
                let item = i + 1;
                json!({"index": i, "item": item, "state": {
                    "n": 4, "count": 0, "encoded": "{\"n\": 4}", "scaled": 12, "root": 3,
                    "label": "n is 4", "items": [1, 2, 3],
                    "item": item, "index": i, "square": item * item, "at": i
                }})
            })),
            "squares": [1, 4, 9],
            "count": 3,
            "trail": ["first", "second"]
        })
    );
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    assert_eq!(
        span(&spans, "node double").attributes["kettle.node.kind"],
        "inline"
    );
}

/// The interpreter has no files at run time: the standard library modules TEA's inline code
/// imports are in its snapshot.
#[test]
fn the_standard_library_modules_tea_code_imports_are_there() {
    let scratch = Scratch::new();
    let yaml = r#"
name: stdlib
nodes:
  - name: use_them
    run: |
      import base64, datetime, hashlib, logging, re, string, uuid, statistics, textwrap
      return {
          "sha": hashlib.sha256(b"kettle").hexdigest()[:12],
          "b64": base64.b64encode(b"hi").decode(),
          "day": datetime.date(2026, 11, 30).isoformat(),
          "logger": logging.getLogger("tea").name,
          "words": re.findall(r"[a-z]+", "one, two"),
          "letters": string.ascii_lowercase[:3],
          "uuid": str(uuid.UUID(int=1)),
          "mean": statistics.mean([1, 2, 3]),
          "short": textwrap.shorten("a b c d e f", width=7),
      }
"#;
    let output = run(&scratch, "stdlib.yaml", yaml, "{}");
    assert_eq!(
        final_state(&output),
        json!({
            "sha": "20cd4732ae60",
            "b64": "aGk=",
            "day": "2026-11-30",
            "logger": "tea",
            "words": ["one", "two"],
            "letters": "abc",
            "uuid": "00000000-0000-0000-0000-000000000001",
            "mean": 2,
            "short": "a [...]",
        })
    );
}

/// The run's shared interpreter instance is judged like a fresh one: a huge error message is
/// cut to `max_error_bytes`.
#[test]
fn an_inline_error_message_is_cut_to_max_error_bytes() {
    let scratch = Scratch::new();
    let yaml = "name: huge\nnodes:\n  - name: huge\n    limits: {max_error_bytes: 2048}\n    run: |\n      raise ValueError(\"x\" * 1000000)\n";
    let output = run(&scratch, "huge.yaml", yaml, "{}");
    assert!(!output.status.success());
    let text = stderr(&output);
    assert!(
        text.contains("bytes cut]"),
        "the message says it was cut: {}",
        &text[..text.len().min(600)]
    );
    assert!(
        text.len() < 20_000,
        "the message is cut: {} bytes on stderr",
        text.len()
    );
}

#[test]
fn errors_name_the_node_the_line_and_the_python_message() {
    let scratch = Scratch::new();
    let yaml = r#"
name: broken
nodes:
  - name: divide
    run: |
      def ratio(a, b):
          return a / b
      x = state["x"]
      return {"r": ratio(x, 0)}
"#;
    let output = run(&scratch, "broken.yaml", yaml, r#"{"x": 1}"#);
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("node `divide` failed (failed)"), "{text}");
    assert!(
        text.contains("line 2: ZeroDivisionError: division by zero"),
        "{text}"
    );
    assert!(
        text.contains("line 4: return {\"r\": ratio(x, 0)}"),
        "the calling frame: {text}"
    );
    assert!(
        text.contains("line 2 in ratio: return a / b"),
        "the failing frame: {text}"
    );

    let syntax =
        "name: syntax\nnodes:\n  - name: typo\n    run: |\n      x = 1\n      return {\"x\": x\n";
    let output = run(&scratch, "syntax.yaml", syntax, "{}");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(text.contains("node `typo` failed (failed)"), "{text}");
    assert!(text.contains("line 2: SyntaxError"), "{text}");
}

#[test]
fn a_failing_inline_node_is_routed_by_on_error() {
    let scratch = Scratch::new();
    let yaml = r#"
name: routed
nodes:
  - name: fragile
    on_error: handle
    run: |
      raise ValueError("no " + state["what"])
  - name: after
    run: |
      return {"after": True}
  - name: handle
    run: |
      return {"handled": state["error"]["kind"], "why": state["error"]["message"].splitlines()[0]}
edges:
  - from: fragile
    to: after
  - from: handle
    to: __end__
"#;
    let state = final_state(&run(&scratch, "routed.yaml", yaml, r#"{"what": "tea"}"#));
    assert_eq!(state["handled"], "failed");
    assert!(
        state["why"]
            .as_str()
            .is_some_and(|m| m.contains("line 1: ValueError: no tea")),
        "{state}"
    );
    assert_eq!(state.get("after"), None);
}

/// Runs one hostile node (under `limits:`) and returns kettle's stderr, asserting the node
/// failed with `kind` and the trace is whole.
fn hostile(scratch: &Scratch, name: &str, code: &str, limits: &str, kind: &str) -> String {
    let indented: String = code.lines().map(|l| format!("      {l}\n")).collect();
    let yaml = format!(
        "name: hostile\nnodes:\n  - name: hostile\n    limits: {limits}\n    run: |\n{indented}"
    );
    let traces = scratch.path().join(format!("traces-{name}"));
    let agent = scratch.agent(&format!("{name}.yaml"), &yaml);
    let output = scratch
        .kettle()
        .env("KETTLE_CACHE_DIR", shared_cache())
        .env("KETTLE_TEST_SECRET", "leaked")
        .arg("run")
        .arg(&agent)
        .arg("--trace-dir")
        .arg(&traces)
        .output()
        .expect("kettle runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{name}: {text}");
    assert!(
        text.contains(&format!("node `hostile` failed ({kind})")),
        "{name}: {text}"
    );
    let files: Vec<_> = std::fs::read_dir(&traces)
        .expect("trace folder")
        .map(|e| e.expect("entry").path())
        .collect();
    let spans = kettle::telemetry::read_trace_file(&files[0]).expect("trace");
    assert_whole_trace(&spans);
    assert_eq!(span(&spans, "node hostile").attributes["error.type"], kind);
    text
}

#[test]
fn hostile_inline_code_is_contained_like_a_hostile_component() {
    let scratch = Scratch::new();
    let started = std::time::Instant::now();
    let text = hostile(
        &scratch,
        "loop",
        "while True:\n    pass",
        "{timeout_ms: 1000}",
        "limit.timeout_ms",
    );
    assert!(text.contains("timeout_ms=1000"), "{text}");
    let text = hostile(
        &scratch,
        "memory",
        "blocks = []\nwhile True:\n    blocks.append(bytearray(1 << 20))",
        "{memory_mb: 64}",
        "limit.memory_mb",
    );
    assert!(text.contains("memory_mb=64"), "{text}");
    let text = hostile(
        &scratch,
        "printer",
        "while True:\n    print('flood')",
        "{timeout_ms: 1000, max_log_lines: 5}",
        "limit.timeout_ms",
    );
    assert!(
        text.matches("flood").count() <= 5,
        "at most max_log_lines lines reach the log: {}",
        text.matches("flood").count()
    );
    let text = hostile(
        &scratch,
        "file",
        "open('/etc/passwd').read()",
        "{}",
        "failed",
    );
    assert!(text.contains("line 1: FileNotFoundError"), "{text}");
    assert!(
        text.contains("permissions: {fs: ...}"),
        "the message names the grant: {text}"
    );
    let text = hostile(
        &scratch,
        "socket",
        "import socket\nsocket.create_connection(('127.0.0.1', 9))",
        "{}",
        "failed",
    );
    assert!(
        text.contains("permissions: {http: [HOST]}") || text.contains("permissions: {fs: ...}"),
        "{text}"
    );
    assert!(started.elapsed().as_secs() < 120);

    // Nothing of the host's environment, arguments or files reaches the code.
    let yaml = r#"
name: nosy
nodes:
  - name: nosy
    run: |
      import os, sys
      return {"env": dict(os.environ), "argv": sys.argv, "root": os.listdir("/") if os.path.isdir("/") else None}
"#;
    let agent = scratch.agent("nosy.yaml", yaml);
    let output = scratch
        .run_command(&agent)
        .env("KETTLE_CACHE_DIR", shared_cache())
        .env("KETTLE_TEST_SECRET", "leaked")
        .output()
        .expect("kettle runs");
    let state = final_state(&output);
    assert_eq!(state["env"], json!({}));
    assert!(!state.to_string().contains("leaked"), "{state}");
}

#[test]
fn inline_nodes_share_one_interpreter_per_run_and_isolation_node_gets_a_fresh_one() {
    let scratch = Scratch::new();
    // Module state is the only thing that survives between executions of one instance.
    let count = "import sys\nsys.kettle_count = getattr(sys, 'kettle_count', 0) + 1\nreturn {KEY: sys.kettle_count}";
    let node = |name: &str, isolation: &str| {
        let body: String = count
            .replace("KEY", &format!("\"{name}\""))
            .lines()
            .map(|l| format!("      {l}\n"))
            .collect();
        format!("  - name: {name}\n{isolation}    run: |\n{body}")
    };
    let yaml = format!(
        "name: shared\nnodes:\n{}{}{}",
        node("first", ""),
        node("second", ""),
        node("alone", "    isolation: node\n")
    );
    let agent = scratch.agent("shared.yaml", &yaml);
    for _ in 0..2 {
        // A second run starts from a fresh instance: nothing is shared between runs.
        let output = scratch
            .run_command(&agent)
            .env("KETTLE_CACHE_DIR", shared_cache())
            .output()
            .expect("kettle runs");
        assert_eq!(
            final_state(&output),
            json!({"first": 1, "second": 2, "alone": 1})
        );
    }
}

#[test]
fn inline_python_a_component_and_llm_calls_make_one_trace() {
    let scratch = Scratch::new();
    let echo = repo().join("tests/nodes/echo");
    let yaml = format!(
        r#"
name: mixed
nodes:
  - name: ask
    run: |
      with trace.span("thinking"):
          answer = llm.call("Say tea", max_tokens=5)
      print("asked")
      return {{"answer": answer.content}}
  - name: echo
    component: {}
  - name: summarize
    uses: llm.call
    with:
      prompt: "Summarize {{{{ state.answer }}}}"
"#,
        echo.display()
    );
    let output = run(&scratch, "mixed.yaml", &yaml, "{}");
    let state = final_state(&output);
    assert!(
        state["answer"].as_str().is_some_and(|a| !a.is_empty()),
        "{state}"
    );
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(
        names(&children(&spans, root)),
        ["node ask", "node echo", "node summarize"]
    );
    let ask = span(&spans, "node ask");
    assert_eq!(names(&children(&spans, ask)), ["thinking"]);
    let thinking = span(&spans, "thinking");
    assert_eq!(
        names(&children(&spans, thinking)),
        ["chat mock-1"],
        "the LLM call of the inline code is parented by the host under its open span"
    );
    assert!(
        ask.events.iter().any(|e| e.name == "log"),
        "print goes to the node's log: {:?}",
        ask.events
    );
    assert_eq!(
        names(&children(&spans, span(&spans, "node summarize"))),
        ["chat mock-1"]
    );
}
