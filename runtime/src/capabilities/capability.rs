//! What every host import has in common (after Spin's `Factor`): configured once per run,
//! prepared once per node execution into the state its `Store` keeps, and linked once into the
//! sandbox's linker. The list of capabilities Kettle offers is in `capabilities/mod.rs`.

use super::NodeCapabilities;
use super::llm::{LlmGrant, LlmWatcher, RunBudget};
use crate::checkpoint::ExecutionTape;
use crate::llm::LlmClient;
use crate::spec::NodeLimits;
use crate::telemetry::{ContentPolicy, SpanCaps, SpanHandle};
use opentelemetry_sdk::trace::SdkTracer;
use std::sync::Arc;
use wasmtime::component::{Linker, ResourceTable};

/// What a capability reads when a run starts.
pub struct RunSetup<'a> {
    pub run_id: &'a str,
    /// The agent's LLM client.
    pub llm: &'a Arc<LlmClient>,
    /// `settings.budget`.
    pub budget: RunBudget,
    pub tracer: &'a SdkTracer,
    /// What one node execution may add to the trace.
    pub span_caps: SpanCaps,
    /// `settings.budget.max_spans`: guest-made spans the whole run may record.
    pub max_spans: u64,
    /// Whether prompts and answers go on the spans.
    pub content: ContentPolicy,
    /// The answer a resumed run gives the first node that calls `interrupt` (JSON).
    pub answer: Option<String>,
    /// Told each streamed LLM delta and each call's latency (the run's progress events).
    pub llm_watcher: Option<Arc<dyn LlmWatcher>>,
}

/// What a capability reads when one execution of a node is prepared.
pub struct NodeSetup<'a> {
    pub node: &'a str,
    /// The execution's own span (`node {name}`).
    pub span: &'a SpanHandle,
    /// The node's limits, resolved.
    pub limits: &'a NodeLimits,
    /// The node's `permissions.llm`.
    pub llm: &'a LlmGrant,
    /// The execution's LLM tape, in a durable run.
    pub tape: Option<Arc<ExecutionTape>>,
}

/// A host import.
pub trait Capability {
    /// Shared by all node executions of a run.
    type RunState: Send + Sync;
    /// Kept in one node execution's `Store`.
    type NodeState: Send;

    fn configure(run: &RunSetup<'_>) -> Self::RunState;

    fn prepare(run: &Self::RunState, node: &NodeSetup<'_>) -> Self::NodeState;

    /// Adds the import's functions to `linker`; they reach their state through [`CapabilityView`].
    fn link<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()>;
}

/// A store's data that holds the capabilities' per-node states (as `WasiView` does for WASI).
pub trait CapabilityView: Send + 'static {
    fn capabilities(&mut self) -> CapabilitiesMut<'_>;
}

/// The per-node states, and the resource table the guest's handles (spans, streams) live in.
pub struct CapabilitiesMut<'a> {
    pub states: &'a mut NodeCapabilities,
    pub table: &'a mut ResourceTable,
}

/// Declares the capabilities: the run-wide and per-node state of each, and linking them all.
macro_rules! capabilities {
    ($($field:ident: $capability:ty),* $(,)?) => {
        /// Every capability's run-wide state.
        pub struct RunCapabilities {
            $(pub $field: <$capability as Capability>::RunState,)*
        }

        /// Every capability's state for one node execution. Dropped in this order.
        pub struct NodeCapabilities {
            $(pub $field: <$capability as Capability>::NodeState,)*
        }

        impl RunCapabilities {
            pub fn configure(run: &RunSetup<'_>) -> Self {
                Self {
                    $($field: <$capability as Capability>::configure(run),)*
                }
            }

            pub fn prepare(&self, node: &NodeSetup<'_>) -> NodeCapabilities {
                NodeCapabilities {
                    $($field: <$capability as Capability>::prepare(&self.$field, node),)*
                }
            }
        }

        /// Adds every capability's import to `linker`.
        pub fn link<T: CapabilityView>(
            linker: &mut wasmtime::component::Linker<T>,
        ) -> wasmtime::Result<()> {
            $(<$capability as Capability>::link(linker)?;)*
            Ok(())
        }
    };
}

pub(crate) use capabilities;
