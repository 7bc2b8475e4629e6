//! `kettle serve` and streamed LLM answers: the chunks of `llm.stream` (a built-in node's and a
//! component's) reach a server-sent-events client as they arrive, before the result; and
//! `/metrics` shows the LLM call latency histogram and the instance-pool slots held while a
//! component runs.

use crate::serve::{Server, client};
use crate::support::provider_shapes::openai_stream;
use crate::support::{Scratch, llm_server::Reply, repo};
use serde_json::Value;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The pause between two pieces of a streamed answer: long enough to tell "as they arrive"
/// from "all at the end".
const PACE: Duration = Duration::from_millis(250);

/// An OpenAI-compatible server whose every answer is a stream (OpenAI's
/// `chat.completion.chunk` events, chunked transfer encoding), one piece every [`PACE`].
struct PacedLlm {
    addr: SocketAddr,
}

impl PacedLlm {
    fn start(deltas: &'static [&'static str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || answer_paced(stream, deltas));
            }
        });
        Self { addr }
    }
}

fn answer_paced(mut stream: TcpStream, deltas: &[&str]) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    while let Some(_body) = crate::support::keep_alive::next_request_body(&mut reader) {
        let Reply::Stream { pieces, .. } = openai_stream(
            "chatcmpl-paced",
            "paced-1",
            deltas,
            (7, deltas.len() as u32),
        ) else {
            unreachable!("openai_stream is a stream");
        };
        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
        if stream.write_all(head.as_bytes()).is_err() {
            return;
        }
        for piece in pieces {
            let chunk = format!("{:x}\r\n{piece}\r\n", piece.len());
            if stream.write_all(chunk.as_bytes()).is_err() || stream.flush().is_err() {
                return;
            }
            std::thread::sleep(PACE);
        }
        if stream.write_all(b"0\r\n\r\n").is_err() {
            return;
        }
    }
}

const DELTAS: &[&str] = &["Once ", "upon ", "a ", "time"];

/// A component reading a stream (the llm-probe node), then a built-in `llm.stream` node.
fn storyteller(llm: &PacedLlm) -> String {
    format!(
        "name: storyteller
settings:
  llm: {{provider: openai, model: paced-1, base_url: 'http://{}/v1', api_key_env: KETTLE_SERVE_TEST_KEY, max_retries: 0}}
nodes:
  - name: probe
    component: {}
    config: {{mode: stream, key: probed}}
  - name: tell
    uses: llm.stream
    with: {{prompt: \"tell me a story\"}}
    output: story
",
        llm.addr,
        repo().join("tests/nodes/llm-probe").display()
    )
}

/// Server-sent events as they arrive: (when, event name, data).
fn read_events(response: reqwest::blocking::Response) -> Vec<(Instant, String, Value)> {
    let mut events = Vec::new();
    let mut reader = BufReader::new(response);
    let (mut name, mut data) = (None::<String>, None::<String>);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).expect("the stream reads") == 0 {
            return events;
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if let Some(rest) = line.strip_prefix("event: ") {
            name = Some(rest.to_string());
        } else if let Some(rest) = line.strip_prefix("data: ") {
            data = Some(rest.to_string());
        } else if line.is_empty()
            && let (Some(event), Some(json)) = (name.take(), data.take())
        {
            let value = serde_json::from_str(&json).expect("json data");
            let done = event == "result";
            events.push((Instant::now(), event, value));
            if done {
                return events;
            }
        }
    }
}

/// The value of the metric line that starts with `prefix` and contains every one of `labels`.
fn metric(text: &str, prefix: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(prefix) && labels.iter().all(|label| l.contains(label)))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn llm_chunks_stream_to_the_client_as_they_arrive_and_metrics_show_llm_latency_and_pool_slots() {
    let llm = PacedLlm::start(DELTAS);
    let scratch = Scratch::new();
    let agent = scratch.agent("storyteller.yaml", &storyteller(&llm));
    let server = Server::start(&scratch, &[&agent], &[], &[]);

    let before = client()
        .get(server.url("/metrics"))
        .send()
        .expect("answer")
        .text()
        .expect("text");
    assert_eq!(
        metric(&before, "kettle_pool_slots_in_use ", &[]),
        Some(0.0),
        "{before}"
    );
    assert!(metric(&before, "kettle_pool_slots ", &[]).is_some_and(|n| n >= 1.0));
    assert!(
        !before.contains("kettle_llm_call_duration_seconds_count"),
        "{before}"
    );

    // While the run goes on, another client watches the pool.
    let metrics_url = server.url("/metrics");
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = watching.clone();
    let watcher = std::thread::spawn(move || {
        let mut most = 0.0f64;
        while still.load(std::sync::atomic::Ordering::SeqCst) {
            if let Ok(text) = client().get(&metrics_url).send().and_then(|r| r.text()) {
                most = most.max(metric(&text, "kettle_pool_slots_in_use ", &[]).unwrap_or(0.0));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        most
    });

    let sent = Instant::now();
    let response = client()
        .post(server.url("/v1/agents/storyteller/runs"))
        .header("accept", "text/event-stream")
        .body(r#"{"input": {"prompt": "tell me a story"}}"#)
        .send()
        .expect("answer");
    assert_eq!(response.status(), 200);
    let events = read_events(response);
    watching.store(false, std::sync::atomic::Ordering::SeqCst);
    let most_slots = watcher.join().expect("the watcher ends");

    let kinds: Vec<&str> = events.iter().map(|(_, k, _)| k.as_str()).collect();
    let (result_at, _, result) = events.last().expect("events");
    assert_eq!(kinds.last(), Some(&"result"), "{kinds:?}");
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["state"]["story"]["content"], "Once upon a time");
    assert_eq!(result["state"]["probed"]["answer"], "Once upon a time");

    // Each node's chunks, in order, between its start and its finish.
    for node in ["probe", "tell"] {
        let of_node = |kind: &str| {
            events
                .iter()
                .enumerate()
                .filter(|(_, (_, k, v))| k == kind && v["node"] == node)
                .map(|(i, _)| i)
                .collect::<Vec<_>>()
        };
        let chunks = of_node("llm_chunk");
        let deltas: Vec<&str> = chunks
            .iter()
            .map(|&i| events[i].2["delta"].as_str().expect("delta"))
            .collect();
        assert_eq!(deltas, DELTAS, "{node}: {kinds:?}");
        let (start, finish) = (of_node("node_start")[0], of_node("node_finish")[0]);
        assert!(
            start < chunks[0] && chunks[chunks.len() - 1] < finish,
            "{node}: {kinds:?}"
        );
        assert_eq!(of_node("llm_call").len(), 1, "{node}: {kinds:?}");
        let run_id = &result["run_id"];
        assert!(chunks.iter().all(|&i| &events[i].2["run_id"] == run_id));
    }
    // As they arrive: the first chunk reached the client long before the answer was whole
    // (each answer is eight pieces PACE apart; two answers).
    let first_chunk_at = events
        .iter()
        .find(|(_, k, _)| k == "llm_chunk")
        .map(|(at, _, _)| *at)
        .expect("a chunk");
    assert!(
        *result_at - first_chunk_at >= PACE * 6,
        "first chunk {:?} after sending, result {:?}",
        first_chunk_at - sent,
        *result_at - sent
    );

    assert!(
        most_slots >= 1.0,
        "the component's instance held a pool slot while it streamed"
    );
    let after = client()
        .get(server.url("/metrics"))
        .send()
        .expect("answer")
        .text()
        .expect("text");
    assert_eq!(
        metric(&after, "kettle_pool_slots_in_use ", &[]),
        Some(0.0),
        "{after}"
    );
    let model = "model=\"paced-1\"";
    assert_eq!(
        metric(&after, "kettle_llm_call_duration_seconds_count{", &[model]),
        Some(2.0),
        "{after}"
    );
    let sum = metric(&after, "kettle_llm_call_duration_seconds_sum{", &[model]).expect("sum");
    assert!(
        sum >= (PACE * 5).as_secs_f64() * 2.0,
        "two streams of eight pieces {PACE:?} apart: {sum} s\n{after}"
    );
    assert_eq!(
        metric(
            &after,
            "kettle_llm_call_duration_seconds_bucket{",
            &[model, "le=\"1\""]
        ),
        Some(0.0),
        "{after}"
    );
    assert_eq!(
        metric(
            &after,
            "kettle_llm_call_duration_seconds_bucket{",
            &[model, "le=\"+Inf\""]
        ),
        Some(2.0),
        "{after}"
    );

    let (code, log) = server.terminate();
    assert_eq!(code, 0, "{log}");
}
