//! The typed shape of an agent file. Unknown keys are errors, so typos never pass silently.

use super::llm_settings::ProviderSettings;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The virtual node before the first one.
pub const START: &str = "__start__";
/// The virtual node after the last one.
pub const END: &str = "__end__";

/// A whole agent file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSpec {
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub settings: Settings,
    /// Values templates read as `variables.NAME`.
    #[serde(default)]
    pub variables: Map<String, Value>,
    /// Accepted for TEA compatibility; documentation only.
    #[serde(default)]
    pub state_schema: Option<Value>,
    pub nodes: Vec<NodeSpec>,
    #[serde(default)]
    pub edges: Vec<EdgeSpec>,
}

/// `settings:`: run-wide configuration.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default)]
    pub llm: Option<LlmSettings>,
    #[serde(default)]
    pub tracing: Option<TracingSettings>,
    /// How many node executions one run may make before it is stopped.
    #[serde(default)]
    pub max_steps: Option<u32>,
}

/// `settings.llm:`: the providers LLM calls of the run go to. The flat keys describe one
/// provider (named after its type); `providers:` names any number of them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// `openai` (any OpenAI-compatible server), `azure_openai`, `ollama`, `anthropic` or `mock`.
    #[serde(default)]
    pub provider: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    #[serde(default)]
    pub max_retries: Option<u32>,
    #[serde(default)]
    pub backoff_ms: Option<u64>,
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Mock answers, given in turn.
    #[serde(default)]
    pub responses: Option<Vec<Value>>,
    /// Named providers; a call picks one with `provider:`.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderSettings>,
    /// The provider a call that names none goes to.
    #[serde(default)]
    pub default: Option<String>,
}

/// `settings.tracing:`: where the run's trace goes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSettings {
    /// `file` (default) or `none`.
    #[serde(default)]
    pub exporter: Option<String>,
    /// Folder of the `file` exporter, relative to the current directory.
    #[serde(default)]
    pub dir: Option<String>,
}

/// One entry of `nodes:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    /// A `.wasm` component, or a folder with its source, relative to the agent file.
    #[serde(default)]
    pub component: Option<String>,
    /// Handed to the component as JSON.
    #[serde(default)]
    pub config: Option<Value>,
    /// A built-in action, such as `llm.call`.
    #[serde(default)]
    pub uses: Option<String>,
    /// Parameters of the action; strings are templates.
    #[serde(default, rename = "with")]
    pub with: Option<Map<String, Value>>,
    /// The state key the action's result is stored under.
    #[serde(default)]
    pub output: Option<String>,
    /// TEA's inline code. Kettle refuses it with an explanation.
    #[serde(default)]
    pub run: Option<Value>,
    /// TEA's inline script forms, refused the same way.
    #[serde(default)]
    pub script: Option<Value>,
}

/// One entry of `edges:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    pub from: String,
    pub to: String,
}
