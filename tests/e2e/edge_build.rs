//! Components compiled ahead of time for the edge: `kettle build --precompile` writes `.cwasm`
//! files and their manifest; `kettle run --precompiled-only` runs from them alone — the code
//! path of the runtime-only `kettle` (no Cranelift), which scripts/edge-aarch64.sh builds and
//! runs on aarch64 — reaching the same state, and refuses, naming the node and the command,
//! what was not precompiled, what changed since, and what was compiled for another machine.

use crate::support::{Scratch, final_state, repo, stderr};
use kettle::sandbox::{
    MANIFEST_FILE, Manifest, WASMTIME_VERSION, component_sha256, engine_fingerprint, host_target,
};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

fn hello() -> PathBuf {
    repo().join("examples/hello/agent.yaml")
}

fn manifest(dir: &Path) -> Manifest {
    let text = std::fs::read_to_string(dir.join(MANIFEST_FILE)).expect("manifest.json written");
    serde_json::from_str(&text).expect("a manifest")
}

/// Files the compile cache holds: what the run compiled.
fn compiled_entries(scratch: &Scratch) -> usize {
    std::fs::read_dir(scratch.cache().join("components"))
        .map(|dir| dir.count())
        .unwrap_or(0)
}

fn precompile(scratch: &Scratch, agent: &Path, out: &Path, extra: &[&str]) -> String {
    let output = scratch
        .kettle()
        .args(["build", "--precompile"])
        .arg(agent)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("kettle runs");
    assert!(
        output.status.success(),
        "precompile failed:\n{}",
        stderr(&output)
    );
    stderr(&output)
}

#[test]
fn hello_precompiled_runs_from_its_cwasm_alone_to_the_same_state() {
    let scratch = Scratch::new();
    let out = scratch.path().join("precompiled");
    let said = precompile(&scratch, &hello(), &out, &[]);
    assert!(
        said.contains("precompiled folder:nodes/summarize"),
        "{said}"
    );

    let written = manifest(&out);
    assert_eq!(written.agent, "hello");
    assert_eq!(written.agent_file, "agent.yaml");
    assert_eq!(written.target, host_target());
    assert_eq!(written.wasmtime, WASMTIME_VERSION);
    assert_eq!(written.engine, engine_fingerprint());
    assert_eq!(written.components.len(), 1, "{written:?}");
    let entry = &written.components[0];
    assert_eq!(entry.nodes, ["summarize"]);
    assert_eq!(entry.source, "folder:nodes/summarize");
    // The manifest names the component by the hash of the build it compiled.
    let built = kettle_build::built_component(
        &repo().join("examples/hello/nodes/summarize"),
        &scratch.cache(),
    )
    .expect("the node was built into the scratch cache");
    let wasm = std::fs::read(&built).expect("built component");
    assert_eq!(entry.component_sha256, component_sha256(&wasm));
    let cwasm = std::fs::read(out.join(&entry.cwasm)).expect("the .cwasm file");
    assert!(
        cwasm.starts_with(b"\x7fELF"),
        "wasmtime's compiled form is an ELF file"
    );
    assert_eq!(compiled_entries(&scratch), 0, "precompiling is not caching");

    let input = r#"{"topic": "tea"}"#;
    let output = scratch.run(
        &hello(),
        &[
            "--input",
            input,
            "--precompiled",
            out.to_str().expect("utf-8"),
            "--precompiled-only",
        ],
    );
    let precompiled_state = final_state(&output);
    assert!(
        stderr(&output).contains("loaded node `summarize` precompiled"),
        "{}",
        stderr(&output)
    );
    assert_eq!(compiled_entries(&scratch), 0, "nothing was compiled");

    let compiled = scratch.run(&hello(), &["--input", input]);
    assert_eq!(final_state(&compiled), precompiled_state);
    assert!(
        stderr(&compiled).contains("compiled node `summarize`"),
        "no manifest in the default place: compiled as usual"
    );

    // A full kettle pointed at the manifest uses it, found by the component's hash.
    let found = scratch.run(
        &hello(),
        &[
            "--input",
            input,
            "--precompiled",
            out.to_str().expect("utf-8"),
        ],
    );
    assert_eq!(final_state(&found), precompiled_state);
    assert!(stderr(&found).contains("loaded node `summarize` precompiled"));
}

#[test]
fn what_was_not_precompiled_is_refused_naming_the_node_and_the_command() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "inline.yaml",
        r#"
name: inline-lua
nodes:
  - name: count
    language: lua
    run: |
      return {n = state.n + 1}
edges:
  - {from: __start__, to: count}
  - {from: count, to: __end__}
"#,
    );
    let empty = scratch.path().join("nothing");
    std::fs::create_dir_all(&empty).expect("dir");
    std::fs::write(
        empty.join(MANIFEST_FILE),
        serde_json::to_string(&json!({
            "format": 1, "agent": "inline-lua", "agent_file": "inline.yaml",
            "kettle": "0.1.0", "wasmtime": WASMTIME_VERSION, "target": host_target(),
            "engine": engine_fingerprint(), "components": []
        }))
        .expect("json"),
    )
    .expect("write");
    let output = scratch.run(
        &agent,
        &[
            "--input",
            r#"{"n": 1}"#,
            "--precompiled",
            empty.to_str().expect("utf-8"),
            "--precompiled-only",
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains("node `count`: its component (interpreter:lua) is not precompiled"),
        "{said}"
    );
    assert!(
        said.contains(&format!("kettle build --precompile {}", agent.display())),
        "{said}"
    );
    assert_eq!(compiled_entries(&scratch), 0);

    // No manifest where it was pointed: said so, with the command.
    let missing = scratch.run(
        &agent,
        &["--input", r#"{"n": 1}"#, "--precompiled", "absent"],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("it has no manifest.json"),
        "{}",
        stderr(&missing)
    );

    // The inline interpreter precompiles like any component, and then runs.
    let out = scratch.path().join("precompiled");
    let said = precompile(&scratch, &agent, &out, &[]);
    assert!(said.contains("precompiled interpreter:lua"), "{said}");
    let output = scratch.run(
        &agent,
        &[
            "--input",
            r#"{"n": 1}"#,
            "--precompiled",
            out.to_str().expect("utf-8"),
            "--precompiled-only",
        ],
    );
    assert_eq!(final_state(&output), json!({"n": 2}));
    assert_eq!(compiled_entries(&scratch), 0);
}

#[test]
fn a_changed_component_or_one_compiled_for_another_machine_is_refused() {
    let scratch = Scratch::new();
    // A .wasm file beside the agent: the hello node, built.
    let built = scratch
        .kettle()
        .arg("build")
        .arg(repo().join("examples/hello/nodes/summarize"))
        .output()
        .expect("kettle runs");
    assert!(built.status.success(), "{}", stderr(&built));
    let wasm = kettle_build::built_component(
        &repo().join("examples/hello/nodes/summarize"),
        &scratch.cache(),
    )
    .expect("built");
    let node = scratch.path().join("summarize.wasm");
    std::fs::copy(&wasm, &node).expect("copy");
    let agent = scratch.agent(
        "agent.yaml",
        r#"
name: one-node
nodes:
  - name: summarize
    component: summarize.wasm
edges:
  - {from: __start__, to: summarize}
  - {from: summarize, to: __end__}
"#,
    );

    // For another machine: compiled, but refused here, saying for which.
    let foreign = if host_target().starts_with("aarch64") {
        "x86_64-unknown-linux-gnu"
    } else {
        "aarch64-unknown-linux-gnu"
    };
    let out = scratch.path().join("foreign");
    precompile(&scratch, &agent, &out, &["--target", foreign]);
    assert_eq!(manifest(&out).target, foreign);
    let output = scratch.run(
        &agent,
        &[
            "--input",
            "{}",
            "--precompiled",
            out.to_str().expect("utf-8"),
            "--precompiled-only",
        ],
    );
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(
        said.contains(&format!("precompiled for {foreign}")),
        "{said}"
    );
    assert!(said.contains(&host_target()), "{said}");

    // For this machine, in the default place beside the agent: found without --precompiled.
    precompile(
        &scratch,
        &agent,
        &scratch
            .path()
            .join(".kettle/precompiled/agent")
            .join(host_target()),
        &[],
    );
    let output = scratch.run(
        &agent,
        &["--input", r#"{"topic": "tea"}"#, "--precompiled-only"],
    );
    let state: Value = final_state(&output);
    assert!(state["summary"].is_string(), "{state}");

    // The .wasm changed since: refused, not run from the stale compiled form.
    let mut bytes = std::fs::read(&node).expect("read");
    bytes.extend_from_slice(b"\0\0"); // a trailing byte pair: still the same code, other bytes
    std::fs::write(&node, bytes).expect("write");
    let output = scratch.run(
        &agent,
        &["--input", r#"{"topic": "tea"}"#, "--precompiled-only"],
    );
    assert_eq!(output.status.code(), Some(2));
    let said = stderr(&output);
    assert!(
        said.contains(
            "node `summarize`: its component (wasm:summarize.wasm) changed since it was precompiled"
        ),
        "{said}"
    );
    assert!(said.contains("kettle build --precompile"), "{said}");
}
