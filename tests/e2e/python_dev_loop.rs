//! Python node folders while they are written: a folder that needs nothing but the SDK runs its
//! source in the prebuilt Python interpreter (no componentize build), with the same final
//! state, trace and errors as its built component; an edit is picked up by the next run; a
//! folder that declares dependencies is still built; failures show the traceback's last frames
//! with file and line; the interpreter's list of modules (`interpreters/python/modules.txt`)
//! is the interpreter's.

use crate::support::{Scratch, final_state, repo, stderr};
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::Mutex;

/// One compile cache for these tests (the Python interpreter is built and compiled once).
fn shared_cache() -> PathBuf {
    static WARM: Mutex<bool> = Mutex::new(false);
    let cache = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("python-dev-loop-cache");
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

const APP: &str = r#"from kettle import llm, log, node, trace

import helpers


@node
def run(ctx, state: dict) -> dict:
    if state.get("fail"):
        helpers.lookup(state)
    with trace.span("count") as span:
        n = helpers.double(state["n"]) * ctx.config.get("factor", 1)
        span.set_attribute("count.n", n)
    answer = llm.call(f"Say {n}")
    log.info(f"counted {n}")
    return {"n": n, "answer": answer.content, "node": ctx.node_name, "attempt": ctx.attempt}
"#;

const HELPERS: &str = r#"def double(value):
    return value * 2


def lookup(state):
    return state["missing"]
"#;

const AGENT: &str =
    "name: dev\nnodes:\n  - name: count\n    component: node\n    config: {factor: 3}\n";

/// A scratch folder holding the agent and its node folder `node/`.
fn project() -> (Scratch, PathBuf) {
    let scratch = Scratch::new();
    let node = scratch.path().join("node");
    std::fs::create_dir_all(&node).expect("node folder");
    std::fs::write(node.join("app.py"), APP).expect("app.py");
    std::fs::write(node.join("helpers.py"), HELPERS).expect("helpers.py");
    let agent = scratch.agent("agent.yaml", AGENT);
    (scratch, agent)
}

/// `kettle run` with the shared cache.
fn run(scratch: &Scratch, agent: &Path, input: &str) -> Output {
    scratch
        .run_command(agent)
        .env("KETTLE_CACHE_DIR", shared_cache())
        .args(["--input", input])
        .output()
        .expect("kettle runs")
}

/// No componentize build of the project's node folder happened, ever.
fn assert_nothing_built(scratch: &Scratch) {
    let built = kettle_build::built_component(&scratch.path().join("node"), &shared_cache());
    assert_eq!(built, None, "the folder was built");
}

/// Spans as (name, parent's name), and the node span's attributes.
type TraceShape = (Vec<(String, String)>, Vec<(String, Value)>);

/// The trace of the last run, as (name, parent's name) pairs and the node span's attributes
/// that do not change between runs.
fn trace_shape(scratch: &Scratch) -> TraceShape {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scratch.traces())
        .expect("trace folder")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let spans = kettle::telemetry::read_trace_file(files.last().expect("a trace")).expect("trace");
    let name_of = |id: &Option<String>| -> String {
        spans
            .iter()
            .find(|s| Some(&s.span_id) == id.as_ref())
            .map_or_else(String::new, |s| s.name.clone())
    };
    let mut shape: Vec<(String, String)> = spans
        .iter()
        .map(|s| (s.name.clone(), name_of(&s.parent_span_id)))
        .collect();
    shape.sort();
    let node: &SpanRecord = spans
        .iter()
        .find(|s| s.name == "node count")
        .expect("node span");
    let attributes = node
        .attributes
        .iter()
        .filter(|(key, _)| !key.contains("run.id"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (shape, attributes)
}

/// A failed run's error line as the CLI prints it (control characters escaped).
fn failure(output: &Output) -> String {
    assert!(!output.status.success(), "the run should fail");
    let text = stderr(output);
    text.lines()
        .find(|line| line.contains("run failed"))
        .unwrap_or_else(|| panic!("no failure line in {text}"))
        .to_string()
}

#[test]
fn a_folder_needing_only_the_sdk_runs_from_source_and_picks_up_an_edit() {
    let (scratch, agent) = project();
    let output = run(&scratch, &agent, r#"{"n": 2}"#);
    let state = final_state(&output);
    assert_eq!(state["n"], 12);
    assert_eq!(state["answer"], "[mock] Say 12");
    assert_eq!(state["node"], "count");
    assert!(
        stderr(&output).contains("node `count` (python) runs from source"),
        "{}",
        stderr(&output)
    );
    assert_nothing_built(&scratch);

    // An edit is picked up by the next run, still without a build.
    let app = scratch.path().join("node/app.py");
    std::fs::write(&app, APP.replace("* ctx.config", "* 10 * ctx.config")).expect("edit");
    let edited = run(&scratch, &agent, r#"{"n": 2}"#);
    assert_eq!(final_state(&edited)["n"], 120, "{}", stderr(&edited));
    assert_nothing_built(&scratch);

    // `kettle build` says there is nothing to build, and builds nothing.
    let build = scratch
        .kettle()
        .env("KETTLE_CACHE_DIR", shared_cache())
        .arg("build")
        .arg(&agent)
        .output()
        .expect("kettle runs");
    assert!(build.status.success(), "{}", stderr(&build));
    assert!(
        stderr(&build).contains("needs no build"),
        "{}",
        stderr(&build)
    );
    assert_nothing_built(&scratch);
}

#[test]
fn a_failure_shows_the_last_frames_with_file_and_line_cut_to_max_error_bytes() {
    let (scratch, agent) = project();
    let output = run(&scratch, &agent, r#"{"n": 2, "fail": true}"#);
    let line = failure(&output);
    for part in [
        "node `count` failed (failed)",
        "KeyError: 'missing'",
        r#"File "app.py", line 9, in run"#,
        "helpers.lookup(state)",
        r#"File "helpers.py", line 6, in lookup"#,
        r#"return state["missing"]"#,
    ] {
        assert!(line.contains(part), "`{part}` missing from: {line}");
    }

    let capped = scratch.agent(
        "capped.yaml",
        &format!("{AGENT}    limits: {{max_error_bytes: 64}}\n"),
    );
    let output = run(&scratch, &capped, r#"{"n": 2, "fail": true}"#);
    let line = failure(&output);
    assert!(line.contains("KeyError: 'missing'"), "{line}");
    assert!(!line.contains("helpers.py"), "cut to 64 bytes: {line}");

    // A syntax error names the file and the line too.
    std::fs::write(scratch.path().join("node/helpers.py"), "def double(:\n").expect("edit");
    let output = run(&scratch, &agent, r#"{"n": 2}"#);
    let line = failure(&output);
    assert!(line.contains("SyntaxError"), "{line}");
    assert!(line.contains(r#"File "helpers.py", line 1"#), "{line}");
}

#[test]
fn the_precompiled_component_gives_the_same_state_trace_and_traceback() {
    let (scratch, agent) = project();
    let from_source = run(&scratch, &agent, r#"{"n": 2}"#);
    let state = final_state(&from_source);
    let shape = trace_shape(&scratch);
    let source_failure = failure(&run(&scratch, &agent, r#"{"n": 2, "fail": true}"#));

    let build = scratch
        .kettle()
        .env("KETTLE_CACHE_DIR", shared_cache())
        .args(["build", "--precompile"])
        .arg(&agent)
        .output()
        .expect("kettle runs");
    assert!(build.status.success(), "{}", stderr(&build));
    assert!(
        stderr(&build).contains("built node `count`"),
        "{}",
        stderr(&build)
    );

    let built = run(&scratch, &agent, r#"{"n": 2}"#);
    assert!(
        !stderr(&built).contains("runs from source"),
        "the component is used: {}",
        stderr(&built)
    );
    assert_eq!(final_state(&built), state);
    assert_eq!(trace_shape(&scratch), shape);
    let built_failure = failure(&run(&scratch, &agent, r#"{"n": 2, "fail": true}"#));
    assert_eq!(built_failure, source_failure);
}

#[test]
fn a_folder_declaring_dependencies_is_built() {
    let (scratch, agent) = project();
    std::fs::write(
        scratch.path().join("node/pyproject.toml"),
        "[project]\nname = \"count\"\nversion = \"0.1.0\"\ndependencies = [\"attrs\"]\n",
    )
    .expect("pyproject.toml");
    let output = run(&scratch, &agent, r#"{"n": 2}"#);
    assert_eq!(final_state(&output)["n"], 12);
    let text = stderr(&output);
    assert!(text.contains("built node `count` (python)"), "{text}");
    assert!(!text.contains("runs from source"), "{text}");
}

#[test]
fn the_interpreters_module_list_is_its_snapshot() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "modules.yaml",
        "name: modules\nnodes:\n  - name: modules\n    run: |\n      import sys\n      return {\"modules\": sorted(sys.modules)}\n",
    );
    let output = run(&scratch, &agent, "{}");
    let state = final_state(&output);
    let held: Vec<&str> = state["modules"]
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(Value::as_str)
        .filter(|m| !["__main__", "app", "_kettle_main"].contains(m))
        .collect();
    let listed = std::fs::read_to_string(repo().join("interpreters/python/modules.txt"))
        .expect("modules.txt");
    let listed: Vec<&str> = listed
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        listed, held,
        "interpreters/python/modules.txt is out of date: write the interpreter's modules into it"
    );
}
