//! The delivery guarantee of the remote exporters: a collector killed in the middle of a run,
//! or answering 503 for a while, or down until after exit, still gets every span of the run,
//! exactly once (from the spool, within the flush timeout, or by `kettle trace push` and the
//! next run's start); and the run's summary never claims a delivery that did not happen.

use crate::support::llm_server::LlmServer;
use crate::support::otlp_receiver::{Mode, OtlpReceiver};
use crate::support::provider_shapes::openai_stream;
use crate::support::*;
use kettle::telemetry::SpanRecord;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 8;
const FLOOD: usize = 40;
/// The root, and per round: the streaming node and its `chat` span, the flood node and its spans.
const SPANS: usize = 1 + ROUNDS * (2 + 1 + FLOOD);

/// An LLM server whose streamed answers take about 200 ms each, so the run lasts seconds.
fn slow_llm() -> LlmServer {
    LlmServer::start(|_| openai_stream("chatcmpl-slow", "gpt-4o-mini", &["tea "; 40], (3, 40)))
}

/// `ROUNDS` rounds of a slow streamed call and a flood of guest spans: a run of `SPANS` spans.
fn paced_agent(scratch: &Scratch, llm: &LlmServer, flush_timeout_ms: u64) -> PathBuf {
    let shapes = repo().join("tests/nodes/trace-shapes");
    let mut nodes = String::new();
    for i in 0..ROUNDS {
        nodes.push_str(&format!(
            "  - name: ask{i}\n    uses: llm.stream\n    with: {{prompt: \"round {i}\"}}\n    output: answer{i}\n  - name: flood{i}\n    component: {}\n    config: {{flood: {FLOOD}}}\n",
            shapes.display()
        ));
    }
    scratch.agent(
        "paced.yaml",
        &format!(
            "name: paced\nsettings:\n  llm:\n    provider: openai\n    model: gpt-4o-mini\n    base_url: {}\n  tracing:\n    flush_timeout_ms: {flush_timeout_ms}\nnodes:\n{nodes}",
            llm.url("/v1")
        ),
    )
}

fn spawn_run(scratch: &Scratch, agent: &Path, endpoint: &str) -> Child {
    scratch
        .run_command(agent)
        .args([
            "--trace-exporter",
            "file,otlp",
            "--trace-endpoint",
            endpoint,
        ])
        .env("OPENAI_API_KEY", "sk-test")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kettle starts")
}

fn run_id(output: &Output) -> String {
    stderr(output)
        .lines()
        .find_map(|l| l.trim().strip_prefix("run id"))
        .map(|id| id.trim().to_string())
        .unwrap_or_else(|| panic!("no run id in:\n{}", stderr(output)))
}

/// The file trace of `run`.
fn file_trace(scratch: &Scratch, run: &str) -> Vec<SpanRecord> {
    kettle::telemetry::read_trace_file(&scratch.traces().join(format!("{run}.jsonl")))
        .expect("the run's trace file")
}

/// Asserts the receiver holds every span of the file trace of `run`, each once.
fn assert_all_arrived_once(receiver: &OtlpReceiver, file: &[SpanRecord], run: &str) {
    let received = receiver.wait_for_run(run, file.len());
    let ids: Vec<&str> = received.iter().map(|s| s.span_id.as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "a span arrived twice");
    let expected: HashSet<&str> = file.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(unique, expected, "the collector's spans are the file's");
    assert_whole_trace(&received);
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "waited for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_collector_killed_mid_run_and_restarted_gets_every_span_once() {
    let scratch = Scratch::new();
    let llm = slow_llm();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let agent = paced_agent(&scratch, &llm, 30_000);
    let child = spawn_run(&scratch, &agent, &receiver.endpoint());
    wait_until("the first export", || !receiver.spans().is_empty());
    receiver.kill();
    let before = receiver.spans().len();
    std::thread::sleep(Duration::from_millis(1500));
    receiver.restart();
    let output = child.wait_with_output().expect("kettle ends");
    final_state(&output);
    assert!(
        before < SPANS,
        "the collector was killed mid-run ({before} spans had arrived)"
    );
    let run = run_id(&output);
    let file = file_trace(&scratch, &run);
    assert_eq!(file.len(), SPANS);
    assert_all_arrived_once(&receiver, &file, &run);
    assert!(
        stderr(&output).contains(&format!(
            "delivered {SPANS} spans to otlp at {}",
            receiver.endpoint()
        )),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_collector_answering_503_for_a_while_gets_every_span_once() {
    let scratch = Scratch::new();
    let llm = slow_llm();
    let receiver = OtlpReceiver::start(Mode::Unavailable);
    let agent = paced_agent(&scratch, &llm, 30_000);
    let child = spawn_run(&scratch, &agent, &receiver.endpoint());
    // A batch refused three times is a batch retried, not dropped.
    wait_until("three 503 answers", || receiver.unavailable_answers() >= 3);
    assert!(receiver.spans().is_empty(), "a 503 records nothing");
    receiver.set_mode(Mode::Accept);
    let output = child.wait_with_output().expect("kettle ends");
    final_state(&output);
    let run = run_id(&output);
    let file = file_trace(&scratch, &run);
    assert_eq!(file.len(), SPANS);
    assert_all_arrived_once(&receiver, &file, &run);
}

/// A collector down until after exit: the summary says what waits where (a refused port is
/// never reported as a delivery); `kettle trace push RUN` delivers that run's spans, and the
/// next run's start delivers what is left, each span once.
#[test]
fn a_collector_down_until_after_exit_gets_the_spool_from_trace_push_and_the_next_run() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    receiver.kill();
    let shapes = repo().join("tests/nodes/trace-shapes");
    let agent = scratch.agent(
        "flood.yaml",
        &format!(
            "name: flood\nsettings:\n  tracing:\n    flush_timeout_ms: 300\nnodes:\n  - name: shapes\n    component: {}\n    config: {{flood: 150}}\n",
            shapes.display()
        ),
    );
    let run_down = |n: usize| {
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
        let run = run_id(&output);
        let text = stderr(&output);
        assert!(
            !text.contains("delivered 152 spans") && !text.contains("sent to otlp"),
            "run {n} claims a delivery:\n{text}"
        );
        assert!(
            text.contains(&format!(
                "0 of 152 spans delivered to otlp at {} (cannot connect",
                receiver.endpoint()
            )) && text.contains("152 wait in .kettle/spool/otlp-")
                && text.contains(&format!("kettle trace push {run}")),
            "run {n}:\n{text}"
        );
        run
    };
    let first = run_down(1);
    let second = run_down(2);
    assert!(receiver.spans().is_empty());

    receiver.restart();
    let push = scratch
        .kettle()
        .args(["trace", "push", &first])
        .output()
        .expect("kettle trace push");
    assert!(push.status.success(), "{}", stderr(&push));
    assert!(
        stderr(&push).contains(&format!(
            "delivered 152 spans to otlp at {}",
            receiver.endpoint()
        )),
        "{}",
        stderr(&push)
    );
    assert_all_arrived_once(&receiver, &file_trace(&scratch, &first), &first);
    assert!(receiver.run(&second).is_empty(), "only the run asked for");

    // The next run delivers what an earlier one left, with its own spans.
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
    let third = run_id(&output);
    assert_all_arrived_once(&receiver, &file_trace(&scratch, &second), &second);
    assert_all_arrived_once(&receiver, &file_trace(&scratch, &third), &third);
    assert_all_arrived_once(&receiver, &file_trace(&scratch, &first), &first);
    let again = scratch
        .kettle()
        .args(["trace", "push"])
        .output()
        .expect("kettle trace push");
    assert!(again.status.success());
    assert!(
        stderr(&again).contains("no spans wait in"),
        "{}",
        stderr(&again)
    );
}

/// With nothing listening, `kettle trace push` says what is still waiting and fails.
#[test]
fn trace_push_to_a_refused_port_keeps_the_spool_and_says_so() {
    let scratch = Scratch::new();
    let endpoint = OtlpReceiver::down_endpoint();
    let shapes = repo().join("tests/nodes/trace-shapes");
    let agent = scratch.agent(
        "flood.yaml",
        &format!(
            "name: flood\nsettings:\n  tracing:\n    flush_timeout_ms: 200\nnodes:\n  - name: shapes\n    component: {}\n    config: {{flood: 10}}\n",
            shapes.display()
        ),
    );
    let output = scratch.run(
        &agent,
        &["--trace-exporter", "otlp", "--trace-endpoint", &endpoint],
    );
    final_state(&output);
    let push = scratch
        .kettle()
        .args(["trace", "push", "--timeout-ms", "500"])
        .output()
        .expect("kettle trace push");
    assert!(!push.status.success());
    assert!(
        stderr(&push).contains(&format!("0 of 12 spans delivered to otlp at {endpoint}"))
            && stderr(&push).contains("12 still wait in"),
        "{}",
        stderr(&push)
    );
}

/// A Langfuse spool keeps the destination but no credential; `kettle trace push` reads the
/// keys from the environment and sends them as Langfuse's Basic auth.
#[test]
fn a_langfuse_spool_holds_no_key_and_trace_push_sends_the_environments() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    receiver.kill();
    let shapes = repo().join("tests/nodes/trace-shapes");
    let agent = scratch.agent(
        "lf.yaml",
        &format!(
            "name: lf\nsettings:\n  tracing:\n    flush_timeout_ms: 200\n  langfuse:\n    host: {}\nnodes:\n  - name: shapes\n    component: {}\n    config: {{flood: 5}}\n",
            receiver.base_url(),
            shapes.display()
        ),
    );
    let output = scratch
        .run_command(&agent)
        .env("LANGFUSE_PUBLIC_KEY", "pk-lf-spooled")
        .env("LANGFUSE_SECRET_KEY", "sk-lf-spooled")
        .output()
        .expect("kettle runs");
    final_state(&output);
    let run = run_id(&output);
    assert!(
        stderr(&output).contains("0 of 7 spans delivered to langfuse at"),
        "{}",
        stderr(&output)
    );
    for file in walk(&scratch.path().join(".kettle/spool")) {
        let bytes = std::fs::read(&file).expect("spool file");
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("sk-lf-spooled")
                && !text.contains("cGstbGYtc3Bvb2xlZDpzay1sZi1zcG9vbGVk"),
            "{} holds a key",
            file.display()
        );
    }
    receiver.restart();
    let push = scratch
        .kettle()
        .args(["trace", "push", &run])
        .env("LANGFUSE_PUBLIC_KEY", "pk-lf-now")
        .env("LANGFUSE_SECRET_KEY", "sk-lf-now")
        .output()
        .expect("kettle trace push");
    assert!(push.status.success(), "{}", stderr(&push));
    let exports = receiver.exports();
    assert!(!exports.is_empty());
    for export in &exports {
        assert_eq!(export.path, "/api/public/otel/v1/traces");
        // base64("pk-lf-now:sk-lf-now")
        assert_eq!(
            export.headers["authorization"],
            "Basic cGstbGYtbm93OnNrLWxmLW5vdw=="
        );
    }
    assert_all_arrived_once(&receiver, &file_trace(&scratch, &run), &run);
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}
