//! Kettle workers on NATS JetStream: a real `nats-server -js`, three `kettle worker`
//! processes and many runs of an agent with a parallel fan-out whose branches call a local
//! OpenAI-format server. One worker is SIGKILLed mid-run; its requests are redelivered to the
//! others, which resume the runs from their checkpoints in the state bucket. Checked: every
//! run completes, exactly once in the results, in the exact state an uninterrupted run ends
//! in; no LLM call that completed before the kill reaches the server again; each run's trace
//! is one trace with every parent present.

use crate::support::debian;
use crate::support::llm_server::{LlmServer, Recorded, Reply};
use crate::support::provider_shapes::openai_completion;
use crate::support::{Scratch, assert_whole_trace, stderr};
use futures::StreamExt;
use kettle::telemetry::read_trace_file;
use kettle_worker::{Jet, RunRequest, RunResult, Submitted, submit};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NATS_SERVER: &str = "/usr/sbin/nats-server";
/// How long the LLM server thinks before each answer.
const LLM_DELAY: Duration = Duration::from_millis(40);
/// A call answered this long before the kill was saved to its tape by then.
const SAVED_BY: Duration = Duration::from_secs(2);

/// A process killed when the test ends, however it ends.
pub(crate) struct Reaped(pub(crate) Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `nats-server -js` on 127.0.0.1, its storage in `dir`; its URL.
pub(crate) fn nats_server(dir: &Path) -> (Reaped, String) {
    debian::ensure(NATS_SERVER, &["nats-server"]);
    let port = free_port();
    let child = Command::new(NATS_SERVER)
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.with_extension("log")).expect("log file"))
        .spawn()
        .expect("nats-server starts");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "nats-server did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (Reaped(child), format!("nats://127.0.0.1:{port}"))
}

fn last_message(request: &Recorded) -> String {
    request.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// Echoes every prompt after a pause; each request's prompt (unique per run and call) and
/// arrival time go to `log`.
fn llm_server(log: Arc<Mutex<Vec<(String, Instant)>>>) -> LlmServer {
    LlmServer::start(move |request| {
        let prompt = last_message(request);
        log.lock()
            .expect("log")
            .push((prompt.clone(), Instant::now()));
        Reply::json(&openai_completion(
            "c",
            "m",
            Some(&format!("echo: {prompt}")),
            &[],
            "stop",
            (7, 3),
        ))
        .after(LLM_DELAY)
    })
}

fn fleet_agent(scratch: &Scratch, server: &LlmServer) -> std::path::PathBuf {
    scratch.agent(
        "fleet.yaml",
        &format!(
            r#"name: fleet
settings:
  llm: {{provider: openai, model: m, base_url: {base}, max_retries: 0}}
nodes:
  - name: split
    run: {{type: expression, value: "'go'", output_key: phase}}
  - name: left
    steps:
      - name: first
        uses: llm.call
        with: {{prompt: "L1 {{{{ state.doc }}}}"}}
        output: l1
      - name: second
        uses: llm.call
        with: {{prompt: "L2 {{{{ state.l1.content }}}}"}}
        output: l2
  - name: right
    steps:
      - name: only
        uses: llm.call
        with: {{prompt: "R1 {{{{ state.doc }}}}"}}
        output: r1
  - name: join
    fan_in: true
    run: {{type: expression, value: "parallel_results | length", output_key: joined}}
edges:
  - {{from: __start__, to: split}}
  - {{from: split, to: left, type: parallel, fan_in: join}}
  - {{from: split, to: right, type: parallel, fan_in: join}}
  - {{from: left, to: join}}
  - {{from: right, to: join}}
  - {{from: join, to: __end__}}
"#,
            base = server.url("/v1"),
        ),
    )
}

/// The runs to do: 500, or `KETTLE_WORKERS_RUNS`.
fn run_count() -> usize {
    std::env::var("KETTLE_WORKERS_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(500)
}

#[test]
fn runs_survive_a_killed_worker() {
    let runs = run_count();
    let scratch = Scratch::new();
    let (_nats, url) = nats_server(&scratch.path().join("jetstream"));
    let log = Arc::new(Mutex::new(Vec::new()));
    let server = llm_server(log.clone());
    let agent = fleet_agent(&scratch, &server);

    // The expected final state, from one plain `kettle run` of the same agent.
    let clean = scratch
        .kettle()
        .arg("run")
        .arg(&agent)
        .args(["--no-trace", "--input", r#"{"doc": "probe"}"#])
        .output()
        .expect("kettle run");
    assert!(clean.status.success(), "{}", stderr(&clean));
    let expected_of_probe: Value = serde_json::from_slice(&clean.stdout).expect("the final state");
    let expected = |doc: &str| -> Value {
        serde_json::from_str(&expected_of_probe.to_string().replace("probe", doc)).expect("json")
    };
    log.lock().expect("log").clear();

    let workers: Vec<Reaped> = (0..3)
        .map(|i| {
            let child = scratch
                .kettle()
                .args([
                    "worker",
                    "--nats",
                    &url,
                    "--concurrency",
                    "8",
                    "--ack-wait",
                    "3",
                ])
                .args(["--name", &format!("w{i}"), "--trace-dir"])
                .arg(scratch.traces())
                .arg(&agent)
                .stdout(Stdio::null())
                .stderr(
                    std::fs::File::create(scratch.path().join(format!("w{i}.stderr")))
                        .expect("stderr file"),
                )
                .spawn()
                .expect("kettle worker starts");
            Reaped(child)
        })
        .collect();
    let mut workers = workers;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let worker_logs = || {
        (0..3)
            .map(|i| {
                std::fs::read_to_string(scratch.path().join(format!("w{i}.stderr")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    };
    let (results, kill_at, dead) = runtime.block_on(async {
        let jet = Jet::connect(&url).await.expect("connects");
        let mut results = jet
            .client
            .subscribe("kettle.results.>")
            .await
            .expect("subscribe");
        let mut dead = jet
            .client
            .subscribe("kettle.dead.>")
            .await
            .expect("subscribe");
        for i in 0..runs {
            let request = RunRequest {
                run_id: format!("doc-{i:04}"),
                agent: "fleet".into(),
                input: serde_json::from_value(json!({"doc": format!("d{i:04}")})).expect("object"),
                traceparent: None,
            };
            assert_eq!(
                submit(&jet, &request).await.expect("submitted"),
                Submitted::Queued
            );
        }
        let mut got: Vec<RunResult> = Vec::new();
        let mut kill_at = None;
        let deadline = Instant::now() + Duration::from_secs(600);
        let mut distinct = std::collections::HashSet::new();
        while distinct.len() < runs {
            let next = tokio::time::timeout(Duration::from_secs(60), results.next()).await;
            let message = match next {
                Ok(Some(message)) => message,
                _ => panic!(
                    "{} of {runs} results after waiting; worker logs:\n{}",
                    distinct.len(),
                    worker_logs()
                ),
            };
            assert!(Instant::now() < deadline, "the runs took too long");
            let result: RunResult = serde_json::from_slice(&message.payload).expect("a result");
            distinct.insert(result.run_id.clone());
            got.push(result);
            // A fifth of the way in, worker 0 dies mid-run (it has runs in flight).
            if kill_at.is_none() && distinct.len() >= runs / 5 {
                workers[0].0.kill().expect("SIGKILL");
                kill_at = Some(Instant::now());
            }
        }
        // Late duplicates, if any, would arrive now.
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(2), results.next()).await
        {
            got.push(serde_json::from_slice(&message.payload).expect("a result"));
        }
        let mut letters = Vec::new();
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_millis(200), dead.next()).await
        {
            letters.push(String::from_utf8_lossy(&message.payload).into_owned());
        }
        (got, kill_at.expect("a worker was killed"), letters)
    });
    assert!(dead.is_empty(), "dead letters: {dead:?}");

    // Each run exactly once in the results, completed, in the exact expected state.
    let mut by_run: BTreeMap<String, Vec<&RunResult>> = BTreeMap::new();
    for result in &results {
        by_run
            .entry(result.run_id.clone())
            .or_default()
            .push(result);
    }
    assert_eq!(by_run.len(), runs);
    for (run_id, got) in &by_run {
        assert_eq!(got.len(), 1, "run {run_id} has {} results", got.len());
        let result = got[0];
        assert_eq!(result.status, "completed", "{result:?}");
        let doc = format!("d{}", &run_id[4..]);
        assert_eq!(
            Value::Object(result.state.clone()),
            expected(&doc),
            "run {run_id}"
        );
    }
    let resumed: Vec<&RunResult> = results
        .iter()
        .filter(|r| r.resumed_from.is_some())
        .collect();
    assert!(
        !resumed.is_empty(),
        "no run was resumed: the kill hit no run in flight\n{}",
        worker_logs()
    );
    assert!(resumed.iter().all(|r| r.delivery > 1 && r.worker != "w0"));

    // Every call reached the server; only calls still unanswered (or answered too late to be
    // saved) when the worker died reached it twice, and only for resumed runs.
    let log = log.lock().expect("log").clone();
    let mut calls: HashMap<String, Vec<Instant>> = HashMap::new();
    for (prompt, at) in &log {
        calls.entry(prompt.clone()).or_default().push(*at);
    }
    assert_eq!(calls.len(), runs * 3, "distinct calls");
    let resumed_docs: std::collections::HashSet<String> = resumed
        .iter()
        .map(|r| format!("d{}", &r.run_id[4..]))
        .collect();
    let mut repeated = 0;
    for (prompt, times) in &calls {
        if times.len() == 1 {
            continue;
        }
        repeated += 1;
        assert_eq!(
            times.len(),
            2,
            "`{prompt}` reached the server {} times",
            times.len()
        );
        let doc = prompt
            .split_whitespace()
            .last()
            .expect("the doc")
            .to_string();
        assert!(
            resumed_docs.contains(&doc),
            "`{prompt}` repeated, yet its run was not resumed"
        );
        assert!(
            times[0] + LLM_DELAY + SAVED_BY > kill_at,
            "`{prompt}` was answered {:?} before the kill, saved to the tape, and yet made again",
            kill_at.duration_since(times[0])
        );
    }
    // The dead worker had at most 8 runs of at most 2 calls in flight.
    assert!(repeated <= 16, "{repeated} calls repeated");

    // One trace per run, every parent present; a resumed run's second segment hangs off the
    // first's root, and the calls its tape answered are marked.
    let mut replayed = 0;
    for result in by_run.values().map(|r| r[0]) {
        let spans = read_trace_file(&scratch.traces().join(format!("{}.jsonl", result.run_id)))
            .expect("the run's trace");
        let ids: std::collections::HashSet<&str> =
            spans.iter().map(|s| s.span_id.as_str()).collect();
        let orphans: Vec<String> = spans
            .iter()
            .filter(|s| {
                s.parent_span_id
                    .as_deref()
                    .is_some_and(|p| !ids.contains(p))
            })
            .map(|s| format!("{} ({})", s.name, s.span_id))
            .collect();
        assert!(
            orphans.is_empty(),
            "run {} (delivery {}, resumed from {:?}, on {}): spans without their parent: {orphans:?}\n{}",
            result.run_id,
            result.delivery,
            result.resumed_from,
            result.worker,
            spans
                .iter()
                .map(|s| format!(
                    "{} {} <- {:?} {:?}",
                    s.name,
                    s.span_id,
                    s.parent_span_id,
                    s.attributes.get("kettle.run.resumed_from")
                ))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let root = assert_whole_trace(&spans);
        assert_eq!(root.name, "invoke_agent fleet");
        assert_eq!(root.trace_id, result.trace_id);
        if result.resumed_from.is_some() {
            let segment = spans
                .iter()
                .find(|s| s.attributes.contains_key("kettle.run.resumed_from"))
                .expect("the resumed segment's root");
            assert_eq!(
                segment.parent_span_id.as_deref(),
                Some(root.span_id.as_str())
            );
            replayed += spans
                .iter()
                .filter(|s| s.attributes.get("kettle.llm.replayed") == Some(&Value::Bool(true)))
                .count();
        }
    }
    eprintln!(
        "{runs} runs, {} resumed, {repeated} calls repeated, {replayed} answered from tapes",
        resumed.len()
    );
}

fn stuck_agent(scratch: &Scratch, server: &LlmServer) -> std::path::PathBuf {
    scratch.agent(
        "stuck.yaml",
        &format!(
            r#"name: stuck
settings:
  llm: {{provider: openai, model: m, base_url: {base}, max_retries: 0, timeout: 600}}
nodes:
  - name: ask
    steps:
      - name: only
        uses: llm.call
        with: {{prompt: "{{{{ state.prompt }}}}"}}
        output: answer
"#,
            base = server.url("/v1"),
        ),
    )
}

/// `kettle worker` with an ack deadline of 3 s, giving up on a request after `max_deliver`
/// deliveries.
fn worker(scratch: &Scratch, url: &str, agent: &Path, name: &str, max_deliver: u32) -> Reaped {
    let child = scratch
        .kettle()
        .args(["worker", "--nats", url, "--ack-wait", "3", "--max-deliver"])
        .arg(max_deliver.to_string())
        .args(["--name", name, "--trace-dir"])
        .arg(scratch.traces())
        .arg(agent)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(scratch.path().join(format!("{name}.stderr")))
                .expect("stderr file"),
        )
        .spawn()
        .expect("kettle worker starts");
    Reaped(child)
}

/// `kettle submit --wait` and `kettle result` answer with the run's result; a request that is
/// not a run request, and one whose only allowed delivery died with its worker, end on the
/// dead-letter subject with what went wrong.
#[test]
fn submit_waits_for_results_and_lost_requests_become_dead_letters() {
    let scratch = Scratch::new();
    let (_nats, url) = nats_server(&scratch.path().join("jetstream"));
    let server = LlmServer::start(|request| {
        let prompt = last_message(request);
        if prompt == "hang" {
            return Reply::Hang;
        }
        Reply::json(&openai_completion(
            "c",
            "m",
            Some(&format!("echo: {prompt}")),
            &[],
            "stop",
            (7, 3),
        ))
    });
    let agent = stuck_agent(&scratch, &server);
    let mut first = worker(&scratch, &url, &agent, "first", 1);

    let submitted = scratch
        .kettle()
        .args([
            "submit",
            "--nats",
            &url,
            "stuck",
            "--input",
            r#"{"prompt": "tea"}"#,
        ])
        .args(["--run-id", "tea-1", "--wait", "--timeout", "120"])
        .output()
        .expect("kettle submit");
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let result: RunResult = serde_json::from_slice(&submitted.stdout).expect("the result");
    assert_eq!(
        (result.status.as_str(), &result.state["answer"]["content"]),
        ("completed", &json!("echo: tea"))
    );
    let fetched = scratch
        .kettle()
        .args(["result", "--nats", &url, "tea-1"])
        .output()
        .expect("kettle result");
    assert!(fetched.status.success(), "{}", stderr(&fetched));
    assert_eq!(
        serde_json::from_slice::<RunResult>(&fetched.stdout).expect("the result"),
        result
    );
    let unknown = scratch
        .kettle()
        .args(["result", "--nats", &url, "nobody"])
        .output()
        .expect("kettle result");
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("no result yet"),
        "{}",
        stderr(&unknown)
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let letters = runtime.block_on(async {
        let jet = Jet::connect(&url).await.expect("connects");
        let mut dead = jet
            .client
            .subscribe("kettle.dead.>")
            .await
            .expect("subscribe");
        let hanging = RunRequest {
            run_id: "hang-1".into(),
            agent: "stuck".into(),
            input: serde_json::from_value(json!({"prompt": "hang"})).expect("object"),
            traceparent: None,
        };
        submit(&jet, &hanging).await.expect("submitted");
        let deadline = Instant::now() + Duration::from_secs(60);
        while !server.requests().iter().any(|r| last_message(r) == "hang") {
            assert!(Instant::now() < deadline, "the run never called the LLM");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // While the first worker lives (a request published after its death could go to the
        // pull it left pending, and so die with it).
        jet.js
            .publish("kettle.runs.stuck", "not a request".into())
            .await
            .expect("published")
            .await
            .expect("stored");
        let garbled = tokio::time::timeout(Duration::from_secs(60), dead.next())
            .await
            .expect("a dead letter within a minute")
            .expect("the subscription is open");
        first.0.kill().expect("SIGKILL");
        let _second = worker(&scratch, &url, &agent, "second", 1);
        let mut letters = vec![serde_json::from_slice(&garbled.payload).expect("a dead letter")];
        while letters.len() < 2 {
            let message = tokio::time::timeout(Duration::from_secs(60), dead.next())
                .await
                .expect("a dead letter within a minute")
                .expect("the subscription is open");
            let letter: kettle_worker::DeadLetter =
                serde_json::from_slice(&message.payload).expect("a dead letter");
            letters.push(letter);
        }
        letters
    });
    let garbled = letters
        .iter()
        .find(|l| l.request == "not a request")
        .expect("the garbled request's letter");
    assert!(
        garbled.error.contains("not a Kettle run request"),
        "{}",
        garbled.error
    );
    let lost = letters
        .iter()
        .find(|l| l.run_id == "hang-1")
        .expect("the lost request's letter");
    assert_eq!((lost.agent.as_str(), lost.deliveries), ("stuck", 1));
    assert!(
        lost.error.contains("stopped without a word"),
        "{}",
        lost.error
    );
}

/// A run longer than the ack deadline stays with its worker: the worker tells JetStream it is
/// still at it, so no other worker gets the request and the slow call is made once.
#[test]
fn a_run_longer_than_the_ack_deadline_is_not_redelivered() {
    let scratch = Scratch::new();
    let (_nats, url) = nats_server(&scratch.path().join("jetstream"));
    let server = LlmServer::start(|request| {
        let prompt = last_message(request);
        Reply::json(&openai_completion(
            "c",
            "m",
            Some(&format!("echo: {prompt}")),
            &[],
            "stop",
            (7, 3),
        ))
        .after(Duration::from_secs(8))
    });
    let agent = stuck_agent(&scratch, &server);
    let _workers = [
        worker(&scratch, &url, &agent, "one", 5),
        worker(&scratch, &url, &agent, "two", 5),
    ];
    let submitted = scratch
        .kettle()
        .args([
            "submit",
            "--nats",
            &url,
            "stuck",
            "--input",
            r#"{"prompt": "slow"}"#,
        ])
        .args(["--run-id", "slow-1", "--wait", "--timeout", "120"])
        .output()
        .expect("kettle submit");
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let result: RunResult = serde_json::from_slice(&submitted.stdout).expect("the result");
    assert_eq!((result.status.as_str(), result.delivery), ("completed", 1));
    assert_eq!(server.requests().len(), 1, "the slow call was made twice");
}
