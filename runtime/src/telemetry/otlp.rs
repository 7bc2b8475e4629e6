//! OTLP/HTTP (protobuf): spans encoded as an `ExportTraceServiceRequest`, and the client that
//! posts an encoded batch, saying whether a failure is worth retrying (the OTLP
//! specification's retryable answers: no answer, 429, 502, 503, 504; `Retry-After` honoured).

use super::config::OtlpTarget;
use super::provider::TelemetryError;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use prost::Message;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use std::str::FromStr;
use std::time::Duration;

/// Spans as the body of one OTLP/HTTP protobuf request.
pub fn encode(spans: Vec<SpanData>, resource: &Resource) -> Vec<u8> {
    let resource = ResourceAttributesWithSchema::from(resource);
    ExportTraceServiceRequest {
        resource_spans: group_spans_by_resource_and_scope(spans, &resource),
    }
    .encode_to_vec()
}

/// Why a batch was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// Worth another try: no answer, or an answer that says "later".
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// The collector refused the batch itself (bad credentials, wrong path, malformed): it
    /// stays in the spool for a later push with the right settings.
    Refused(String),
}

/// Posts encoded batches to one endpoint with its headers.
#[derive(Debug)]
pub struct OtlpClient {
    client: reqwest::blocking::Client,
    endpoint: String,
}

impl OtlpClient {
    /// The client for `target`; its credential headers are registered with the redactor.
    pub fn new(target: &OtlpTarget) -> Result<Self, TelemetryError> {
        let mut headers = HeaderMap::new();
        for (key, value) in &target.headers {
            // Exporter headers carry credentials; project and workspace names do not.
            if !super::spool::ROUTING_HEADERS
                .iter()
                .any(|r| r.eq_ignore_ascii_case(key))
            {
                crate::redact::register(value);
            }
            let name = HeaderName::from_str(key).map_err(|e| {
                TelemetryError::Config(format!("OTLP header name `{key}` is not valid: {e}"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|e| {
                TelemetryError::Config(format!(
                    "OTLP header `{key}` has a value that is not valid: {e}"
                ))
            })?;
            headers.insert(name, value);
        }
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-protobuf"),
        );
        let timeout = target.timeout;
        // The blocking client owns a runtime of its own: build it away from any async context.
        let client = std::thread::spawn(move || {
            reqwest::blocking::Client::builder()
                .timeout(timeout)
                .default_headers(headers)
                .user_agent(concat!("kettle/", env!("CARGO_PKG_VERSION")))
                .build()
        })
        .join()
        .map_err(|_| TelemetryError::Config("the OTLP HTTP client could not be created".into()))?
        .map_err(|e| TelemetryError::Config(format!("cannot create the OTLP HTTP client: {e}")))?;
        Ok(Self {
            client,
            endpoint: target.endpoint.clone(),
        })
    }

    /// Posts one encoded batch.
    pub fn send(&self, body: Vec<u8>) -> Result<(), SendError> {
        let response = self
            .client
            .post(&self.endpoint)
            .body(body)
            .send()
            .map_err(|e| SendError::Retry {
                why: crate::redact::text(&without_url(&e)).into_owned(),
                after: None,
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let why = format!("the collector answered {status}");
        if matches!(status.as_u16(), 408 | 429 | 502 | 503 | 504) || status.is_server_error() {
            Err(SendError::Retry { why, after })
        } else {
            Err(SendError::Refused(why))
        }
    }
}

/// reqwest's error with its source chain (`connection refused`), without repeating the URL.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = if e.is_timeout() {
        "no answer within the OTLP timeout".to_string()
    } else if e.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(last) = last {
        text.push_str(": ");
        text.push_str(&last);
    }
    text
}
