//! Host imports, one module per WIT interface: each owns its binding, its per-node state and
//! its configuration. A node reaches the host only through these.

pub mod llm;
pub mod llm_quota;
pub mod llm_stream;
pub mod log;
pub mod trace;

pub use llm::{LlmCapability, LlmCtx, LlmUsage, NodeLlm, traced_call, traced_stream};
pub use llm_quota::{LimitBreach, LlmQuota, RunBudget};
pub use llm_stream::{GuestStream, TracedStream};
pub use log::{LogBudget, LogCapability, LogCtx};
pub use trace::{GuestSpan, NodeTrace, TraceCapability, TraceCtx};
