//! A real HTTP server on 127.0.0.1 that speaks OpenAI's chat-completions wire format, records
//! every request it receives, and answers (or hangs, to test interruption).

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Answer every request with a completion echoing the last message.
    Answer,
    /// Read the request, then never answer.
    Hang,
    /// Hold every request until this many are in flight at once, then answer them all (and
    /// every later one): a run that never has that many calls in flight never gets an answer.
    GateAt(usize),
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

pub struct FakeOpenAi {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    load: Arc<Load>,
}

/// Requests being answered right now, and the most there ever were.
#[derive(Default)]
struct Load {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    gate_open: AtomicBool,
}

impl FakeOpenAi {
    pub fn start(behaviour: Behaviour) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let recorded = requests.clone();
        let load = Arc::new(Load::default());
        let server_load = load.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let recorded = recorded.clone();
                    let load = server_load.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            handle(request, behaviour, recorded.clone(), load.clone())
                        });
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self {
            addr,
            requests,
            load,
        }
    }

    /// The most requests that were in flight at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.load.max_in_flight.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    /// Waits until at least `n` requests arrived (at most 60 s).
    pub fn wait_for_requests(&self, n: usize) {
        for _ in 0..600 {
            if self.requests().len() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "the server received {} requests, expected {n}",
            self.requests().len()
        );
    }
}

async fn handle(
    request: Request<Incoming>,
    behaviour: Behaviour,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    load: Arc<Load>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let now = load.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    load.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let response = answer(request, behaviour, recorded, &load).await;
    load.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn answer(
    request: Request<Incoming>,
    behaviour: Behaviour,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    load: &Load,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let headers = request
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let bytes = request.into_body().collect().await?.to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let number = {
        let mut all = recorded.lock().expect("lock");
        all.push(Recorded {
            method,
            path,
            headers,
            body: body.clone(),
        });
        all.len()
    };
    if behaviour == Behaviour::Hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    if let Behaviour::GateAt(n) = behaviour {
        while !load.gate_open.load(Ordering::SeqCst) {
            if load.in_flight.load(Ordering::SeqCst) >= n {
                load.gate_open.store(true, Ordering::SeqCst);
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
    }
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .last()
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default();
    let answer = json!({
        "id": format!("chatcmpl-test-{number}"),
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": format!("{}-2024-07-18", body["model"].as_str().unwrap_or("unknown")),
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": format!("echo: {last}")},
            "finish_reason": "stop",
            "logprobs": null
        }],
        "usage": {"prompt_tokens": 10 * messages.len(), "completion_tokens": 7, "total_tokens": 10 * messages.len() + 7}
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .expect("response"))
}
