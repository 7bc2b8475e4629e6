//! A real OTLP/HTTP receiver on 127.0.0.1: decodes every `ExportTraceServiceRequest` body as
//! protobuf, records the path and headers it came with, and hands the spans back as
//! [`SpanRecord`]s (typed attributes kept) so that the same checks run on OTLP and on files.

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
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Decode and answer 200 with an empty `ExportTraceServiceResponse`.
    Accept,
    /// Read the request, then never answer.
    Hang,
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
}

impl OtlpReceiver {
    pub fn start(mode: Mode) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let exports = Arc::new(Mutex::new(Vec::new()));
        let recorded = exports.clone();
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
                    tokio::spawn(async move {
                        let service =
                            service_fn(move |request| handle(request, mode, recorded.clone()));
                        let _ = http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        Self { addr, exports }
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
    let content_type = headers.get("content-type").cloned().unwrap_or_default();
    let Ok(decoded) = ExportTraceServiceRequest::decode(body) else {
        return Ok(Response::builder()
            .status(400)
            .body(Full::new(Bytes::from_static(
                b"not an ExportTraceServiceRequest",
            )))
            .expect("response"));
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
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/x-protobuf")
        .body(Full::new(Bytes::from(answer)))
        .expect("response"))
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
