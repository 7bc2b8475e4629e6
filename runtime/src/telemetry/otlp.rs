//! The OTLP/HTTP (protobuf) exporter. It runs on the batch processor's own thread, so it uses
//! reqwest's blocking client; the headers Kettle resolved are set last on every request, so
//! that they win over the `OTEL_EXPORTER_OTLP_HEADERS` the exporter reads by itself.

use super::config::OtlpTarget;
use super::provider::TelemetryError;
use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig, WithHttpConfig};
use std::str::FromStr;

/// Builds the exporter for `target`.
pub fn exporter(target: &OtlpTarget) -> Result<SpanExporter, TelemetryError> {
    let mut headers = HeaderMap::new();
    for (key, value) in &target.headers {
        // Exporter headers carry credentials; Opik's project and workspace names do not.
        if !matches!(key.as_str(), "projectName" | "Comet-Workspace") {
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
    let timeout = target.timeout;
    // The blocking client owns a runtime of its own: build it away from any async context.
    let client = std::thread::spawn(move || {
        reqwest::blocking::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("kettle/", env!("CARGO_PKG_VERSION")))
            .build()
    })
    .join()
    .map_err(|_| TelemetryError::Config("the OTLP HTTP client could not be created".into()))?
    .map_err(|e| TelemetryError::Config(format!("cannot create the OTLP HTTP client: {e}")))?;
    SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(target.endpoint.clone())
        .with_timeout(timeout)
        .with_http_client(FixedHeaders { client, headers })
        .build()
        .map_err(|e| {
            TelemetryError::Config(format!(
                "cannot set up the OTLP exporter for {}: {e}",
                target.endpoint
            ))
        })
}

#[derive(Debug)]
struct FixedHeaders {
    client: reqwest::blocking::Client,
    headers: HeaderMap,
}

#[async_trait]
impl HttpClient for FixedHeaders {
    async fn send_bytes(&self, mut request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        self.client.send_bytes(request).await
    }
}
