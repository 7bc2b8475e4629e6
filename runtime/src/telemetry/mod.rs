//! The run's trace: configuration and its sources, the tracer provider and its exporters
//! (file, OTLP, console), and helpers that keep span parents explicit.

mod caps;
mod config;
mod console;
mod genai;
mod genai_messages;
mod jsonl;
mod lane;
mod local_queue;
mod otlp;
mod presets;
mod propagation;
mod provider;
mod record;
mod redacted;
mod resolve;
pub mod semconv;
mod span;
mod tree;

pub use caps::{
    NodeBudget, RunSpanBudget, SpanOwner, SpanTally, cap_value, host_owned, truncate_chars,
};
pub use config::{
    ContentPolicy, DEFAULT_FLUSH_TIMEOUT, DEFAULT_MAX_SPANS_PER_RUN, DEFAULT_TRACE_DIR,
    ExporterKind, MAX_ATTRIBUTE_VALUE_BYTES, MAX_GUEST_ATTRIBUTES_PER_SPAN, OtlpTarget, SpanCaps,
    TelemetryConfig,
};
pub use genai::{chat_request_attributes, chat_response_attributes, root_attributes, root_output};
pub use jsonl::JsonlExporter;
pub use propagation::{TraceparentError, parse_traceparent};
pub use provider::{Telemetry, TelemetryError};
pub use record::{EventRecord, SpanRecord, StatusRecord, read_trace_file};
pub use resolve::{
    ConfigError, TraceOverrides, TraceSettings, parse_headers, process_env, resolve,
};
pub use span::{RUN_ID_KEY, SpanGuard, SpanHandle};
pub use tree::render_tree;
