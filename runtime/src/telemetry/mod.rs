//! The run's trace: tracer provider, exporters, and helpers that keep span parents explicit.

mod jsonl;
mod provider;
mod record;
mod span;
mod tree;

pub use jsonl::JsonlExporter;
pub use provider::{ExporterKind, Telemetry, TelemetryConfig, TelemetryError};
pub use record::{SpanRecord, StatusRecord, read_trace_file};
pub use span::{SpanGuard, SpanHandle};
pub use tree::render_tree;
