//! The hello example end to end through the `kettle` binary: final state, trace shape, the
//! summary, `trace show`, and the compile cache across runs.

use crate::support::{
    Scratch, assert_whole_trace, children, final_state, names, repo, span, stderr, stdout,
};
use serde_json::json;

fn hello() -> std::path::PathBuf {
    repo().join("examples/hello/agent.yaml")
}

#[test]
fn hello_gives_its_state_and_one_whole_trace() {
    let scratch = Scratch::new();
    let output = scratch.run(&hello(), &["--input", r#"{"topic": "tea"}"#]);
    let state = final_state(&output);
    let outline = "[mock] Write a three-point outline about tea.";
    let summary = format!("[mock] Summarize this outline in one sentence: {outline}");
    let polished = format!("[mock] Polish this sentence: {summary}");
    assert_eq!(
        state,
        json!({
            "topic": "tea",
            "outline": outline,
            "summary": summary,
            "polished": {
                "content": polished,
                "model": "mock-1",
                "finish_reason": "stop",
                // 7 system words + 17 prompt words in; "[mock]" + the 17 prompt words out.
                "usage": {"input_tokens": 24, "output_tokens": 18},
                "tool_calls": [],
            },
        })
    );

    let spans = scratch.only_trace();
    assert_eq!(
        spans.len(),
        6,
        "root, 2 nodes, 3 LLM calls: {:?}",
        spans.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    let root = assert_whole_trace(&spans);
    assert_eq!(root.name, "invoke_agent hello");
    assert_eq!(root.attributes["gen_ai.operation.name"], "invoke_agent");
    assert_eq!(root.attributes["gen_ai.agent.name"], "hello");
    assert_eq!(
        names(&children(&spans, root)),
        ["node summarize", "node polish"]
    );

    let summarize = span(&spans, "node summarize");
    let summarize_calls = children(&spans, summarize);
    assert_eq!(
        names(&summarize_calls),
        ["chat mock-1", "chat mock-1"],
        "both LLM calls of the Rust node sit under its span"
    );
    assert_eq!(
        summarize.attributes["hello.topic"], "tea",
        "the guest annotated its own node span"
    );
    let polish = span(&spans, "node polish");
    assert_eq!(names(&children(&spans, polish)), ["chat mock-1"]);

    for call in summarize_calls
        .iter()
        .chain(children(&spans, polish).iter())
    {
        assert_eq!(call.kind, "client");
        assert_eq!(call.attributes["gen_ai.operation.name"], "chat");
        assert_eq!(call.attributes["gen_ai.provider.name"], "mock");
        assert_eq!(call.attributes["gen_ai.request.model"], "mock-1");
        assert_eq!(call.attributes["gen_ai.response.model"], "mock-1");
        assert_eq!(
            call.attributes["gen_ai.response.finish_reasons"],
            json!(["stop"])
        );
        assert!(
            call.attributes["gen_ai.usage.input_tokens"].is_i64(),
            "token counts are integers"
        );
        assert!(call.attributes["gen_ai.usage.output_tokens"].is_i64());
    }
    let polish_call = children(&spans, polish)[0];
    assert_eq!(
        polish_call.attribute_i64("gen_ai.usage.input_tokens"),
        Some(24)
    );
    assert_eq!(polish_call.attributes["gen_ai.request.max_tokens"], 60);

    let summary_text = stderr(&output);
    assert!(
        summary_text.contains("2 nodes run, 3 LLM calls"),
        "{summary_text}"
    );
    assert!(
        summary_text.contains(&root.trace_id),
        "the summary names the trace id:\n{summary_text}"
    );
    assert!(
        summary_text.contains("mock"),
        "the summary says the mock provider answered"
    );
    assert!(
        summary_text.contains("api_key_env"),
        "the summary says how to use a real model"
    );
}

#[test]
fn trace_show_prints_the_tree() {
    let scratch = Scratch::new();
    final_state(&scratch.run(&hello(), &[]));
    let output = scratch
        .kettle()
        .args(["trace", "show", "--dir"])
        .arg(scratch.traces())
        .output()
        .expect("kettle trace show");
    assert!(output.status.success(), "{}", stderr(&output));
    let tree = stdout(&output);
    let lines: Vec<&str> = tree.lines().collect();
    assert!(lines[2].starts_with("invoke_agent hello"), "{tree}");
    assert!(lines[3].starts_with("├─ node summarize"), "{tree}");
    assert!(
        lines[4].starts_with("│  ├─ chat mock-1") && lines[4].contains("tokens 12 in / 8 out"),
        "{tree}"
    );
    assert!(lines[5].starts_with("│  └─ chat mock-1"), "{tree}");
    assert!(lines[6].starts_with("└─ node polish"), "{tree}");
    assert!(lines[7].starts_with("   └─ chat mock-1"), "{tree}");
}

#[test]
fn second_run_loads_the_component_from_the_compile_cache() {
    let scratch = Scratch::new();
    let first = scratch.run(&hello(), &[]);
    final_state(&first);
    assert!(
        stderr(&first).contains("compiled node `summarize`"),
        "{}",
        stderr(&first)
    );
    // An entry is written aside and renamed into place, so a rewrite changes its inode (its
    // modification time changes on every load: it marks the entry as recently used).
    let entries = || -> Vec<(std::path::PathBuf, u64)> {
        use std::os::unix::fs::MetadataExt;
        std::fs::read_dir(scratch.cache().join("components"))
            .expect("the compile cache exists")
            .map(|e| {
                let e = e.expect("entry");
                (e.path(), e.metadata().expect("metadata").ino())
            })
            .collect()
    };
    let cached = entries();
    assert_eq!(cached.len(), 1, "one compiled component: {cached:?}");
    assert_eq!(
        cached[0].0.extension().and_then(|e| e.to_str()),
        Some("cwasm")
    );

    let second = scratch.run(&hello(), &[]);
    final_state(&second);
    let text = stderr(&second);
    assert!(
        text.contains("loaded node `summarize` from the compile cache"),
        "{text}"
    );
    assert!(
        !text.contains("compiled node"),
        "the second run compiled again:\n{text}"
    );
    assert!(
        !text.contains("built node"),
        "the second run rebuilt the node:\n{text}"
    );
    assert_eq!(entries(), cached, "the cache entry was not rewritten");
}

#[test]
fn input_file_and_output_file() {
    let scratch = Scratch::new();
    let input = scratch.path().join("input.json");
    std::fs::write(&input, r#"{"topic": "kettles"}"#).expect("write input");
    let output_file = scratch.path().join("final.json");
    let output = scratch.run(
        &hello(),
        &[
            "--input-file",
            input.to_str().expect("utf-8 path"),
            "--output",
            output_file.to_str().expect("utf-8 path"),
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).is_empty(),
        "with --output the state goes to the file only"
    );
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&output_file).expect("output written"))
            .expect("JSON");
    assert_eq!(
        state["outline"],
        "[mock] Write a three-point outline about kettles."
    );
}

#[test]
fn a_reader_that_stops_early_is_not_an_error_of_the_run() {
    // `kettle run … | head -c 0`: the state's reader is gone before the state is written.
    let scratch = Scratch::new();
    let mut child = scratch
        .run_command(&hello())
        .args(["--input", r#"{"topic": "pipes"}"#])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kettle starts");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("kettle ends");
    let errors = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{errors}");
    assert!(!errors.contains("panicked"), "{errors}");
    assert_whole_trace(&scratch.only_trace());
}
