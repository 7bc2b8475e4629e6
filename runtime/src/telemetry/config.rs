//! The resolved telemetry configuration: which exporters, what spans hold, and the limits that
//! keep a run's trace bounded. Built by [`super::resolve`] from flags, YAML and environment.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_TRACE_DIR: &str = ".kettle/traces";
pub const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_MAX_CONTENT_CHARS: usize = 8192;
pub const DEFAULT_MAX_SPANS_PER_NODE: u64 = 1000;
pub const DEFAULT_MAX_ATTRIBUTE_BYTES_PER_NODE: u64 = 1 << 20;
/// One attribute value written by a guest is cut to this many bytes.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 4096;
/// Attributes a guest may set on one span: half the SDK's limit (128), so that the host's own,
/// set after the guest's, always fit.
pub const MAX_GUEST_ATTRIBUTES_PER_SPAN: u32 = 64;
/// Guest-made spans one run may record (`settings.budget.max_spans`).
pub const DEFAULT_MAX_SPANS_PER_RUN: u64 = 100_000;

/// Where finished spans go. A run may use several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExporterKind {
    /// JSON lines, one file per run, in this folder.
    File(PathBuf),
    /// OTLP over HTTP/protobuf.
    Otlp(OtlpTarget),
    /// The finished tree printed on stderr at the end of each run.
    Console,
}

/// One OTLP/HTTP destination: a plain collector, or a preset (Opik, Langfuse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpTarget {
    /// `otlp`, `opik` or `langfuse`: how warnings name it.
    pub label: String,
    /// The full traces URL (`…/v1/traces`).
    pub endpoint: String,
    /// Sent with every request; they win over `OTEL_EXPORTER_OTLP_HEADERS`.
    pub headers: BTreeMap<String, String>,
    /// How long one export request may take.
    pub timeout: Duration,
}

/// What LLM and root spans carry besides their metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentPolicy {
    /// Prompts and answers on `chat` spans.
    pub capture: bool,
    /// Characters of any captured text kept (the run's input and output, messages).
    pub max_chars: usize,
}

impl Default for ContentPolicy {
    fn default() -> Self {
        Self {
            capture: false,
            max_chars: DEFAULT_MAX_CONTENT_CHARS,
        }
    }
}

/// Per-node limits on what a guest can put in the trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanCaps {
    pub max_spans: u64,
    pub max_attribute_bytes: u64,
}

impl Default for SpanCaps {
    fn default() -> Self {
        Self {
            max_spans: DEFAULT_MAX_SPANS_PER_NODE,
            max_attribute_bytes: DEFAULT_MAX_ATTRIBUTE_BYTES_PER_NODE,
        }
    }
}

/// Where remote exporters keep the spans they have not delivered yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpoolConfig {
    /// `KETTLE_SPOOL_DIR`, else `.kettle/spool`; one folder per destination inside.
    pub dir: PathBuf,
    /// Bytes one destination's spool may hold (`KETTLE_SPOOL_MAX_BYTES`, default 256 MiB).
    pub max_bytes: u64,
}

impl Default for SpoolConfig {
    fn default() -> Self {
        Self {
            dir: PathBuf::from(super::spool::DEFAULT_SPOOL_DIR),
            max_bytes: super::spool::DEFAULT_SPOOL_MAX_BYTES,
        }
    }
}

pub use crate::spec::TraceConventions as Conventions;

#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Empty: spans are created (the run still has a trace id) but not exported.
    pub exporters: Vec<ExporterKind>,
    pub service_name: String,
    /// Fraction of traces recorded; a remote parent's decision wins.
    pub sample_ratio: f64,
    /// How long shutdown waits for the exporters before it reports what was dropped.
    pub flush_timeout: Duration,
    pub content: ContentPolicy,
    pub caps: SpanCaps,
    pub spool: SpoolConfig,
    pub conventions: Conventions,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            exporters: vec![ExporterKind::File(PathBuf::from(DEFAULT_TRACE_DIR))],
            service_name: "kettle".into(),
            sample_ratio: 1.0,
            flush_timeout: DEFAULT_FLUSH_TIMEOUT,
            content: ContentPolicy::default(),
            caps: SpanCaps::default(),
            spool: SpoolConfig::default(),
            conventions: Conventions::default(),
        }
    }
}

impl TelemetryConfig {
    /// A configuration with only the given exporters and every other default.
    pub fn with_exporters(exporters: Vec<ExporterKind>) -> Self {
        Self {
            exporters,
            ..Self::default()
        }
    }
}
