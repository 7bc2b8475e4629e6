//! The on-disk form of a finished span: one JSON object per line, read back by `kettle trace show`.

use opentelemetry::trace::{SpanKind, Status};
use opentelemetry::{Array, KeyValue, Value as OtelValue};
use opentelemetry_sdk::trace::SpanData;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// One finished span.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanRecord {
    pub trace_id: String,
    pub span_id: String,
    /// `None` for the root of the trace.
    pub parent_span_id: Option<String>,
    pub name: String,
    /// `internal`, `client`, `server`, `producer` or `consumer`.
    pub kind: String,
    pub start_time_unix_nano: u128,
    pub end_time_unix_nano: u128,
    pub attributes: Map<String, Value>,
    pub events: Vec<EventRecord>,
    pub status: StatusRecord,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub name: String,
    pub time_unix_nano: u128,
    pub attributes: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusRecord {
    /// `unset`, `ok` or `error`.
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl SpanRecord {
    pub fn from_span_data(span: &SpanData) -> Self {
        let parent = span.parent_span_id;
        Self {
            trace_id: span.span_context.trace_id().to_string(),
            span_id: span.span_context.span_id().to_string(),
            parent_span_id: (parent != opentelemetry::trace::SpanId::INVALID)
                .then(|| parent.to_string()),
            name: span.name.to_string(),
            kind: kind_name(&span.span_kind).into(),
            start_time_unix_nano: unix_nanos(span.start_time),
            end_time_unix_nano: unix_nanos(span.end_time),
            attributes: attributes_json(&span.attributes),
            events: span
                .events
                .iter()
                .map(|e| EventRecord {
                    name: e.name.to_string(),
                    time_unix_nano: unix_nanos(e.timestamp),
                    attributes: attributes_json(&e.attributes),
                })
                .collect(),
            status: match &span.status {
                Status::Unset => StatusRecord {
                    code: "unset".into(),
                    message: None,
                },
                Status::Ok => StatusRecord {
                    code: "ok".into(),
                    message: None,
                },
                Status::Error { description } => StatusRecord {
                    code: "error".into(),
                    message: Some(description.to_string()),
                },
            },
        }
    }

    pub fn duration_ms(&self) -> f64 {
        self.end_time_unix_nano
            .saturating_sub(self.start_time_unix_nano) as f64
            / 1e6
    }

    pub fn attribute_i64(&self, key: &str) -> Option<i64> {
        self.attributes.get(key).and_then(Value::as_i64)
    }
}

/// Reads every span of a `.jsonl` trace file.
pub fn read_trace_file(path: &Path) -> std::io::Result<Vec<SpanRecord>> {
    let text = std::fs::read_to_string(path)?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}:{}: not a span record: {e}", path.display(), i + 1),
                )
            })
        })
        .collect()
}

fn kind_name(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Internal => "internal",
        SpanKind::Client => "client",
        SpanKind::Server => "server",
        SpanKind::Producer => "producer",
        SpanKind::Consumer => "consumer",
    }
}

fn unix_nanos(time: SystemTime) -> u128 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

fn attributes_json(attributes: &[KeyValue]) -> Map<String, Value> {
    attributes
        .iter()
        .map(|kv| (kv.key.to_string(), value_json(&kv.value)))
        .collect()
}

fn value_json(value: &OtelValue) -> Value {
    match value {
        OtelValue::Bool(b) => Value::Bool(*b),
        OtelValue::I64(i) => Value::from(*i),
        OtelValue::F64(f) => Value::from(*f),
        OtelValue::String(s) => Value::String(s.to_string()),
        OtelValue::Array(Array::Bool(v)) => Value::from(v.clone()),
        OtelValue::Array(Array::I64(v)) => Value::from(v.clone()),
        OtelValue::Array(Array::F64(v)) => Value::from(v.clone()),
        OtelValue::Array(Array::String(v)) => {
            Value::from(v.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        }
        other => Value::String(other.to_string()),
    }
}
