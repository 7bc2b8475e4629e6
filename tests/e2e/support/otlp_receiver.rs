//! A real OTLP/HTTP receiver on 127.0.0.1: decodes every `ExportTraceServiceRequest` body as
//! protobuf, records the path and headers it came with, and hands the spans back as
//! [`SpanRecord`]s (typed attributes kept) so that the same checks run on OTLP and on files.
//! It can be killed (listener and open connections closed) and restarted on the same port,
//! and switched to answering 503 or to hanging, to play a collector outage.

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use kettle::telemetry::{SpanRecord, StatusRecord};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// Decode and answer 200 with an empty `ExportTraceServiceResponse`.
    Accept = 0,
    /// Read the request, then never answer.
    Hang = 1,
    /// Read the request, record nothing, answer 503 Service Unavailable.
    Unavailable = 2,
}

impl Mode {
    fn from_u8(n: u8) -> Self {
        match n {
            1 => Mode::Hang,
            2 => Mode::Unavailable,
            _ => Mode::Accept,
        }
    }
}

/// One export request as received.
#[derive(Debug, Clone)]
pub struct Export {
    pub path: String,
    pub content_type: String,
    pub headers: HashMap<String, String>,
    /// `service.name` of the resource.
    pub service_names: Vec<String>,
    pub spans: Vec<SpanRecord>,
}

pub struct OtlpReceiver {
    pub addr: SocketAddr,
    exports: Arc<Mutex<Vec<Export>>>,
    mode: Arc<AtomicU8>,
    gate: Arc<Gate>,
    /// Stops the server thread (dropping its runtime closes every connection); `None` when
    /// killed.
    kill: Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            std::thread::JoinHandle<()>,
        )>,
    >,
}

/// Lets a kill fall between requests: a request is either recorded and answered, or neither
/// (a collector that records a batch and dies before answering is the one case where a
/// retried batch arrives twice; the tests choose their kills out of it).
#[derive(Default)]
struct Gate {
    killing: AtomicBool,
    answering: AtomicUsize,
    /// Requests answered 503.
    unavailable: AtomicUsize,
}

impl OtlpReceiver {
    pub fn start(mode: Mode) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let receiver = Self {
            addr,
            exports: Arc::default(),
            mode: Arc::new(AtomicU8::new(mode as u8)),
            gate: Arc::default(),
            kill: Mutex::new(None),
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&self, listener: std::net::TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let recorded = self.exports.clone();
        let mode = self.mode.clone();
        let gate = self.gate.clone();
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let recorded = recorded.clone();
                        let mode = mode.clone();
                        let gate = gate.clone();
                        tokio::spawn(async move {
                            let service = service_fn(move |request| {
                                handle(
                                    request,
                                    Mode::from_u8(mode.load(Ordering::SeqCst)),
                                    recorded.clone(),
                                    gate.clone(),
                                )
                            });
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = killed => {}
                }
            });
            // The runtime is dropped here: every open connection is closed.
        });
        *self.kill.lock().expect("lock") = Some((kill, thread));
    }

    /// Kills the receiver: the port refuses connections and open ones are closed.
    pub fn kill(&self) {
        if let Some((kill, thread)) = self.kill.lock().expect("lock").take() {
            self.gate.killing.store(true, Ordering::SeqCst);
            while self.gate.answering.load(Ordering::SeqCst) > 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
            // The answers already decided get written before the connections close.
            std::thread::sleep(Duration::from_millis(50));
            let _ = kill.send(());
            thread.join().expect("the receiver thread ends");
            self.gate.killing.store(false, Ordering::SeqCst);
        }
    }

    /// Starts it again on the same port (what it received before is kept).
    pub fn restart(&self) {
        self.kill();
        let listener = std::net::TcpListener::bind(self.addr).expect("bind the same port again");
        self.serve(listener);
    }

    /// How many requests were answered 503 so far.
    pub fn unavailable_answers(&self) -> usize {
        self.gate.unavailable.load(Ordering::SeqCst)
    }

    /// From now on, answers as `mode` says.
    pub fn set_mode(&self, mode: Mode) {
        self.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// An address where nothing listens: connections are refused.
    pub fn down_endpoint() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        drop(listener);
        format!("http://{addr}/v1/traces")
    }

    /// `http://127.0.0.1:PORT/v1/traces`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn exports(&self) -> Vec<Export> {
        self.exports.lock().expect("lock").clone()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<SpanRecord> {
        self.exports().into_iter().flat_map(|e| e.spans).collect()
    }

    /// The spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|s| s.trace_id == trace_id)
            .collect()
    }

    /// Waits until the spans of `run_id` number at least `n` (at most 30 s).
    pub fn wait_for_run(&self, run_id: &str, n: usize) -> Vec<SpanRecord> {
        for _ in 0..300 {
            let spans = self.run(run_id);
            if spans.len() >= n {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        self.run(run_id)
    }

    /// The spans that carry `kettle.run.id = run_id`.
    pub fn run(&self, run_id: &str) -> Vec<SpanRecord> {
        self.spans()
            .into_iter()
            .filter(|s| s.attributes.get("kettle.run.id").and_then(Value::as_str) == Some(run_id))
            .collect()
    }
}

async fn handle(
    request: Request<Incoming>,
    mode: Mode,
    recorded: Arc<Mutex<Vec<Export>>>,
    gate: Arc<Gate>,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let path = request.uri().path().to_string();
    let headers: HashMap<String, String> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = request.into_body().collect().await?.to_bytes();
    if mode == Mode::Hang {
        std::future::pending::<()>().await;
    }
    if mode == Mode::Unavailable {
        gate.unavailable.fetch_add(1, Ordering::SeqCst);
        return Ok(Response::builder()
            .status(503)
            .body(Full::new(Bytes::from_static(b"unavailable")))
            .expect("response"));
    }
    gate.answering.fetch_add(1, Ordering::SeqCst);
    if gate.killing.load(Ordering::SeqCst) {
        // Dying: neither record nor answer; the connection is closed with the server.
        gate.answering.fetch_sub(1, Ordering::SeqCst);
        std::future::pending::<()>().await;
    }
    let answer = answer(body, headers, path, &recorded);
    gate.answering.fetch_sub(1, Ordering::SeqCst);
    Ok(answer)
}

fn answer(
    body: Bytes,
    headers: HashMap<String, String>,
    path: String,
    recorded: &Mutex<Vec<Export>>,
) -> Response<Full<Bytes>> {
    let content_type = headers.get("content-type").cloned().unwrap_or_default();
    let Ok(decoded) = ExportTraceServiceRequest::decode(body) else {
        return Response::builder()
            .status(400)
            .body(Full::new(Bytes::from_static(
                b"not an ExportTraceServiceRequest",
            )))
            .expect("response");
    };
    let mut service_names = Vec::new();
    let mut spans = Vec::new();
    for resource_spans in decoded.resource_spans {
        if let Some(resource) = &resource_spans.resource {
            for kv in &resource.attributes {
                if kv.key == "service.name"
                    && let Some(Value::String(s)) = kv.value.as_ref().map(any_json)
                {
                    service_names.push(s);
                }
            }
        }
        for scope in resource_spans.scope_spans {
            spans.extend(scope.spans.iter().map(record));
        }
    }
    recorded.lock().expect("lock").push(Export {
        path,
        content_type,
        headers,
        service_names,
        spans,
    });
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    Response::builder()
        .status(200)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(answer)))
        .expect("response")
}

fn record(span: &Span) -> SpanRecord {
    SpanRecord {
        trace_id: hex::encode(&span.trace_id),
        span_id: hex::encode(&span.span_id),
        parent_span_id: (!span.parent_span_id.is_empty())
            .then(|| hex::encode(&span.parent_span_id)),
        name: span.name.clone(),
        kind: match span.kind {
            1 => "internal",
            2 => "server",
            3 => "client",
            4 => "producer",
            5 => "consumer",
            _ => "unspecified",
        }
        .into(),
        start_time_unix_nano: u128::from(span.start_time_unix_nano),
        end_time_unix_nano: u128::from(span.end_time_unix_nano),
        attributes: attributes(&span.attributes),
        events: span
            .events
            .iter()
            .map(|e| kettle::telemetry::EventRecord {
                name: e.name.clone(),
                time_unix_nano: u128::from(e.time_unix_nano),
                attributes: attributes(&e.attributes),
            })
            .collect(),
        status: match &span.status {
            Some(s) if s.code == 2 => StatusRecord {
                code: "error".into(),
                message: Some(s.message.clone()),
            },
            Some(s) if s.code == 1 => StatusRecord {
                code: "ok".into(),
                message: None,
            },
            _ => StatusRecord {
                code: "unset".into(),
                message: None,
            },
        },
    }
}

fn attributes(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(any_json).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// An OTLP value as JSON, keeping its type: ints stay integers, doubles stay floats.
fn any_json(value: &AnyValue) -> Value {
    match &value.value {
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(f)) => Value::from(*f),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_json).collect())
        }
        Some(any_value::Value::KvlistValue(l)) => Value::Object(attributes(&l.values)),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex::encode(b)),
        None => Value::Null,
    }
}
