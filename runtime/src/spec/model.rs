//! The typed shape of an agent file. Unknown keys are errors, so typos never pass silently.

use super::flow::{EdgeCondition, FanIn, Goto, NodeAction, StepSpec, When};
use super::llm_settings::LlmSettings;
use super::shell_providers::ShellProviderSettings;
use super::tea_settings::TeaNote;
pub use super::tracing_settings::{LangfuseSettings, OpikSettings, TracingSettings};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The virtual node before the first one.
pub const START: &str = "__start__";
/// The virtual node after the last one.
pub const END: &str = "__end__";

/// A whole agent file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    /// Optional, as in TEA: without it, the agent is named after its file.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// TEA's version of the agent file; documentation only.
    #[serde(default)]
    pub version: Option<Value>,
    /// TEA's compile options (`raise_exceptions`, `interrupt_before`, ...); documentation
    /// only: Kettle always raises, and has no interrupts.
    #[serde(default)]
    pub config: Option<Value>,
    /// The state a run starts from; `--input` keys replace these.
    #[serde(default)]
    pub initial_state: Option<Map<String, Value>>,
    #[serde(default)]
    pub settings: Settings,
    /// Values templates read as `variables.NAME`.
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Accepted for TEA compatibility; documentation only.
    #[serde(default)]
    pub state_schema: Option<Value>,
    #[serde(default)]
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
    /// TEA keys accepted but not applied (sections Kettle has no counterpart for); each is a
    /// warning.
    #[serde(skip)]
    pub tea_notes: Vec<TeaNote>,
}

/// `settings:`: run-wide configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub llm: Option<LlmSettings>,
    #[serde(default)]
    pub tracing: Option<TracingSettings>,
    #[serde(default)]
    pub opik: Option<OpikSettings>,
    #[serde(default)]
    pub langfuse: Option<LangfuseSettings>,
    /// How many node executions one run may make before it is stopped.
    #[serde(default)]
    pub max_steps: Option<u32>,
    /// Default limits of every component node (a node's own `limits:` beat these).
    #[serde(default)]
    pub limits: Option<LimitsSpec>,
    /// LLM use allowed to the whole run.
    #[serde(default)]
    pub budget: Option<BudgetSpec>,
    /// TEA's `settings.parallel`: how parallel branches run.
    #[serde(default)]
    pub parallel: Option<ParallelSettings>,
    /// TEA's older place for `settings.llm.shell_providers`.
    #[serde(default)]
    pub shell_providers: BTreeMap<String, ShellProviderSettings>,
    /// Durable runs: where checkpoints go (`kettle run --checkpoint` uses the default).
    #[serde(default)]
    pub checkpoint: Option<CheckpointSettings>,
    /// Nodes the run stops before (checkpointed, exit code 3) until `kettle resume`.
    #[serde(default)]
    pub interrupt_before: Vec<String>,
    /// Nodes the run stops after (checkpointed, exit code 3) until `kettle resume`.
    #[serde(default)]
    pub interrupt_after: Vec<String>,
}

impl Settings {
    /// Every shell provider a call may name: TEA's built-in ones and the declared ones.
    pub fn shell_providers(&self) -> BTreeMap<String, ShellProviderSettings> {
        super::shell_providers::shell_providers(
            &self.shell_providers,
            self.llm.as_ref().map(|l| &l.shell_providers),
        )
    }
}

/// `settings.checkpoint:`: the store of a durable run's checkpoints.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointSettings {
    /// `sqlite` (the default) or `postgres`.
    #[serde(default)]
    pub store: Option<String>,
    /// The SQLite file (default `.kettle/state.db`), or the Postgres URL (which selects
    /// Postgres by itself).
    #[serde(default)]
    pub url: Option<String>,
}

/// `settings.parallel:`. Kettle runs every branch as a future in its own process, so the
/// strategies `thread` and `process` both mean that; `max_workers` bounds the branches of one
/// fan-out that run at once.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParallelSettings {
    #[serde(default)]
    pub strategy: Option<String>,
    #[serde(default)]
    pub max_workers: Option<u32>,
}

/// `limits:` of a node, or `settings.limits`. Absent values take Kettle's defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// Linear memory of the node's instance, in MiB (default 256).
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// Wall-clock time of one execution, host calls included, in ms (default 60000).
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Deterministic instruction budget (default: none).
    #[serde(default)]
    pub fuel: Option<u64>,
    /// LLM calls per execution (default 100).
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    /// LLM tokens (input + output) per execution (default: none).
    #[serde(default)]
    pub max_llm_tokens: Option<u64>,
    /// Size of the JSON state update the node returns (default 8 MiB).
    #[serde(default)]
    pub max_output_bytes: Option<u64>,
    /// Log lines (and stdout/stderr lines) kept per execution (default 1000).
    #[serde(default)]
    pub max_log_lines: Option<u64>,
    /// Bytes of log (and stdout/stderr) lines kept per execution (default 1 MiB).
    #[serde(default)]
    pub max_log_bytes: Option<u64>,
    /// Bytes of the node's error message kept (default 16 KiB).
    #[serde(default)]
    pub max_error_bytes: Option<u64>,
}

/// `settings.budget:`: LLM use and guest-made spans allowed to the whole run.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetSpec {
    /// LLM calls of the whole run (default 1000).
    #[serde(default)]
    pub max_llm_calls: Option<u64>,
    #[serde(default)]
    pub max_llm_tokens: Option<u64>,
    /// Spans the guests may add to the run's trace, theirs and their LLM calls' (default 100000).
    #[serde(default)]
    pub max_spans: Option<u64>,
}

/// `permissions:` of a node: what its sandbox grants. Nothing by default.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionsSpec {
    /// Folders the node may open.
    #[serde(default)]
    pub fs: Vec<FsGrantSpec>,
    /// Hosts the node may send HTTP requests to: `api.example.com`, `*.example.com`,
    /// `http://localhost:8080`.
    #[serde(default)]
    pub http: Vec<String>,
    /// Names of environment variables passed through.
    #[serde(default)]
    pub env: Vec<String>,
    /// Models and providers the node may ask for (default: any).
    #[serde(default)]
    pub llm: Option<LlmGrantSpec>,
}

/// One folder grant.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FsGrantSpec {
    /// The host folder, relative to the agent file.
    pub path: String,
    #[serde(default)]
    pub access: FsAccess,
    /// Where the node sees it (default `/data`).
    #[serde(default, rename = "as")]
    pub guest_path: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FsAccess {
    #[default]
    Read,
    ReadWrite,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmGrantSpec {
    #[serde(default)]
    pub models: Vec<String>,
    #[serde(default)]
    pub providers: Vec<String>,
}

/// `retry:` of a node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    #[serde(default)]
    pub max_backoff_ms: Option<u64>,
}

with_action_keys! {
    /// One entry of `nodes:`.
    pub struct NodeSpec {
        #[serde(default)]
        pub name: String,
    } then {
        // The three below are boxed: few nodes have them, and a node's size is what
        // loading a large agent touches (2,000 nodes are megabytes of fresh pages).
        /// Limits of this node's executions.
        #[serde(default)]
        pub limits: Option<Box<LimitsSpec>>,
        /// What this node's sandbox grants.
        #[serde(default)]
        pub permissions: Option<Box<PermissionsSpec>>,
        /// Retries of retryable failures.
        #[serde(default)]
        pub retry: Option<Box<RetrySpec>>,
        /// `node`: the node's inline code gets a fresh interpreter instance per execution
        /// instead of the run's shared one (`run`, the default).
        #[serde(default)]
        pub isolation: Option<String>,
        /// Whether running the node twice is harmless, so that a crash may be retried too.
        #[serde(default)]
        pub idempotent: bool,
        /// Stop the run before this node (checkpointed, exit code 3) until `kettle resume`.
        #[serde(default)]
        pub interrupt_before: bool,
        /// Stop the run after this node (checkpointed, exit code 3) until `kettle resume`.
        #[serde(default)]
        pub interrupt_after: bool,
        /// A node to route to when this one fails; it finds the failure in `state.error`.
        #[serde(default)]
        pub on_error: Option<String>,
        /// Where to go next: a node, or `{if, to}` rules. Beats `edges:` and implicit chaining.
        #[serde(default)]
        pub goto: Option<Goto>,
        /// `true` on the node parallel branches join at; a node name on `dynamic_parallel`.
        #[serde(default)]
        pub fan_in: Option<FanIn>,
        /// Steps run in order inside this node.
        #[serde(default)]
        pub steps: Option<Vec<StepSpec>>,
        /// `while_loop`: checked before every iteration.
        #[serde(default)]
        pub condition: Option<String>,
        /// `while_loop`: required, 1 to 1000.
        #[serde(default)]
        pub max_iterations: Option<u32>,
        /// `while_loop`: the steps of one iteration.
        #[serde(default)]
        pub body: Option<Vec<StepSpec>>,
        /// `dynamic_parallel`: a template yielding the list to fan out over.
        #[serde(default)]
        pub items: Option<String>,
        #[serde(default)]
        pub item_var: Option<String>,
        #[serde(default)]
        pub index_var: Option<String>,
        #[serde(default)]
        pub max_concurrency: Option<u32>,
        #[serde(default)]
        pub fail_fast: Option<bool>,
        /// `dynamic_parallel`: the one action run per item. On other nodes, TEA-Rust's
        /// spelling of `uses:` (read as `uses:` when the node is typed).
        #[serde(default)]
        pub action: Option<NodeAction>,
    }
}

/// One entry of `edges:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    /// Required; a missing one is reported by validation, with its place.
    #[serde(default)]
    pub from: String,
    #[serde(default)]
    pub to: String,
    /// `parallel` for a fan-out edge; `normal` (the default) otherwise.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// Where the branches of a parallel edge join.
    #[serde(default)]
    pub fan_in: Option<String>,
    #[serde(default)]
    pub condition: Option<EdgeCondition>,
    #[serde(default)]
    pub when: Option<When>,
    /// TEA's older spelling of `type: parallel`.
    #[serde(default)]
    pub parallel: Option<bool>,
    /// TEA's per-edge strategy of a parallel edge: `thread` and `process` both run the branch
    /// concurrently in Kettle's process, as `settings.parallel.strategy` does.
    #[serde(default)]
    pub parallel_strategy: Option<String>,
}
