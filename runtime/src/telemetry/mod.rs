//! The run's trace: configuration and its sources, the tracer provider and its exporters
//! (file, console, and OTLP delivered from a spool), and helpers that keep span parents explicit.

mod caps;
mod config;
mod console;
mod delivery;
mod genai;
mod genai_messages;
mod jsonl;
mod lane;
mod local_queue;
mod openinference;
mod otlp;
mod presets;
mod propagation;
mod provider;
mod push;
mod record;
mod redacted;
mod resolve;
pub mod semconv;
mod span;
mod spool;
mod tree;

pub use caps::{
    NodeBudget, RunSpanBudget, SpanOwner, SpanTally, cap_value, host_owned, json_chars,
    truncate_chars,
};
pub use config::{
    ContentPolicy, Conventions, DEFAULT_FLUSH_TIMEOUT, DEFAULT_MAX_SPANS_PER_RUN,
    DEFAULT_TRACE_DIR, ExporterKind, MAX_ATTRIBUTE_VALUE_BYTES, MAX_GUEST_ATTRIBUTES_PER_SPAN,
    OtlpTarget, SpanCaps, SpoolConfig, TelemetryConfig,
};
pub use delivery::RunDelivery;
pub use genai::{
    chat_request_attributes, chat_response_attributes, root_attributes, root_input, root_output,
};
pub use jsonl::JsonlExporter;
pub use propagation::{TraceparentError, parse_traceparent};
pub use provider::{Delivery, Telemetry, TelemetryError};
pub use push::{PushReport, push};
pub use record::{EventRecord, SpanRecord, StatusRecord, read_trace_file};
pub use resolve::{
    ConfigError, TraceOverrides, TraceSettings, parse_headers, process_env, resolve,
};
pub use span::{RUN_ID_KEY, SpanGuard, SpanHandle};
pub use spool::{DEFAULT_SPOOL_DIR, DEFAULT_SPOOL_MAX_BYTES};
pub use tree::render_tree;
