//! The typed shape of an agent file. Unknown keys are errors, so typos never pass silently.

pub use super::tracing_settings::{LangfuseSettings, OpikSettings, TracingSettings};
use serde::Deserialize;
use serde_json::{Map, Value};

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
    #[serde(default)]
    pub opik: Option<OpikSettings>,
    #[serde(default)]
    pub langfuse: Option<LangfuseSettings>,
    /// How many node executions one run may make before it is stopped.
    #[serde(default)]
    pub max_steps: Option<u32>,
}

/// `settings.llm:`: the provider every LLM call of the run goes to.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmSettings {
    /// `openai` (any OpenAI-compatible server) or `mock`.
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
