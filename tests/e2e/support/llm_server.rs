//! A real HTTP server on 127.0.0.1 for LLM provider tests: it records every request (method,
//! path, query, headers, JSON body) and answers each with the next scripted [`Reply`], else
//! with its fallback. Replies cover the faults providers really produce: error statuses with
//! `Retry-After`, bodies that are not JSON, streams (SSE or NDJSON) that break off mid-way,
//! and requests never answered.
#![allow(dead_code)]

use futures::channel::mpsc;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole body at once.
    Body {
        status: u16,
        headers: Vec<(String, String)>,
        content_type: &'static str,
        body: String,
    },
    /// A 200 whose body is sent piece by piece; with `break_off`, the connection is cut
    /// after the last piece instead of ending the body.
    Stream {
        content_type: &'static str,
        pieces: Vec<String>,
        break_off: bool,
    },
    /// Never answers.
    Hang,
    /// The reply, after a pause before its headers (a server thinking before it answers).
    Delayed(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(body: &Value) -> Self {
        Self::status(200, body.to_string())
    }

    pub fn status(status: u16, body: impl Into<String>) -> Self {
        Reply::Body {
            status,
            headers: Vec::new(),
            content_type: "application/json",
            body: body.into(),
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        if let Reply::Body { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    /// Server-Sent Events: each item is one `data:` message (with an optional `event:` name).
    pub fn sse(events: &[(Option<&str>, String)]) -> Self {
        Reply::Stream {
            content_type: "text/event-stream",
            pieces: events
                .iter()
                .map(|(event, data)| match event {
                    Some(name) => format!("event: {name}\ndata: {data}\n\n"),
                    None => format!("data: {data}\n\n"),
                })
                .collect(),
            break_off: false,
        }
    }

    /// Newline-delimited JSON.
    pub fn ndjson(lines: &[Value]) -> Self {
        Reply::Stream {
            content_type: "application/x-ndjson",
            pieces: lines.iter().map(|l| format!("{l}\n")).collect(),
            break_off: false,
        }
    }

    /// A 200 with an empty body, announced as a stream of `content_type`.
    pub fn empty(content_type: &'static str) -> Self {
        Reply::Body {
            status: 200,
            headers: Vec::new(),
            content_type,
            body: String::new(),
        }
    }

    /// This reply, its headers sent only after `pause`.
    pub fn after(self, pause: Duration) -> Self {
        Reply::Delayed(pause, Box::new(self))
    }

    /// The same stream, cut off after its pieces.
    pub fn broken_off(mut self) -> Self {
        if let Reply::Stream { break_off, .. } = &mut self {
            *break_off = true;
        }
        self
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HashMap<String, String>,
    pub body: Value,
}

type Fallback = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

pub struct LlmServer {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LlmServer {
    /// Starts a server answering with `fallback` whenever the script is empty.
    pub fn start(fallback: impl Fn(&Recorded) -> Reply + Send + Sync + 'static) -> Self {
        let fallback: Fallback = Arc::new(fallback);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::new()));
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let (recorded, scripted) = (requests.clone(), script.clone());
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let stream = tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => match accepted {
                            Ok((stream, _)) => stream,
                            Err(_) => continue,
                        },
                    };
                    let (recorded, scripted, fallback) =
                        (recorded.clone(), scripted.clone(), fallback.clone());
                    tokio::spawn(async move {
                        let service = service_fn(move |request| {
                            handle(
                                request,
                                recorded.clone(),
                                scripted.clone(),
                                fallback.clone(),
                            )
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
            script,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Queues replies for the next requests, in order.
    pub fn then(&self, replies: impl IntoIterator<Item = Reply>) -> &Self {
        self.script.lock().expect("lock").extend(replies);
        self
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.requests.lock().expect("lock").clone()
    }

    /// Stops accepting connections and closes the port.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for LlmServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

type Body = http_body_util::combinators::BoxBody<Bytes, std::io::Error>;

async fn handle(
    request: Request<Incoming>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
    fallback: Fallback,
) -> Result<Response<Body>, hyper::Error> {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
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
    let this = Recorded {
        method,
        path,
        query,
        headers,
        body,
    };
    recorded.lock().expect("lock").push(this.clone());
    let reply = script
        .lock()
        .expect("lock")
        .pop_front()
        .unwrap_or_else(|| fallback(&this));
    let reply = match reply {
        Reply::Delayed(pause, inner) => {
            tokio::time::sleep(pause).await;
            *inner
        }
        other => other,
    };
    let response = match reply {
        Reply::Delayed(_, _) => Response::builder()
            .status(500)
            .body(full("a delay of a delay".into())),
        Reply::Hang => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            Response::builder().status(500).body(full(String::new()))
        }
        Reply::Body {
            status,
            headers,
            content_type,
            body,
        } => {
            let mut builder = Response::builder()
                .status(status)
                .header("content-type", content_type);
            for (name, value) in headers {
                builder = builder.header(name, value);
            }
            builder.body(full(body))
        }
        Reply::Stream {
            content_type,
            pieces,
            break_off,
        } => {
            let (tx, rx) = mpsc::unbounded::<Result<Frame<Bytes>, std::io::Error>>();
            tokio::spawn(async move {
                for piece in pieces {
                    if tx
                        .unbounded_send(Ok(Frame::data(Bytes::from(piece))))
                        .is_err()
                    {
                        return;
                    }
                    // Pieces arrive apart, as from a model generating.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                if break_off {
                    let _ = tx.unbounded_send(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionReset,
                        "cut off",
                    )));
                }
            });
            Response::builder()
                .status(200)
                .header("content-type", content_type)
                .body(BodyExt::boxed(StreamBody::new(rx)))
        }
    };
    Ok(response.expect("response"))
}

fn full(text: String) -> Body {
    http_body_util::Full::new(Bytes::from(text))
        .map_err(|never| match never {})
        .boxed()
}
