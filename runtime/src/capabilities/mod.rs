//! Host imports, one module per WIT interface. Each is a [`Capability`]: configured once per
//! run, prepared per node execution into the state its `Store` keeps, linked once into the
//! sandbox. A node reaches the host only through these.
//!
//! Adding an import: write its module (its state, its `Capability` impl, its host functions,
//! its tests) and add one line to the list below.

pub mod bindings;
mod capability;
pub mod interrupt;
pub mod llm;
pub mod log;
#[cfg(test)]
mod test_support;
pub mod trace;

pub use capability::{CapabilitiesMut, Capability, CapabilityView, NodeSetup, RunSetup};
pub use interrupt::{Asked, InterruptCapability, NodeInterrupt, RunInterrupt};
pub use llm::{
    CallEnded, GuestStream, LimitBreach, LlmCapability, LlmCtx, LlmGrant, LlmQuota, LlmUsage,
    LlmWatcher, NodeLlm, NodeWatch, ProviderCalls, RunBudget, RunLlm, TracedStream, traced_call,
    traced_stream,
};
pub use log::{LogBudget, LogCapability, LogCtx, NodeLog, cut_to};
pub use trace::{GuestSpan, NodeTrace, RunTrace, TraceCapability, TraceCtx};

capability::capabilities! {
    trace: TraceCapability,
    llm: LlmCapability,
    log: LogCapability,
    interrupt: InterruptCapability,
}
