//! The process's tracer provider: one lane per exporter, per-run registration and flush of
//! the local exporters, a bounded shutdown that says what
//! it could not deliver, and what became of each run's spans at each remote destination.

use super::config::{ContentPolicy, Conventions, ExporterKind, SpanCaps, TelemetryConfig};
use super::console::ConsoleExporter;
use super::delivery::{RunDelivery, SpoolLane};
use super::jsonl::JsonlExporter;
use super::lane::Lane;
use super::otlp;
use super::record::SpanRecord;
use super::semconv::{INPUT_MIME_TYPE, INPUT_VALUE, OUTPUT_MIME_TYPE, OUTPUT_VALUE};
use super::span::{SpanHandle, kettle_tracer};
use super::spool::Spool;
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use serde_json::{Map, Value};
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

/// What became of one run's spans at one remote destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `otlp at http://…`.
    pub destination: String,
    pub spans: RunDelivery,
    /// The folder where the spans not delivered wait.
    pub spool: PathBuf,
    /// The collector's last error, if any.
    pub last_error: Option<String>,
}

/// Owns the tracer provider. Shared by every run of the process; each run registers the
/// destination of its trace and flushes the local exporters when it ends. Remote exporters
/// spool and deliver in the background and are only waited for at shutdown, so a slow or
/// dead collector never slows a run.
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
    conventions: Conventions,
    flush_timeout: Duration,
}

impl Telemetry {
    pub fn new(config: &TelemetryConfig) -> Result<Self, TelemetryError> {
        let resource = Resource::builder()
            .with_service_name(config.service_name.clone())
            .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
            .build();
        let sampler = sampler(config);
        let mut lanes = Vec::new();
        let mut file = None;
        let mut console = None;
        let mut remote = Vec::new();
        for exporter in &config.exporters {
            match exporter {
                ExporterKind::File(dir) => {
                    let exporter = JsonlExporter::new(dir.clone());
                    file = Some(exporter.clone());
                    lanes.push(Lane::local(
                        format!("the trace folder {}", dir.display()),
                        exporter,
                    )?);
                }
                ExporterKind::Console => {
                    let exporter = ConsoleExporter::default();
                    console = Some(exporter.clone());
                    lanes.push(Lane::local("the console".into(), exporter)?);
                    remote.push("the console".into());
                }
                ExporterKind::Otlp(target) => {
                    let client = otlp::OtlpClient::new(target)?;
                    let spool = Spool::open(&config.spool.dir, target, config.spool.max_bytes)
                        .map_err(|e| {
                            TelemetryError::Config(format!(
                                "{e}; set KETTLE_SPOOL_DIR to a folder Kettle can write"
                            ))
                        })?;
                    let name = format!("{} at {}", target.label, target.endpoint);
                    // The spans are encoded with the provider's resource when spooled.
                    let lane = SpoolLane::start(&name, spool, client, resource.clone())?;
                    lanes.push(Lane::spooled(name, lane));
                }
            }
        }
        let mut builder = SdkTracerProvider::builder()
            .with_resource(resource)
            .with_sampler(sampler);
        let lanes: Vec<Lane> = lanes
            .into_iter()
            .map(|lane| lane.with_conventions(config.conventions))
            .collect();
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
            conventions: config.conventions,
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

    pub fn conventions(&self) -> Conventions {
        self.conventions
    }

    /// Puts a node's input state (`input.value`) on its span: OpenInference conventions with
    /// content capture only, capped like content.
    pub fn node_input(&self, span: &SpanHandle, state: &Map<String, Value>) {
        self.node_value(span, INPUT_VALUE, INPUT_MIME_TYPE, state);
    }

    /// Puts a node's state update (`output.value`) on its span, as [`Telemetry::node_input`].
    pub fn node_output(&self, span: &SpanHandle, update: &Map<String, Value>) {
        self.node_value(span, OUTPUT_VALUE, OUTPUT_MIME_TYPE, update);
    }

    fn node_value(
        &self,
        span: &SpanHandle,
        key: &'static str,
        mime: &'static str,
        value: &Map<String, Value>,
    ) {
        if !(self.content.capture && self.conventions.openinference() && span.is_recording()) {
            return;
        }
        span.set_attribute(KeyValue::new(
            key,
            super::json_chars(value, self.content.max_chars),
        ));
        span.set_attribute(KeyValue::new(mime, "application/json"));
    }

    /// The local exporters other than the file, for a person: `the console`. Remote ones say
    /// what they delivered through [`Telemetry::delivery`].
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

    /// What became of run `run_id`'s spans at each remote destination so far; final after
    /// [`Telemetry::shutdown`].
    pub fn delivery(&self, run_id: &str) -> Vec<Delivery> {
        self.lanes
            .iter()
            .filter_map(|lane| {
                let (spans, spool) = lane.delivery(run_id)?;
                Some(Delivery {
                    destination: lane.name.clone(),
                    spans,
                    spool,
                    last_error: lane.delivery_error(),
                })
            })
            .collect()
    }

    /// Flushes and stops every exporter, waiting at most the flush timeout for all of them
    /// together (remote exporters deliver from their spool until then; what is left stays
    /// there). Returns one warning per local exporter that did not get every span. Blocks.
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
            if !lane.per_run {
                continue;
            }
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

/// Spans are recorded as `sample_ratio` and the caller's sampling say, unless no exporter
/// would receive them (`--no-trace`): then none is, and a run pays nothing for its spans but
/// their ids, which it still has and propagates (marked not sampled).
fn sampler(config: &TelemetryConfig) -> Sampler {
    if config.exporters.is_empty() {
        Sampler::AlwaysOff
    } else if config.sample_ratio >= 1.0 {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    } else {
        Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sample_ratio)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::SpanHandle;
    use opentelemetry::trace::TraceId;

    #[test]
    fn with_no_exporter_spans_are_not_recorded_but_keep_their_ids() {
        let telemetry =
            Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry");
        let root = SpanHandle::root(telemetry.tracer(), "run".into(), "r1", Vec::new(), None);
        assert!(!root.is_recording());
        assert_ne!(root.trace_id(), TraceId::INVALID);
        // Its children are not recorded either, and have ids of their own in its trace.
        let child = root.child(
            telemetry.tracer(),
            "node a".into(),
            opentelemetry::trace::SpanKind::Internal,
            vec![opentelemetry::KeyValue::new("kettle.node.name", "a")],
        );
        assert!(!child.is_recording());
        assert_eq!(child.trace_id(), root.trace_id());
        assert_ne!(child.span_id(), root.span_id());
        assert_eq!(child.run_id(), "r1");
        assert!(
            child
                .trace_headers()
                .iter()
                .any(|(_, v)| v.contains(&child.span_id().to_string()))
        );
        let traces = tempfile::tempdir().expect("temp dir");
        let file =
            TelemetryConfig::with_exporters(vec![ExporterKind::File(traces.path().to_path_buf())]);
        let telemetry = Telemetry::new(&file).expect("telemetry");
        let root = SpanHandle::root(telemetry.tracer(), "run".into(), "r1", Vec::new(), None);
        assert!(root.is_recording());
    }
}
