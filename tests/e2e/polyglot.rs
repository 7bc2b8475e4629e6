//! Python and JavaScript nodes, built from source by Kettle: the same logic in three languages
//! gives the same state and the same trace; `kettle build` skips what is fresh and shows the
//! tool's own errors; the polyglot example runs; hostile nodes are stopped by the sandbox.

use crate::support::{Scratch, assert_whole_trace, children, final_state, repo, span, stderr};
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};
use std::path::Path;

/// One line per span, indented by depth: name, then the guest's `mirror.*` attributes and the
/// names of its events, so that two traces compare as text.
fn shape(spans: &[SpanRecord]) -> String {
    fn walk(spans: &[SpanRecord], span: &SpanRecord, depth: usize, out: &mut String) {
        let attributes: Vec<String> = span
            .attributes
            .iter()
            .filter(|(key, _)| key.starts_with("mirror."))
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        let events: Vec<&str> = span.events.iter().map(|e| e.name.as_str()).collect();
        out.push_str(&format!(
            "{}{} [{}] events={:?} status={}\n",
            "  ".repeat(depth),
            span.name,
            attributes.join(" "),
            events,
            span.status.code
        ));
        for child in children(spans, span) {
            walk(spans, child, depth + 1, out);
        }
    }
    let root = assert_whole_trace(spans);
    let mut out = String::new();
    walk(spans, root, 0, &mut out);
    out
}

fn mirror_agent(scratch: &Scratch, language: &str, node: &Path) -> std::path::PathBuf {
    scratch.agent(
        &format!("mirror-{language}.yaml"),
        &format!(
            "name: mirror\nnodes:\n  - name: mirror\n    component: {}\n    config: {{style: terse}}\n",
            node.display()
        ),
    )
}

#[test]
fn the_same_node_in_rust_python_and_javascript_gives_the_same_state_and_trace() {
    let scratch = Scratch::new();
    let input = r#"{"topic": "tea", "items": ["cups", "pots"]}"#;
    let mut results = Vec::new();
    for (language, node) in [
        ("rust", repo().join("tests/nodes/mirror")),
        ("python", repo().join("tests/polyglot-nodes/mirror-py")),
        ("javascript", repo().join("tests/polyglot-nodes/mirror-js")),
    ] {
        let agent = mirror_agent(&scratch, language, &node);
        let traces = scratch.path().join(format!("traces-{language}"));
        let output = scratch
            .kettle()
            .arg("run")
            .arg(&agent)
            .arg("--trace-dir")
            .arg(&traces)
            .args(["--input", input])
            .output()
            .expect("kettle runs");
        let state = final_state(&output);
        let log = stderr(&output);
        assert_eq!(
            log.matches("kettle: built node").count(),
            1,
            "one line for the one build:\n{log}"
        );
        // A Python folder that needs only the SDK runs from source (the interpreter is the
        // one build); the others are built.
        let ready = if language == "python" {
            "node `mirror` (python) runs from source".to_string()
        } else {
            format!("built node `mirror` ({language})")
        };
        assert!(log.contains(&ready), "{log}");
        let files: Vec<_> = std::fs::read_dir(&traces)
            .expect("trace folder")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1);
        let spans = kettle::telemetry::read_trace_file(&files[0]).expect("trace");
        results.push((language, state, shape(&spans)));
    }

    let (_, rust_state, rust_shape) = &results[0];
    assert_eq!(
        rust_state,
        &json!({
            "topic": "tea",
            "items": ["cups", "pots"],
            "outline": "[mock] Outline tea (terse)",
            "reviews": ["[mock] Review cups", "[mock] Review pots"],
            "output_tokens": rust_state["output_tokens"],
            "node": "mirror",
            "attempt": 1,
        })
    );
    assert!(rust_state["output_tokens"].as_u64().is_some_and(|t| t > 0));
    assert_eq!(
        rust_shape,
        "invoke_agent mirror [] events=[] status=ok\n\
         \x20 node mirror [mirror.topic=\"tea\"] events=[\"log\"] status=ok\n\
         \x20   outline [mirror.items=2] events=[] status=unset\n\
         \x20     chat mock-1 [] events=[] status=unset\n\
         \x20   review [] events=[] status=unset\n\
         \x20     item [mirror.item=\"cups\"] events=[] status=unset\n\
         \x20       chat mock-1 [] events=[] status=unset\n\
         \x20     item [mirror.item=\"pots\"] events=[] status=unset\n\
         \x20       chat mock-1 [] events=[] status=unset\n",
        "the Rust trace"
    );
    for (language, state, shape) in &results[1..] {
        assert_eq!(state, rust_state, "{language} state equals Rust's");
        assert_eq!(shape, rust_shape, "{language} trace shape equals Rust's");
    }
}

/// A node whose `kettle build` output we look at, in a folder of its own.
fn copy_node(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("node folder");
    for entry in std::fs::read_dir(from).expect("source folder") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            std::fs::copy(&path, to.join(path.file_name().expect("name"))).expect("copy");
        }
    }
}

#[test]
fn kettle_build_builds_stale_nodes_only() {
    let scratch = Scratch::new();
    let node = scratch.path().join("node");
    copy_node(&repo().join("tests/polyglot-nodes/mirror-py"), &node);
    let build = || {
        let output = scratch
            .kettle()
            .args(["build", "--precompile"])
            .arg(&node)
            .output()
            .expect("kettle runs");
        assert!(output.status.success(), "{}", stderr(&output));
        stderr(&output)
    };
    let first = build();
    assert!(first.contains("kettle: built"), "{first}");
    assert!(first.contains("(python)"), "{first}");
    let second = build();
    assert!(second.contains("is up to date"), "{second}");
    assert!(!second.contains("kettle: built"), "{second}");

    let app = node.join("app.py");
    let source = std::fs::read_to_string(&app).expect("app.py");
    std::fs::write(&app, format!("{source}\n# changed\n")).expect("write app.py");
    let third = build();
    assert!(
        third.contains("kettle: built"),
        "a changed source rebuilds: {third}"
    );
}

#[test]
fn build_errors_show_the_tools_message_and_the_command_to_rerun() {
    let scratch = Scratch::new();
    let py = scratch.path().join("broken-py");
    std::fs::create_dir_all(&py).expect("folder");
    std::fs::write(
        py.join("app.py"),
        "from kettle import node\n\n@node\ndef run(ctx, state:\n    return {}\n",
    )
    .expect("app.py");
    let js = scratch.path().join("broken-js");
    std::fs::create_dir_all(&js).expect("folder");
    std::fs::write(
        js.join("app.js"),
        "import { node } from \"kettle\";\nexport const run = node((ctx, state) => {\n",
    )
    .expect("app.js");

    for (dir, tool, message) in [
        (&py, "componentize-py", "SyntaxError"),
        (&js, "rolldown", "app.js"),
    ] {
        let output = scratch
            .kettle()
            .args(["build", "--precompile"])
            .arg(dir)
            .output()
            .expect("kettle runs");
        let text = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{text}");
        assert!(text.contains("failed:"), "{text}");
        assert!(text.contains(message), "the tool's own message: {text}");
        assert!(text.contains("to rebuild by hand: (cd "), "{text}");
        assert!(text.contains(tool), "the command names {tool}: {text}");
    }
}

#[test]
fn the_polyglot_example_runs_its_three_languages_in_one_trace() {
    let scratch = Scratch::new();
    let output = scratch.run(
        &repo().join("examples/polyglot/agent.yaml"),
        &["--input", r#"{"topic": "green tea"}"#],
    );
    let state = final_state(&output);
    assert_eq!(
        state["facts"],
        "[mock] List 3 surprising facts about green tea."
    );
    let outline = format!(
        "[mock] Turn these facts into a three-point outline: {}",
        state["facts"].as_str().expect("facts")
    );
    assert_eq!(state["outline"], Value::from(outline.as_str()));
    assert!(
        state["draft"]
            .as_str()
            .is_some_and(|d| d.starts_with("[mock] Write one friendly paragraph"))
    );
    assert!(
        state["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("[mock] Give a five-word title"))
    );

    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    let nodes = children(&spans, root);
    let names: Vec<&str> = nodes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["node research", "node outline", "node draft"]);
    for (node, guest, calls) in [
        ("node research", "gather", 1),
        ("node outline", "structure", 1),
        ("node draft", "write", 2),
    ] {
        let node = span(&spans, node);
        let guest_spans = children(&spans, node);
        assert_eq!(guest_spans.len(), 1, "{} has one guest span", node.name);
        assert_eq!(guest_spans[0].name, guest);
        let chats = children(&spans, guest_spans[0]);
        assert_eq!(chats.len(), calls, "LLM calls under `{guest}`");
        assert!(chats.iter().all(|c| c.name == "chat mock-1"));
    }
}

#[test]
fn the_python_stubs_are_generated_from_this_wit() {
    let scratch = Scratch::new();
    // Kettle's own installer puts componentize-py where the builds find it.
    let install = scratch
        .kettle()
        .args(["doctor", "--install"])
        .output()
        .expect("kettle runs");
    assert!(install.status.success(), "{}", stderr(&install));
    let doctor = crate::support::stdout(&install);
    assert!(
        doctor.contains("ok       componentize-py  0.25.1"),
        "{doctor}"
    );
    assert!(
        doctor.contains("ok       componentize-js  0.19.3"),
        "{doctor}"
    );

    let out = scratch.path().join("stubs");
    let generated = std::process::Command::new(
        crate::support::toolchains_dir().join("python/bin/componentize-py"),
    )
    .arg("-d")
    .arg(repo().join("wit"))
    .args(["-w", "node", "bindings"])
    .arg(&out)
    .output()
    .expect("componentize-py runs");
    assert!(generated.status.success(), "{}", stderr(&generated));
    let committed = repo().join("guest-sdk/python/stubs");
    for file in [
        "componentize_py_types.py",
        "wit_world/__init__.py",
        "wit_world/imports/__init__.py",
        "wit_world/imports/interrupt.py",
        "wit_world/imports/llm.py",
        "wit_world/imports/log.py",
        "wit_world/imports/trace.py",
        "wit_world/imports/types.py",
    ] {
        let fresh = std::fs::read_to_string(out.join(file)).expect("generated file");
        let kept = std::fs::read_to_string(committed.join(file)).expect("committed stub");
        assert_eq!(
            kept, fresh,
            "guest-sdk/python/stubs/{file} is out of date: regenerate it (see guest-sdk/python/README.md)"
        );
    }
}
