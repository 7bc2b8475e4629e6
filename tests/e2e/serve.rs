//! `kettle serve`, the real server on 127.0.0.1: a run and its answer, server-sent events, a
//! caller's `traceparent` joined in the exported trace, 429 at the concurrency limit, a client
//! that leaves cancelling its run, a body too large, the token, a bad agent stopping start-up,
//! and SIGTERM under load (every accepted request answered or counted, every trace flushed).

use crate::support::{Scratch, assert_whole_trace, stderr};
use kettle::telemetry::{SpanRecord, read_trace_file};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// An OpenAI-compatible server that answers every chat completion after `delay`.
struct SlowLlm {
    addr: SocketAddr,
}

impl SlowLlm {
    fn start(delay: Duration) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer_slowly(stream, delay));
            }
        });
        Self { addr }
    }
}

fn answer_slowly(mut stream: TcpStream, delay: Duration) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    while let Some(_body) = crate::support::keep_alive::next_request_body(&mut reader) {
        std::thread::sleep(delay);
        let answer = json!({
            "id": "slow", "object": "chat.completion", "model": "slow",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
        })
        .to_string();
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        if stream.write_all(head.as_bytes()).is_err()
            || stream.write_all(answer.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// An agent of one expression node: no component to build, an exact final state.
const QUICK: &str = "name: quick
description: Doubles n.
nodes:
  - name: double
    run: {type: expression, value: \"state.n * 2\", output_key: doubled}
";

/// An agent whose one node asks `llm` (which answers slowly).
fn slow_agent(llm: &SlowLlm) -> String {
    format!(
        "name: slow
settings:
  llm: {{provider: openai, model: slow, base_url: 'http://{}/v1', api_key_env: KETTLE_SERVE_TEST_KEY, max_retries: 0}}
nodes:
  - name: ask
    uses: llm.call
    with: {{prompt: \"hello\"}}
    output: answer
",
        llm.addr
    )
}

/// A running `kettle serve`, killed if the test ends without stopping it.
pub(crate) struct Server {
    child: Child,
    addr: SocketAddr,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub(crate) fn start(
        scratch: &Scratch,
        agents: &[&std::path::Path],
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let mut command = scratch.kettle();
        command
            .arg("serve")
            .args(agents)
            .args(["--listen", "127.0.0.1:0", "--trace-dir"])
            .arg(scratch.traces())
            .args(extra)
            .env("KETTLE_SERVE_TEST_KEY", "test-key")
            .env_remove("KETTLE_SERVE_TOKEN")
            .stderr(Stdio::piped())
            .stdout(Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("kettle serve starts");
        let mut lines = BufReader::new(child.stderr.take().expect("stderr"));
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            line.clear();
            assert!(Instant::now() < deadline, "kettle serve did not start");
            assert!(
                lines.read_line(&mut line).expect("stderr") > 0,
                "kettle serve exited: {line}"
            );
            if let Some(rest) = line.split("serving on http://").nth(1) {
                break rest
                    .split_whitespace()
                    .next()
                    .expect("address")
                    .parse()
                    .expect("socket address");
            }
        };
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = lines.read_to_string(&mut rest);
            sink.lock().expect("log").push_str(&rest);
        });
        Self { child, addr, log }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits for the exit; the exit code and what it printed.
    pub(crate) fn terminate(mut self) -> (i32, String) {
        let pid = self.child.id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let code = self.child.wait().expect("exits").code().unwrap_or(-1);
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log.lock().expect("log").clone();
        (code, log)
    }
}

pub(crate) fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

fn traces(scratch: &Scratch) -> Vec<Vec<SpanRecord>> {
    std::fs::read_dir(scratch.traces())
        .map(|dir| {
            dir.flatten()
                .map(|e| read_trace_file(&e.path()).expect("readable trace"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_run_answers_its_state_and_joins_the_callers_trace() {
    let scratch = Scratch::new();
    let agent = scratch.agent("quick.yaml", QUICK);
    let server = Server::start(&scratch, &[&agent], &[], &[]);
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let response = client()
        .post(server.url("/v1/agents/quick/runs"))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .body(r#"{"input": {"n": 21}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 200);
    let traceparent = response.headers()["traceparent"]
        .to_str()
        .expect("ascii")
        .to_string();
    let body: Value = response.json().expect("json");
    assert_eq!(body["status"], "ok");
    assert_eq!(body["state"], json!({"n": 21, "doubled": 42}));
    assert_eq!(body["trace_id"], caller_trace);
    assert!(
        traceparent.starts_with(&format!("00-{caller_trace}-")),
        "{traceparent}"
    );
    let run_id = body["run_id"].as_str().expect("run id");
    let recorded: Value = client()
        .get(server.url(&format!("/v1/runs/{run_id}")))
        .send()
        .expect("answer")
        .json()
        .expect("json");
    assert_eq!(recorded["status"], "ok");
    assert_eq!(recorded["state"]["doubled"], 42);
    let agents: Value = client()
        .get(server.url("/v1/agents"))
        .send()
        .expect("answer")
        .json()
        .expect("json");
    assert_eq!(agents["agents"][0]["name"], "quick");
    assert_eq!(agents["agents"][0]["description"], "Doubles n.");
    assert!(
        agents["agents"][0]["graph_mermaid"]
            .as_str()
            .expect("mermaid")
            .starts_with("flowchart")
    );
    let metrics = client()
        .get(server.url("/metrics"))
        .send()
        .expect("answer")
        .text()
        .expect("text");
    assert!(
        metrics.contains("kettle_runs_total{agent=\"quick\",status=\"ok\"} 1"),
        "{metrics}"
    );

    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("1 runs accepted, 1 answered, 0 cancelled"),
        "{log}"
    );
    let traces = traces(&scratch);
    assert_eq!(traces.len(), 1);
    let spans = &traces[0];
    let root = spans
        .iter()
        .find(|s| s.name.starts_with("invoke_agent"))
        .expect("root span");
    assert_eq!(root.trace_id, caller_trace);
    assert_eq!(
        root.parent_span_id.as_deref(),
        Some(caller_span),
        "the root is the caller's child"
    );
    assert!(
        traceparent.contains(&root.span_id),
        "the answer names the run's root span"
    );
    for span in spans {
        assert_eq!(span.trace_id, caller_trace);
        if span.span_id != root.span_id {
            let parent = span.parent_span_id.as_deref().expect("parent");
            assert!(
                spans.iter().any(|s| s.span_id == parent),
                "{} has its parent",
                span.name
            );
        }
    }
}

#[test]
fn server_sent_events_stream_each_node_then_the_result() {
    let scratch = Scratch::new();
    let agent = scratch.agent("quick.yaml", QUICK);
    let server = Server::start(&scratch, &[&agent], &[], &[]);
    let text = client()
        .post(server.url("/v1/agents/quick/runs"))
        .header("accept", "text/event-stream")
        .body(r#"{"input": {"n": 4}}"#)
        .send()
        .expect("answer")
        .text()
        .expect("stream");
    let events: Vec<(&str, Value)> = text
        .split("\n\n")
        .filter_map(|block| {
            let event = block.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = block.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((event, serde_json::from_str(data).expect("json data")))
        })
        .collect();
    let kinds: Vec<&str> = events.iter().map(|(e, _)| *e).collect();
    assert_eq!(kinds, ["node_start", "node_finish", "result"], "{text}");
    assert_eq!(events[0].1["node"], "double");
    assert_eq!(events[2].1["state"]["doubled"], 8);
    assert_eq!(events[2].1["run_id"], events[0].1["run_id"]);
}

#[test]
fn beyond_the_concurrency_limit_a_request_gets_429_and_a_client_that_leaves_cancels_its_run() {
    let llm = SlowLlm::start(Duration::from_secs(3));
    let scratch = Scratch::new();
    let agent = scratch.agent("slow.yaml", &slow_agent(&llm));
    let server = Server::start(&scratch, &[&agent], &["--max-concurrent-runs", "1"], &[]);
    let url = server.url("/v1/agents/slow/runs");
    // The first request leaves after 500 ms, while its run waits on the LLM.
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .expect("client");
    let first = std::thread::spawn({
        let url = url.clone();
        move || impatient.post(url).body("{}").send()
    });
    std::thread::sleep(Duration::from_millis(250));
    let busy = client().post(&url).body("{}").send().expect("answer");
    assert_eq!(busy.status(), 429);
    assert_eq!(busy.headers()["retry-after"], "1");
    assert!(
        first.join().expect("thread").is_err(),
        "the first client timed out"
    );
    // Its run is cancelled, not abandoned: the slot frees long before the LLM's 3 s.
    let deadline = Instant::now() + Duration::from_secs(2);
    let cancelled = loop {
        let runs: Value = client()
            .get(server.url("/v1/runs?status=cancelled"))
            .send()
            .expect("answer")
            .json()
            .expect("json");
        if let Some(run) = runs["runs"].as_array().and_then(|r| r.first()) {
            break run.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the run was not cancelled when its client left"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        cancelled["error"]
            .as_str()
            .expect("error")
            .contains("client disconnected"),
        "{cancelled}"
    );
    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("1 runs accepted, 0 answered, 1 cancelled"),
        "{log}"
    );
    let traces = traces(&scratch);
    assert_eq!(traces.len(), 1, "the cancelled run's trace was flushed");
    let root = assert_whole_trace(&traces[0]);
    assert_eq!(root.status.code, "error", "{:?}", root.status);
}

#[test]
fn bodies_too_large_unknown_fields_and_bad_tokens_are_refused() {
    let scratch = Scratch::new();
    let agent = scratch.agent("quick.yaml", QUICK);
    let server = Server::start(
        &scratch,
        &[&agent],
        &["--max-body-bytes", "1024"],
        &[("KETTLE_SERVE_TOKEN", "s3cret-token")],
    );
    let url = server.url("/v1/agents/quick/runs");
    let big = format!(r#"{{"input": {{"n": 1, "pad": "{}"}}}}"#, "x".repeat(4096));
    let response = client()
        .post(&url)
        .bearer_auth("s3cret-token")
        .body(big)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 413);
    let response = client()
        .post(&url)
        .bearer_auth("wrong")
        .body(r#"{"input": {"n": 1}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 401);
    let response = client()
        .post(&url)
        .body(r#"{"input": {"n": 1}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 401);
    let response = client()
        .post(&url)
        .bearer_auth("s3cret-token")
        .body(r#"{"input": {"n": 1}, "llm": {"provider": "openai"}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 400, "a request cannot choose a provider");
    assert!(
        response
            .text()
            .expect("text")
            .contains("unknown field `llm`")
    );
    let response = client()
        .post(&url)
        .bearer_auth("s3cret-token")
        .body(r#"{"input": {"n": 1}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 200);
    assert_eq!(
        client()
            .get(server.url("/healthz"))
            .send()
            .expect("answer")
            .status(),
        200,
        "health needs no token"
    );
}

#[test]
fn start_up_refuses_a_bad_agent_and_an_open_address_without_a_token() {
    let scratch = Scratch::new();
    let bad = scratch.agent("bad.yaml", "name: bad\nnodes:\n  - name: a\n    run: {type: expression, value: \"1\", output_key: x}\n    goto: nowhere\n");
    let output = scratch
        .kettle()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("bad.yaml:5"),
        "located like kettle validate: {text}"
    );
    let good = scratch.agent("quick.yaml", QUICK);
    let output = scratch
        .kettle()
        .env_remove("KETTLE_SERVE_TOKEN")
        .args(["serve", "--listen", "0.0.0.0:0"])
        .arg(&good)
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("KETTLE_SERVE_TOKEN"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn sigterm_under_load_answers_every_accepted_request_and_flushes_every_trace() {
    let llm = SlowLlm::start(Duration::from_millis(1500));
    let scratch = Scratch::new();
    let agent = scratch.agent("slow.yaml", &slow_agent(&llm));
    let server = Server::start(&scratch, &[&agent], &[], &[]);
    let url = server.url("/v1/agents/slow/runs");
    let requests: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                client()
                    .post(url)
                    .body("{}")
                    .send()
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let addr = server.addr;
    let (code, log) = server.terminate();
    let statuses: Vec<u16> = requests
        .into_iter()
        .map(|t| t.join().expect("thread").expect("answered"))
        .collect();
    assert_eq!(statuses, vec![200; 8], "{log}");
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("8 runs accepted, 8 answered, 0 cancelled"),
        "{log}"
    );
    assert!(
        TcpStream::connect(addr).is_err(),
        "the server stopped listening"
    );
    let traces = traces(&scratch);
    assert_eq!(traces.len(), 8, "every run's trace was flushed");
    for spans in &traces {
        assert_whole_trace(spans);
    }
}

#[test]
fn runs_past_the_grace_period_are_cancelled_answered_and_counted() {
    let llm = SlowLlm::start(Duration::from_secs(20));
    let scratch = Scratch::new();
    let agent = scratch.agent("slow.yaml", &slow_agent(&llm));
    let server = Server::start(&scratch, &[&agent], &["--grace", "1"], &[]);
    let url = server.url("/v1/agents/slow/runs");
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                client()
                    .post(url)
                    .body("{}")
                    .send()
                    .map(|r| r.status().as_u16())
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let started = Instant::now();
    let (code, log) = server.terminate();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the drain waited past its grace"
    );
    let statuses: Vec<u16> = requests
        .into_iter()
        .map(|t| t.join().expect("thread").expect("answered"))
        .collect();
    assert_eq!(statuses, vec![503; 3], "{log}");
    assert_eq!(code, 0, "{log}");
    assert!(
        log.contains("3 runs accepted, 0 answered, 3 cancelled"),
        "{log}"
    );
    let traces = traces(&scratch);
    assert_eq!(traces.len(), 3, "every cancelled run's trace was flushed");
    for spans in &traces {
        assert_eq!(assert_whole_trace(spans).status.code, "error");
    }
}

/// Stops before `approve` until a person answers.
const APPROVAL: &str = "name: approval
settings:
  interrupt_before: [approve]
nodes:
  - name: draft
    run: {type: expression, value: \"'draft for ' ~ state.topic\", output_key: draft}
  - name: approve
    run: {type: expression, value: \"state.answer ~ ': ' ~ state.draft\", output_key: decision}
";

#[test]
fn a_run_stopped_at_an_interrupt_is_listed_and_resumed_even_by_the_next_server() {
    let scratch = Scratch::new();
    let agent = scratch.agent("approval.yaml", APPROVAL);
    let store = scratch.path().join("state.db");
    let store = store.to_str().expect("utf-8");
    let server = Server::start(&scratch, &[&agent], &["--store", store], &[]);
    let response = client()
        .post(server.url("/v1/agents/approval/runs"))
        .body(r#"{"input": {"topic": "tea"}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 202);
    let stopped: Value = response.json().expect("json");
    assert_eq!(stopped["status"], "interrupted");
    assert_eq!(stopped["state"]["draft"], "draft for tea");
    assert_eq!(stopped["interrupt"]["node"], "approve");
    assert_eq!(stopped["interrupt"]["when"], "before");
    let run_id = stopped["run_id"].as_str().expect("run id").to_string();
    assert_eq!(
        stopped["interrupt"]["resume"],
        format!("/v1/runs/{run_id}/resume")
    );
    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");

    // A new server on the same store: the run still waits, and continues with the answer.
    let server = Server::start(&scratch, &[&agent], &["--store", store], &[]);
    let waiting: Value = client()
        .get(server.url("/v1/runs?status=interrupted"))
        .send()
        .expect("answer")
        .json()
        .expect("json");
    assert_eq!(waiting["runs"][0]["run_id"], run_id.as_str(), "{waiting}");
    let response = client()
        .post(server.url(&format!("/v1/runs/{run_id}/resume")))
        .body(r#"{"input": {"answer": "approved"}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 200);
    let done: Value = response.json().expect("json");
    assert_eq!(done["run_id"], run_id.as_str());
    assert_eq!(
        done["trace_id"], stopped["trace_id"],
        "one trace across the interrupt"
    );
    assert_eq!(
        done["state"],
        json!({"topic": "tea", "draft": "draft for tea", "answer": "approved", "decision": "approved: draft for tea"})
    );
    let again = client()
        .post(server.url(&format!("/v1/runs/{run_id}/resume")))
        .body("{}")
        .send()
        .expect("answer");
    assert_eq!(again.status(), 409, "a completed run is not resumed again");
    let unknown = client()
        .post(server.url("/v1/runs/nope/resume"))
        .body("{}")
        .send()
        .expect("answer");
    assert_eq!(unknown.status(), 404);
}
