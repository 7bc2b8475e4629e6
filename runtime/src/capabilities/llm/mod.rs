//! The `llm` import: chat completions performed by the host, each one a `chat {model}` span
//! parented under the node's innermost open span, within the node's quota and the run's budget.

mod call;
mod convert;
mod host;
mod quota;
mod stream;
mod usage;

pub use call::{traced_call, traced_stream};
pub use quota::{LimitBreach, LlmGrant, LlmQuota, RunBudget};
pub use stream::{GuestStream, TracedStream};
pub use usage::LlmUsage;

use super::capability::{Capability, CapabilityView, NodeSetup, RunSetup};
use super::trace::NodeTrace;
use crate::llm::LlmClient;
use crate::telemetry::ContentPolicy;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, ResourceTable};

/// The run's LLM client, budget and usage counters, shared by its nodes.
#[derive(Debug, Clone)]
pub struct RunLlm {
    pub client: Arc<LlmClient>,
    pub usage: Arc<LlmUsage>,
    pub budget: RunBudget,
    pub content: ContentPolicy,
}

impl RunLlm {
    /// The LLM allowance of one execution of a node.
    pub fn quota(&self, node: &NodeSetup<'_>) -> LlmQuota {
        LlmQuota::new(
            node.limits.max_llm_calls,
            node.limits.max_llm_tokens,
            node.llm.models.clone(),
            node.llm.providers.clone(),
            self.budget,
        )
    }
}

/// Per-node LLM state, kept in the node's `Store`.
#[derive(Debug)]
pub struct NodeLlm {
    pub client: Arc<LlmClient>,
    pub usage: Arc<LlmUsage>,
    pub quota: LlmQuota,
    /// Whether prompts and answers go on the `chat` spans.
    pub content: ContentPolicy,
}

/// What the `llm` import sees of the store: its own state, the resource table (streams) and,
/// read-only, the node's trace.
pub struct LlmCtx<'a> {
    pub llm: &'a mut NodeLlm,
    pub trace: &'a NodeTrace,
    pub table: &'a mut ResourceTable,
}

/// The `llm` capability; also names [`LlmCtx`] for `add_to_linker`.
pub struct LlmCapability;

impl HasData for LlmCapability {
    type Data<'a> = LlmCtx<'a>;
}

impl Capability for LlmCapability {
    type RunState = RunLlm;
    type NodeState = NodeLlm;

    fn configure(run: &RunSetup<'_>) -> RunLlm {
        RunLlm {
            client: run.llm.clone(),
            usage: Arc::new(LlmUsage::default()),
            budget: run.budget,
            content: run.content,
        }
    }

    fn prepare(run: &RunLlm, node: &NodeSetup<'_>) -> NodeLlm {
        NodeLlm {
            client: run.client.clone(),
            usage: run.usage.clone(),
            quota: run.quota(node),
            content: run.content,
        }
    }

    fn link<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        super::bindings::llm::add_to_linker::<T, LlmCapability>(linker, llm_ctx::<T>)
    }
}

fn llm_ctx<T: CapabilityView>(host: &mut T) -> LlmCtx<'_> {
    let view = host.capabilities();
    LlmCtx {
        llm: &mut view.states.llm,
        trace: &view.states.trace,
        table: view.table,
    }
}
