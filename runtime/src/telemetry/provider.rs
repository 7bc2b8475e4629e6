//! The process's tracer provider and the exporters behind it.

use super::jsonl::JsonlExporter;
use super::span::kettle_tracer;
use opentelemetry::KeyValue;
use opentelemetry::trace::TraceId;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};
use std::path::PathBuf;

/// Where finished spans go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExporterKind {
    /// JSON lines, one file per run, in this folder.
    File(PathBuf),
    /// Spans are created (the run still has a trace id) but not exported.
    None,
}

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    pub exporter: ExporterKind,
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            exporter: ExporterKind::File(PathBuf::from(".kettle/traces")),
            service_name: "kettle".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot flush the trace: {0}")]
    Flush(String),
    #[error("cannot write the trace file: {0}")]
    File(#[from] std::io::Error),
}

/// Owns the tracer provider. Shared by every run of the process; each run registers the
/// destination of its trace and flushes it when it ends.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    file: Option<JsonlExporter>,
}

impl Telemetry {
    pub fn new(config: &TelemetryConfig) -> Self {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let mut builder = SdkTracerProvider::builder().with_resource(resource);
        let mut file = None;
        if let ExporterKind::File(dir) = &config.exporter {
            let exporter = JsonlExporter::new(dir.clone());
            file = Some(exporter.clone());
            builder = builder.with_span_processor(BatchSpanProcessor::builder(exporter).build());
        }
        let provider = builder.build();
        let tracer = kettle_tracer(&provider);
        Self {
            provider,
            tracer,
            file,
        }
    }

    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// Registers a run's trace; returns the file it will be written to, if any.
    pub fn register_run(&self, trace_id: TraceId, run_id: &str) -> Option<PathBuf> {
        self.file.as_ref().map(|f| f.register(trace_id, run_id))
    }

    /// Exports every finished span and closes the run's file. Blocks: call it off the
    /// async workers.
    pub fn finish_run(&self, trace_id: TraceId) -> Result<(), TelemetryError> {
        self.provider
            .force_flush()
            .map_err(|e| TelemetryError::Flush(e.to_string()))?;
        if let Some(file) = &self.file {
            file.close(trace_id)?;
        }
        Ok(())
    }

    /// Flushes and stops the exporters. Blocks.
    pub fn shutdown(&self) -> Result<(), TelemetryError> {
        self.provider
            .shutdown()
            .map_err(|e| TelemetryError::Flush(e.to_string()))
    }
}
