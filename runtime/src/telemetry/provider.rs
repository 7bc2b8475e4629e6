//! The process's tracer provider: one batch processor per exporter ("lane"), per-run
//! registration and flush of the local exporters, and a bounded shutdown that says what it
//! could not deliver.

use super::config::{ContentPolicy, ExporterKind, SpanCaps, TelemetryConfig};
use super::console::ConsoleExporter;
use super::jsonl::JsonlExporter;
use super::lane::Lane;
use super::otlp;
use super::record::SpanRecord;
use super::span::kettle_tracer;
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider, SpanExporter as _};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("cannot flush the trace: {0}")]
    Flush(String),
    #[error("cannot write the trace file: {0}")]
    File(#[from] std::io::Error),
    #[error("{0}")]
    Config(String),
    #[error(
        "the trace of run {run} is incomplete: {spans} of its spans could not be written to {destination} ({why})"
    )]
    Incomplete {
        run: String,
        spans: u64,
        destination: String,
        why: String,
    },
}

/// Owns the tracer provider. Shared by every run of the process; each run registers the
/// destination of its trace and flushes the local exporters when it ends. Remote exporters
/// (OTLP) are only waited for at shutdown, so a slow or dead collector never slows a run.
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    lanes: Vec<Lane>,
    file: Option<JsonlExporter>,
    console: Option<ConsoleExporter>,
    /// Names of the exporters other than the file.
    remote: Vec<String>,
    content: ContentPolicy,
    caps: SpanCaps,
    flush_timeout: Duration,
}

impl Telemetry {
    pub fn new(config: &TelemetryConfig) -> Result<Self, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let sampler = if config.sample_ratio >= 1.0 {
            Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
        } else {
            Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)))
        };
        let mut lanes = Vec::new();
        let mut file = None;
        let mut console = None;
        let mut remote = Vec::new();
        for exporter in &config.exporters {
            match exporter {
                ExporterKind::File(dir) => {
                    let exporter = JsonlExporter::new(dir.clone());
                    file = Some(exporter.clone());
                    lanes.push(Lane::new(
                        format!("the trace folder {}", dir.display()),
                        true,
                        exporter,
                    )?);
                }
                ExporterKind::Console => {
                    let exporter = ConsoleExporter::default();
                    console = Some(exporter.clone());
                    lanes.push(Lane::new("the console".into(), true, exporter)?);
                    remote.push("the console".into());
                }
                ExporterKind::Otlp(target) => {
                    let mut exporter = otlp::exporter(target)?;
                    // Set here: the lane does not forward the provider's resource.
                    exporter.set_resource(&resource);
                    let name = format!("{} at {}", target.label, target.endpoint);
                    remote.push(name.clone());
                    lanes.push(Lane::new(name, false, exporter)?);
                }
            }
        }
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(sampler);
        for lane in &lanes {
            builder = builder.with_span_processor(lane.clone());
        }
        let provider = builder.build();
        let tracer = kettle_tracer(&provider);
        Ok(Self {
            provider,
            tracer,
            lanes,
            file,
            console,
            remote,
            content: config.content,
            caps: config.caps,
            flush_timeout: config.flush_timeout,
        })
    }

    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    pub fn content(&self) -> ContentPolicy {
        self.content
    }

    pub fn caps(&self) -> SpanCaps {
        self.caps
    }

    /// The exporters other than the file, for a person: `otlp at http://…`, `the console`.
    pub fn remote_destinations(&self) -> Vec<String> {
        self.remote.clone()
    }

    /// Registers a run; returns the file its trace will be written to, if any.
    pub fn register_run(&self, run_id: &str) -> Option<PathBuf> {
        if let Some(console) = &self.console {
            console.register(run_id);
        }
        self.file.as_ref().map(|f| f.register(run_id))
    }

    /// Exports the finished spans to the local exporters, closes the run's file and prints
    /// its tree with the console exporter. Fails when a local exporter did not get every span
    /// of the run. Blocks: call it off the async workers.
    pub fn finish_run(&self, run_id: &str) -> Result<(), TelemetryError> {
        let mut flush_error = None;
        for lane in self.lanes.iter().filter(|l| l.per_run) {
            if let Err(e) = lane.flush(self.flush_timeout) {
                flush_error = Some(TelemetryError::Flush(format!(
                    "{}: {e} (settings.tracing.flush_timeout_ms)",
                    lane.name
                )));
            }
            if let Some(loss) = lane.take_loss(run_id) {
                flush_error = Some(TelemetryError::Incomplete {
                    run: run_id.to_string(),
                    spans: loss.spans,
                    destination: lane.name.clone(),
                    why: loss.why,
                });
            }
        }
        if let Some(console) = &self.console {
            let spans: Vec<SpanRecord> = console.take(run_id);
            if !spans.is_empty() {
                eprint!("{}", super::render_tree(&spans));
            }
        }
        if let Some(file) = &self.file {
            file.close(run_id)?;
        }
        flush_error.map_or(Ok(()), Err)
    }

    /// Flushes and stops every exporter, waiting at most the flush timeout for all of them
    /// together. Returns one warning per exporter that did not get every span. Blocks.
    pub fn shutdown(&self) -> Vec<String> {
        let timeout = self.flush_timeout;
        let outcomes: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .lanes
                .iter()
                .map(|lane| scope.spawn(move || lane.stop(timeout)))
                .collect();
            handles.into_iter().map(|h| h.join()).collect()
        });
        let _ = self.provider.shutdown_with_timeout(timeout);
        let mut warnings = Vec::new();
        for (lane, outcome) in self.lanes.iter().zip(outcomes) {
            let dropped = lane.counts.not_delivered();
            if dropped == 0 {
                continue;
            }
            let ended = lane.counts.ended.load(std::sync::atomic::Ordering::Relaxed);
            let why = match outcome {
                Ok(Err(opentelemetry_sdk::error::OTelSdkError::Timeout(t))) => format!(
                    "it did not finish within the flush timeout ({:.1} s)",
                    t.as_secs_f64()
                ),
                _ => match lane.counts.last_error() {
                    Some(e) => format!("last error: {e}"),
                    None => "its queue was full".into(),
                },
            };
            warnings.push(format!(
                "{dropped} of {ended} spans were dropped: not delivered to {} ({why})",
                lane.name
            ));
        }
        warnings
    }
}
