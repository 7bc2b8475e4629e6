//! The exporters and their configuration end to end: the Opik preset's path and headers, a
//! collector that is down or hangs, `--traceparent` / `TRACEPARENT` joining a caller's trace
//! (also with two runs sharing it), the console tree, and captured content.

use crate::support::openai_server::{Behaviour, FakeOpenAi};
use crate::support::otlp_receiver::{Mode, OtlpReceiver};
use crate::support::{
    Scratch, assert_whole_trace, children, final_state, names, repo, span, stderr,
};
use kettle::telemetry::{SpanRecord, read_trace_file};
use std::collections::BTreeSet;
use std::path::PathBuf;

const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

fn shapes_agent(scratch: &Scratch, settings: &str, config: &str) -> PathBuf {
    let shapes = repo().join("tests/nodes/trace-shapes");
    scratch.agent(
        "agent.yaml",
        &format!(
            "name: shapes\n{settings}nodes:\n  - name: shapes\n    component: {}\n    config: {config}\n",
            shapes.display()
        ),
    )
}

/// The warnings kettle printed.
fn warnings(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.contains("warning:")).collect()
}

#[test]
fn opik_preset_sends_to_its_path_with_its_headers_and_the_yaml_project_wins() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let settings = format!(
        "settings:\n  opik:\n    project_name: yaml-project\n    workspace: team-ws\n    url: {}\n",
        receiver.base_url()
    );
    let agent = shapes_agent(&scratch, &settings, "{calls: 2}");
    let output = scratch
        .run_command(&agent)
        .env("OPIK_PROJECT_NAME", "env-project")
        .env("OPIK_API_KEY", "opik-key-123")
        .output()
        .expect("kettle runs");
    final_state(&output);

    let file = scratch.only_trace();
    assert_whole_trace(&file);
    let exports = receiver.exports();
    assert!(!exports.is_empty(), "Opik received the trace");
    for export in &exports {
        assert_eq!(export.path, "/api/v1/private/otel/v1/traces");
        assert_eq!(export.content_type, "application/x-protobuf");
        assert_eq!(export.headers["projectname"], "yaml-project");
        assert_eq!(export.headers["comet-workspace"], "team-ws");
        assert_eq!(export.headers["authorization"], "opik-key-123");
    }
    let otlp = receiver.spans();
    let root = assert_whole_trace(&otlp);
    assert_eq!(root.name, "invoke_agent shapes");
    assert_eq!(ids(&otlp), ids(&file));
    assert_eq!(
        names(&children(&otlp, span(&otlp, "node shapes"))),
        ["chat mock-1", "chat mock-1"]
    );
}

#[test]
fn opik_project_comes_from_the_environment_when_the_yaml_has_none() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let settings = format!("settings:\n  opik:\n    url: {}\n", receiver.base_url());
    let agent = shapes_agent(&scratch, &settings, "{calls: 1}");
    let output = scratch
        .kettle()
        .args(["run", "--no-trace"])
        .arg(&agent)
        .args(["--trace-exporter", "opik"])
        .env("OPIK_PROJECT_NAME", "env-project")
        .output()
        .expect("kettle runs");
    assert_eq!(
        output.status.code(),
        Some(2),
        "--no-trace conflicts with --trace-exporter"
    );

    let output = scratch
        .kettle()
        .arg("run")
        .arg(&agent)
        .args(["--trace-exporter", "opik"])
        .env("OPIK_PROJECT_NAME", "env-project")
        .output()
        .expect("kettle runs");
    final_state(&output);
    let exports = receiver.exports();
    assert!(!exports.is_empty());
    assert_eq!(exports[0].headers["projectname"], "env-project");
    assert!(!exports[0].headers.contains_key("authorization"));
    assert!(
        !scratch.path().join(".kettle/traces").exists(),
        "only the exporters asked for run"
    );
    assert_whole_trace(&receiver.spans());
}

#[test]
fn a_collector_that_is_down_costs_no_span_and_the_summary_says_where_they_wait() {
    let scratch = Scratch::new();
    let agent = shapes_agent(
        &scratch,
        "settings:\n  tracing:\n    flush_timeout_ms: 300\n",
        "{calls: 3}",
    );
    let endpoint = OtlpReceiver::down_endpoint();
    let output = scratch.run(
        &agent,
        &[
            "--trace-exporter",
            "file,otlp",
            "--trace-endpoint",
            &endpoint,
        ],
    );
    final_state(&output);
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let text = stderr(&output);
    assert!(warnings(&text).is_empty(), "{text}");
    let n = spans.len();
    assert!(
        text.contains(&format!(
            "0 of {n} spans delivered to otlp at {endpoint} (cannot connect"
        )) && text.contains(&format!("{n} wait in .kettle/spool/otlp-")),
        "{text}"
    );
    assert!(!text.contains("sent to otlp"), "{text}");
}

#[test]
fn a_collector_that_hangs_is_given_up_after_the_flush_timeout_and_the_spans_wait() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Hang);
    let agent = shapes_agent(
        &scratch,
        "settings:\n  tracing:\n    flush_timeout_ms: 300\n",
        "{calls: 2}",
    );
    let started = std::time::Instant::now();
    let output = scratch.run(
        &agent,
        &[
            "--trace-exporter",
            "file,otlp",
            "--trace-endpoint",
            &receiver.endpoint(),
        ],
    );
    final_state(&output);
    assert!(started.elapsed() < std::time::Duration::from_secs(8));
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let text = stderr(&output);
    let n = spans.len();
    assert!(
        text.contains(&format!(
            "0 of {n} spans delivered to otlp at {}",
            receiver.endpoint()
        )) && text.contains(&format!("{n} wait in")),
        "{text}"
    );
}

#[test]
fn traceparent_joins_the_callers_trace_and_runs_sharing_it_keep_their_own_files() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let agent = shapes_agent(&scratch, "", "{depth: 1, calls: 2}");
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let flag = scratch.run(
        &agent,
        &[
            "--traceparent",
            &traceparent,
            "--trace-exporter",
            "file,otlp",
            "--trace-endpoint",
            &receiver.endpoint(),
        ],
    );
    final_state(&flag);
    let mut env_run = scratch.kettle();
    env_run
        .arg("run")
        .arg(&agent)
        .arg("--trace-dir")
        .arg(scratch.traces())
        .args(["--trace-exporter", "file,otlp", "--trace-endpoint"])
        .arg(receiver.endpoint())
        .env("TRACEPARENT", &traceparent);
    final_state(&env_run.output().expect("kettle runs"));

    let files: Vec<PathBuf> = std::fs::read_dir(scratch.traces())
        .expect("trace folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 2, "one file per run: {files:?}");
    let mut run_ids = BTreeSet::new();
    for file in &files {
        let spans = read_trace_file(file).expect("readable");
        assert_joined(&spans);
        let run_id = run_of(&spans);
        assert!(
            spans
                .iter()
                .all(|s| s.attributes["kettle.run.id"] == run_id.as_str()),
            "{} holds only its own run's spans",
            file.display()
        );
        assert_eq!(spans.len(), 5);
        let otlp = receiver.run(&run_id);
        assert_eq!(ids(&otlp), ids(&spans));
        assert_joined(&otlp);
        run_ids.insert(run_id);
    }
    assert_eq!(run_ids.len(), 2);
    assert_eq!(
        receiver.trace(CALLER_TRACE).len(),
        10,
        "both runs in the caller's trace"
    );

    let bad = scratch.run(&agent, &["--traceparent", "00-nope"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("is not a traceparent"),
        "{}",
        stderr(&bad)
    );
}

/// The spans of a run that joined the caller's trace: the caller's trace id, the root a child
/// of the caller's span, every other parent inside the run.
fn assert_joined(spans: &[SpanRecord]) {
    let ids = ids(spans);
    assert!(spans.iter().all(|s| s.trace_id == CALLER_TRACE));
    let roots: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| !ids.contains(s.parent_span_id.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(roots.len(), 1);
    assert_eq!(roots[0].name, "invoke_agent shapes");
    assert_eq!(roots[0].parent_span_id.as_deref(), Some(CALLER_SPAN));
}

fn run_of(spans: &[SpanRecord]) -> String {
    spans[0].attributes["kettle.run.id"]
        .as_str()
        .expect("run id")
        .to_string()
}

fn ids(spans: &[SpanRecord]) -> BTreeSet<String> {
    spans.iter().map(|s| s.span_id.clone()).collect()
}

#[test]
fn the_console_exporter_prints_the_tree_on_stderr() {
    let scratch = Scratch::new();
    let agent = shapes_agent(&scratch, "", "{depth: 1, calls: 1}");
    let output = scratch
        .kettle()
        .arg("run")
        .arg(&agent)
        .args(["--trace-exporter", "console", "--quiet"])
        .output()
        .expect("kettle runs");
    final_state(&output);
    let text = stderr(&output);
    let tree: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("trace "))
        .collect();
    assert!(tree[0].ends_with("(4 spans)"), "{text}");
    assert!(tree[1].starts_with("invoke_agent shapes  "), "{text}");
    assert!(tree[2].starts_with("└─ node shapes  "), "{text}");
    assert!(tree[3].starts_with("   └─ level 1  "), "{text}");
    assert!(tree[4].starts_with("      └─ chat mock-1  "), "{text}");
    assert!(tree[4].contains("tokens"), "{text}");
    assert!(!scratch.path().join(".kettle/traces").exists());
}

#[test]
fn captured_content_conversation_id_and_truncated_run_input() {
    let scratch = Scratch::new();
    let agent = shapes_agent(
        &scratch,
        "settings:\n  tracing:\n    capture_content: true\n    max_content_chars: 40\n",
        "{calls: 1}",
    );
    let input = serde_json::json!({"thread_id": "thread-42", "notes": "n".repeat(100)}).to_string();
    let output = scratch.run(&agent, &["--input", &input]);
    let state = final_state(&output).to_string();
    let spans = scratch.only_trace();
    let root = assert_whole_trace(&spans);
    assert_eq!(root.attributes["gen_ai.conversation.id"], "thread-42");
    let shown = root.attributes["input.value"].as_str().expect("text");
    assert_eq!(
        shown,
        format!("{}…[{} more characters]", &input[..40], input.len() - 40)
    );
    assert_eq!(
        root.attributes["output.value"],
        format!(
            "{}…[{} more characters]",
            &state[..40],
            state.chars().count() - 40
        )
    );

    let chat = span(&spans, "chat mock-1");
    let sent: serde_json::Value = serde_json::from_str(
        chat.attributes["gen_ai.input.messages"]
            .as_str()
            .expect("JSON text"),
    )
    .expect("input messages are JSON");
    assert_eq!(
        sent,
        serde_json::json!([{"role": "user", "parts": [{"type": "text", "content": "question 0 from shapes"}]}])
    );
    let answered: serde_json::Value = serde_json::from_str(
        chat.attributes["gen_ai.output.messages"]
            .as_str()
            .expect("JSON text"),
    )
    .expect("output messages are JSON");
    assert_eq!(
        answered,
        serde_json::json!([{
            "role": "assistant",
            "parts": [{"type": "text", "content": "[mock] question 0 from shapes"}],
            "finish_reason": "stop",
        }])
    );
}

#[test]
fn langfuse_preset_sends_basic_auth_to_its_path() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let settings = format!(
        "settings:\n  langfuse:\n    host: {}\n    public_key_env: TEST_LF_PUBLIC\n",
        receiver.base_url()
    );
    let agent = shapes_agent(&scratch, &settings, "{calls: 1}");
    let output = scratch
        .run_command(&agent)
        .env("TEST_LF_PUBLIC", "pk-lf-1")
        .env("LANGFUSE_SECRET_KEY", "sk-lf-2")
        .output()
        .expect("kettle runs");
    final_state(&output);
    assert!(
        stderr(&output).contains(&format!(
            "spans to langfuse at {}/api/public/otel/v1/traces",
            receiver.base_url()
        )),
        "{}",
        stderr(&output)
    );
    let exports = receiver.exports();
    assert!(!exports.is_empty());
    for export in &exports {
        assert_eq!(export.path, "/api/public/otel/v1/traces");
        // base64("pk-lf-1:sk-lf-2")
        assert_eq!(
            export.headers["authorization"],
            "Basic cGstbGYtMTpzay1sZi0y"
        );
    }
    assert_eq!(ids(&receiver.spans()), ids(&scratch.only_trace()));

    let missing = scratch
        .kettle()
        .arg("run")
        .arg(&agent)
        .env_remove("TEST_LF_PUBLIC")
        .output()
        .expect("kettle runs");
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        stderr(&missing).contains("settings.langfuse.public_key_env names `TEST_LF_PUBLIC`"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn sample_ratio_zero_records_nothing_unless_a_sampled_caller_says_otherwise() {
    let scratch = Scratch::new();
    let agent = shapes_agent(
        &scratch,
        "settings:\n  tracing:\n    sample_ratio: 0\n",
        "{calls: 1}",
    );
    let unsampled = scratch.run(&agent, &[]);
    final_state(&unsampled);
    assert!(
        stderr(&unsampled).contains(" (not exported)"),
        "{}",
        stderr(&unsampled)
    );
    assert!(
        std::fs::read_dir(scratch.traces()).map_or(true, |mut d| d.next().is_none()),
        "an unsampled run writes no span"
    );
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    final_state(&scratch.run(&agent, &["--traceparent", &traceparent]));
    let spans = scratch.only_trace();
    assert_joined(&spans);
    assert_eq!(spans.len(), 3);
}

#[test]
fn an_unknown_exporter_in_the_yaml_is_located() {
    let scratch = Scratch::new();
    let agent = shapes_agent(
        &scratch,
        "settings:\n  tracing:\n    exporter: [file, jaeger]\n    sample_ratio: 2\n",
        "{calls: 1}",
    );
    let output = scratch.run(&agent, &[]);
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(text.contains("agent.yaml:4:"), "{text}");
    assert!(text.contains("unknown trace exporter `jaeger`"), "{text}");
    assert!(text.contains("agent.yaml:5:"), "{text}");
    assert!(
        text.contains("sample_ratio 2 is not between 0 and 1"),
        "{text}"
    );
}

#[test]
fn otel_environment_is_honoured_and_the_yaml_beats_it() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let agent = shapes_agent(&scratch, "", "{calls: 1}");
    let output = scratch
        .run_command(&agent)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.base_url())
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-team=tea%20room,x-other=1")
        .env("OTEL_SERVICE_NAME", "kettle-from-env")
        .output()
        .expect("kettle runs");
    final_state(&output);
    let exports = receiver.exports();
    assert!(!exports.is_empty());
    for export in &exports {
        assert_eq!(export.path, "/v1/traces");
        assert_eq!(export.headers["x-team"], "tea room");
        assert_eq!(export.service_names, ["kettle-from-env"]);
    }
    assert_eq!(ids(&receiver.spans()), ids(&scratch.only_trace()));

    // The agent's endpoint, headers and service name beat the environment's.
    let yaml_receiver = OtlpReceiver::start(Mode::Accept);
    let yaml_scratch = Scratch::new();
    let agent = shapes_agent(
        &yaml_scratch,
        &format!(
            "settings:\n  tracing:\n    endpoint: {}\n    headers: {{x-team: yaml}}\n    service_name: kettle-from-yaml\n",
            yaml_receiver.endpoint()
        ),
        "{calls: 1}",
    );
    let output = yaml_scratch
        .run_command(&agent)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", OtlpReceiver::down_endpoint())
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-team=env,x-other=1")
        .env("OTEL_SERVICE_NAME", "kettle-from-env")
        .output()
        .expect("kettle runs");
    final_state(&output);
    assert!(warnings(&stderr(&output)).is_empty(), "{}", stderr(&output));
    let exports = yaml_receiver.exports();
    assert!(!exports.is_empty());
    for export in &exports {
        assert_eq!(export.headers["x-team"], "yaml");
        assert_eq!(export.headers["x-other"], "1");
        assert_eq!(export.service_names, ["kettle-from-yaml"]);
    }
    assert_eq!(ids(&yaml_receiver.spans()), ids(&yaml_scratch.only_trace()));
}

#[test]
fn sigterm_during_an_llm_call_still_delivers_the_trace_to_the_collector() {
    let server = FakeOpenAi::start(Behaviour::Hang);
    let receiver = OtlpReceiver::start(Mode::Accept);
    let scratch = Scratch::new();
    let shapes = repo().join("tests/nodes/trace-shapes");
    let agent = scratch.agent(
        "agent.yaml",
        &format!(
            "name: term\nsettings:\n  llm: {{provider: openai, model: gpt-4o-mini, base_url: {}}}\nnodes:\n  - name: shapes\n    component: {}\n    config: {{depth: 1, calls: 1}}\n",
            server.base_url(),
            shapes.display()
        ),
    );
    let child = scratch
        .run_command(&agent)
        .args(["--trace-exporter", "file,otlp", "--trace-endpoint"])
        .arg(receiver.endpoint())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("kettle starts");
    server.wait_for_requests(1);
    let status = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let output = child.wait_with_output().expect("kettle exits");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("SIGTERM"), "{}", stderr(&output));

    let file = scratch.only_trace();
    let otlp = receiver.spans();
    assert_eq!(ids(&otlp), ids(&file));
    for spans in [&file, &otlp] {
        let root = assert_whole_trace(spans);
        assert_eq!(root.status.code, "error");
        assert_eq!(spans.len(), 4, "root, node, guest span, pending call");
        let call = span(spans, "chat gpt-4o-mini");
        assert_eq!(call.status.code, "error");
        assert_eq!(call.attributes["kettle.cancelled"], true);
        assert_eq!(call.attributes["server.address"], "127.0.0.1");
        assert!(call.attributes["server.port"].is_i64());
        assert_eq!(
            call.parent_span_id.as_deref(),
            Some(span(spans, "level 1").span_id.as_str())
        );
        // The outbound request named this very span as its parent.
        assert_eq!(
            server.requests()[0].headers["traceparent"],
            format!("00-{}-{}-01", call.trace_id, call.span_id)
        );
    }
}
