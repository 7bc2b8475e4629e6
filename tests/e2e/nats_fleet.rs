//! `kettle serve --nats` and components through the JetStream object store, with a real
//! `nats-server -js` and real `kettle` processes: a served run is queued for a worker and
//! answered with its final state, inside the caller's trace (or, past its timeout, 504 and its
//! result fetched by run id once a worker did it); a worker whose agent folder lacks a node's
//! `.wasm` or node folder (or has another `.wasm`) runs the component `kettle publish` put in
//! the object store, fetched once by its sha256 and then taken from its cache; a component
//! whose bytes do not match its sha256 is refused.

use crate::support::{Scratch, repo, stderr};
use crate::workers::{Reaped, nats_server};
use kettle::telemetry::read_trace_file;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Starts `command` (a `kettle worker`), its stderr in `log`, and waits until it is ready.
fn worker(mut command: Command, log: &Path) -> Reaped {
    let child = command
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("kettle worker starts");
    let mut child = Reaped(child);
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.contains("worker ready") {
            return child;
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("kettle worker exited ({status}):\n{text}");
        }
        assert!(
            Instant::now() < deadline,
            "the worker was not ready:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `kettle serve --nats URL AGENT` on a free port: its address, its stderr lines after start.
fn serve(scratch: &Scratch, url: &str, agent: &Path) -> (Reaped, String) {
    let mut child = scratch
        .kettle()
        .arg("serve")
        .arg(agent)
        .args(["--listen", "127.0.0.1:0", "--nats", url, "--timeout", "60"])
        .env_remove("KETTLE_SERVE_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kettle serve starts");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    let addr = loop {
        line.clear();
        assert!(
            lines.read_line(&mut line).expect("stderr") > 0,
            "kettle serve exited: {line}"
        );
        if let Some(rest) = line.split("serving on http://").nth(1) {
            assert!(line.contains("runs go to the workers at NATS"), "{line}");
            break rest.split_whitespace().next().expect("address").to_string();
        }
    };
    std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = lines.read_to_string(&mut rest);
    });
    (Reaped(child), addr)
}

fn relay_agent(scratch: &Scratch) -> PathBuf {
    scratch.agent(
        "relay.yaml",
        r#"name: relay
nodes:
  - name: greet
    run: {type: expression, value: "'hello ' ~ state.who", output_key: greeting}
  - name: ask
    uses: llm.call
    with: {prompt: "{{ state.greeting }}"}
    output: answer
edges:
  - {from: __start__, to: greet}
  - {from: greet, to: ask}
  - {from: ask, to: __end__}
"#,
    )
}

#[test]
fn serve_with_nats_queues_the_run_for_a_worker_and_answers_inside_the_callers_trace() {
    let scratch = Scratch::new();
    let (_nats, url) = nats_server(&scratch.path().join("jetstream"));
    let agent = relay_agent(&scratch);
    let clean = scratch
        .kettle()
        .arg("run")
        .arg(&agent)
        .args(["--no-trace", "--input", r#"{"who": "fleet"}"#])
        .output()
        .expect("kettle run");
    assert!(clean.status.success(), "{}", stderr(&clean));
    let expected: Value = serde_json::from_slice(&clean.stdout).expect("the final state");

    let (_server, addr) = serve(&scratch, &url, &agent);
    let client = reqwest::blocking::Client::new();

    // No worker yet: past the request's timeout the answer is 504, and the run stays queued.
    let early = client
        .post(format!("http://{addr}/v1/agents/relay/runs"))
        .json(&json!({"input": {"who": "early"}, "timeout_ms": 300}))
        .send()
        .expect("POST");
    assert_eq!(early.status(), 504);
    let early: Value = early.json().expect("JSON answer");
    assert_eq!(early["status"], "queued", "{early}");
    let early_id = early["run_id"].as_str().expect("run id").to_string();

    let mut command = scratch.kettle();
    command
        .args(["worker", "--nats", &url, "--name", "w1", "--trace-dir"])
        .arg(scratch.traces())
        .arg(&agent);
    let _worker = worker(command, &scratch.path().join("w1.stderr"));

    // The queued run is done by the worker and its result fetched by id.
    let deadline = Instant::now() + Duration::from_secs(30);
    let fetched = loop {
        let answer = client
            .get(format!("http://{addr}/v1/runs/{early_id}"))
            .send()
            .expect("GET");
        let body: Value = answer.json().expect("JSON");
        if body["status"] == "ok" {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no result for the queued run: {body}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(fetched["state"]["greeting"], "hello early", "{fetched}");
    assert_eq!(fetched["worker"], "w1", "{fetched}");

    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let answer = client
        .post(format!("http://{addr}/v1/agents/relay/runs"))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({"input": {"who": "fleet"}}))
        .send()
        .expect("POST");
    assert_eq!(answer.status(), 200);
    let root_header = answer
        .headers()
        .get("traceparent")
        .map(|v| v.to_str().expect("ascii").to_string());
    let body: Value = answer.json().expect("JSON answer");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["state"], expected, "{body}");
    assert_eq!(body["trace_id"], caller_trace, "{body}");
    assert_eq!(body["worker"], "w1", "{body}");
    assert_eq!(body["nodes_run"], 2, "{body}");
    let run_id = body["run_id"].as_str().expect("run id").to_string();
    let root_header = root_header.expect("the answer names the run's root span");
    assert!(root_header.contains(caller_trace), "{root_header}");

    // Fetched by id from where the results are kept.
    let fetched: Value = client
        .get(format!("http://{addr}/v1/runs/{run_id}"))
        .send()
        .expect("GET")
        .json()
        .expect("JSON");
    assert_eq!(fetched["state"], expected);
    assert_eq!(fetched["run_id"], run_id.as_str());

    // The worker's trace of the run: its root is the caller's span's child.
    let deadline = Instant::now() + Duration::from_secs(20);
    let spans = loop {
        let spans: Vec<_> = std::fs::read_dir(scratch.traces())
            .into_iter()
            .flatten()
            .filter_map(|e| read_trace_file(&e.ok()?.path()).ok())
            .flatten()
            .filter(|s| s.trace_id == caller_trace)
            .collect();
        if spans.iter().any(|s| s.name.starts_with("invoke_agent")) || Instant::now() > deadline {
            break spans;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let root = spans
        .iter()
        .find(|s| s.name.starts_with("invoke_agent"))
        .expect("the run's root span in the worker's trace");
    assert_eq!(root.parent_span_id.as_deref(), Some(caller_span));
    assert!(root_header.contains(&root.span_id), "{root_header}");

    // Server-sent events: the worker's node events, then the result.
    let mut events = String::new();
    client
        .post(format!("http://{addr}/v1/agents/relay/runs"))
        .header("accept", "text/event-stream")
        .json(&json!({"input": {"who": "stream"}}))
        .send()
        .expect("POST")
        .read_to_string(&mut events)
        .expect("the stream");
    let starts = events.matches("event: node_start").count();
    assert_eq!(starts, 2, "{events}");
    let finishes = events.matches("event: node_finish").count();
    assert_eq!(finishes, 2, "{events}");
    assert!(
        events.find("event: node_finish").unwrap_or(usize::MAX)
            < events.find("event: result").unwrap_or(0),
        "{events}"
    );
    let result = events
        .split("event: result\ndata: ")
        .nth(1)
        .expect("a result event");
    let result: Value =
        serde_json::from_str(result.lines().next().expect("data")).expect("JSON result");
    assert_eq!(result["status"], "ok");
    assert_eq!(result["state"]["greeting"], "hello stream");

    // An agent this server does not serve, and a run id no worker ran.
    let unknown = client
        .post(format!("http://{addr}/v1/agents/nobody/runs"))
        .json(&json!({}))
        .send()
        .expect("POST");
    assert_eq!(unknown.status(), 404);
    let missing = client
        .get(format!("http://{addr}/v1/runs/no-such-run"))
        .send()
        .expect("GET");
    assert_eq!(missing.status(), 404);
}

/// The hello node, built, as a `.wasm` file beside a one-node agent in `dir`.
fn one_node_agent(scratch: &Scratch, dir: &Path, wasm: Option<&[u8]>) -> PathBuf {
    std::fs::create_dir_all(dir).expect("dir");
    if let Some(wasm) = wasm {
        std::fs::write(dir.join("summarize.wasm"), wasm).expect("write wasm");
    }
    let agent = dir.join("agent.yaml");
    std::fs::write(
        &agent,
        "name: onenode\nnodes:\n  - name: summarize\n    component: summarize.wasm\nedges:\n  - {from: __start__, to: summarize}\n  - {from: summarize, to: __end__}\n",
    )
    .expect("write agent");
    let _ = scratch;
    agent
}

fn submit(scratch: &Scratch, url: &str, agent: &str, topic: &str) -> Value {
    let output = scratch
        .kettle()
        .args(["submit", "--nats", url, agent, "--wait", "--timeout", "60"])
        .args(["--input", &json!({ "topic": topic }).to_string()])
        .output()
        .expect("kettle submit");
    assert!(output.status.success(), "{}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("the result")
}

fn worker_command(scratch: &Scratch, url: &str, agent: &Path, cache: &Path) -> Command {
    let mut command = scratch.kettle();
    command
        .args(["worker", "--nats", url, "--trace-dir"])
        .arg(scratch.traces())
        .arg(agent)
        .env("KETTLE_CACHE_DIR", cache);
    command
}

#[test]
fn a_worker_lacking_a_component_fetches_it_by_sha256_caches_it_and_refuses_a_forged_one() {
    let scratch = Scratch::new();
    let (_nats, url) = nats_server(&scratch.path().join("jetstream"));
    let node = repo().join("examples/hello/nodes/summarize");
    let built = scratch
        .kettle()
        .arg("build")
        .arg(&node)
        .output()
        .expect("kettle build");
    assert!(built.status.success(), "{}", stderr(&built));
    let wasm = std::fs::read(
        kettle_build::built_component(&node, &scratch.cache()).expect("built component"),
    )
    .expect("read the component");
    let sha = kettle_worker::sha256_hex(&wasm);

    // Where the agent is built: its expected state, and its components published.
    let home = one_node_agent(&scratch, &scratch.path().join("home"), Some(&wasm));
    let clean = scratch
        .kettle()
        .arg("run")
        .arg(&home)
        .args(["--no-trace", "--input", r#"{"topic": "kettles"}"#])
        .output()
        .expect("kettle run");
    assert!(clean.status.success(), "{}", stderr(&clean));
    let expected: Value = serde_json::from_slice(&clean.stdout).expect("the final state");
    let published = scratch
        .kettle()
        .args(["publish", "--nats", &url])
        .arg(&home)
        .output()
        .expect("kettle publish");
    assert!(published.status.success(), "{}", stderr(&published));
    let listed = String::from_utf8_lossy(&published.stdout).into_owned();
    assert!(
        listed.contains(&format!("onenode {sha} {} wasm:summarize.wasm", wasm.len())),
        "{listed}"
    );

    // A machine with the agent file and no component: it fetches it, once.
    let away = one_node_agent(&scratch, &scratch.path().join("away"), None);
    let away_cache = scratch.path().join("away-cache");
    let log = scratch.path().join("away1.stderr");
    let first = worker(worker_command(&scratch, &url, &away, &away_cache), &log);
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(
        said.contains(&format!("fetched component {sha} (wasm:summarize.wasm")),
        "{said}"
    );
    let result = submit(&scratch, &url, "onenode", "kettles");
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["state"], expected, "{result}");
    let cached = away_cache.join("fetched").join(format!("{sha}.wasm"));
    assert_eq!(std::fs::read(&cached).expect("cached"), wasm);
    drop(first);

    // Started again: from its cache, nothing fetched; a different .wasm on disk is not run.
    let other = one_node_agent(
        &scratch,
        &scratch.path().join("other"),
        Some(b"\0asm not this"),
    );
    let log = scratch.path().join("away2.stderr");
    let second = worker(worker_command(&scratch, &url, &other, &away_cache), &log);
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(!said.contains("fetched component"), "{said}");
    let result = submit(&scratch, &url, "onenode", "kettles");
    assert_eq!(result["state"], expected, "{result}");
    drop(second);

    // A node folder (built where the agent is published), absent on the worker's machine.
    let folder_home = scratch.path().join("folder-home");
    std::fs::create_dir_all(folder_home.join("nodes")).expect("dir");
    std::os::unix::fs::symlink(&node, folder_home.join("nodes/summarize")).expect("symlink");
    let folder_agent = "name: onefolder\nnodes:\n  - name: summarize\n    component: nodes/summarize\nedges:\n  - {from: __start__, to: summarize}\n  - {from: summarize, to: __end__}\n";
    std::fs::write(folder_home.join("agent.yaml"), folder_agent).expect("write");
    let published = scratch
        .kettle()
        .args(["publish", "--nats", &url])
        .arg(folder_home.join("agent.yaml"))
        .output()
        .expect("kettle publish");
    assert!(published.status.success(), "{}", stderr(&published));
    let folder_away = scratch.path().join("folder-away");
    std::fs::create_dir_all(&folder_away).expect("dir");
    std::fs::write(folder_away.join("agent.yaml"), folder_agent).expect("write");
    let log = scratch.path().join("folder.stderr");
    let third = worker(
        worker_command(
            &scratch,
            &url,
            &folder_away.join("agent.yaml"),
            &scratch.path().join("folder-cache"),
        ),
        &log,
    );
    let said = std::fs::read_to_string(&log).expect("log");
    assert!(
        said.contains(&format!("fetched component {sha} (folder:nodes/summarize")),
        "{said}"
    );
    let result = submit(&scratch, &url, "onefolder", "kettles");
    assert_eq!(result["status"], "completed", "{result}");
    assert_eq!(result["state"], expected, "{result}");
    drop(third);

    // The bucket's copy replaced by other bytes under the same name: refused.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let jet = kettle_worker::Jet::connect(&url).await.expect("connect");
        let bucket = jet
            .js
            .get_object_store("KETTLE_COMPONENTS")
            .await
            .expect("the components bucket");
        bucket
            .put(sha.as_str(), &mut b"\0asm forged".as_slice())
            .await
            .expect("put");
    });
    let fresh = scratch.path().join("fresh-cache");
    let refused = worker_command(&scratch, &url, &away, &fresh)
        .output()
        .expect("kettle worker");
    assert!(!refused.status.success());
    let said = stderr(&refused);
    assert!(
        said.contains(&format!(
            "refusing component {sha} (wasm:summarize.wasm) from KETTLE_COMPONENTS: its bytes hash to sha256 {}",
            kettle_worker::sha256_hex(b"\0asm forged")
        )),
        "{said}"
    );
    assert!(said.contains("kettle publish"), "{said}");
    assert!(!fresh.join("fetched").join(format!("{sha}.wasm")).exists());
}
