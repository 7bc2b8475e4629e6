//! `settings.llm:`: the LLM providers of the run. The flat keys of `settings.llm` describe one
//! provider (named after its type) with the same keys as one of `providers:`, so both shapes
//! are declared from one list of those keys.

use super::shell_providers::ShellProviderSettings;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Provider types `type:` (or the flat form's `provider:`) accepts.
pub const PROVIDER_TYPES: &[&str] = &["openai", "azure_openai", "ollama", "anthropic", "mock"];

/// Declares a provider-describing struct: its own leading keys, the keys every provider has,
/// then its own trailing keys. A macro and not `#[serde(flatten)]`, which would lose
/// `deny_unknown_fields` and with it the located unknown-key errors.
macro_rules! with_provider_keys {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($head:tt)* } then { $($tail:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($head)*
            /// The model a call that names none goes to (for Azure, the deployment's model name).
            #[serde(default)]
            pub model: Option<String>,
            /// API root: `https://api.openai.com/v1`, `https://NAME.openai.azure.com`,
            /// `http://localhost:11434`, `https://api.anthropic.com`.
            #[serde(default)]
            pub base_url: Option<String>,
            /// Name of the environment variable holding the API key (never the key itself).
            #[serde(default)]
            pub api_key_env: Option<String>,
            /// Kept as written and sent as written (`0.2`, never `0.20000000298023224`).
            #[serde(default)]
            pub temperature: Option<serde_json::Number>,
            /// Per attempt: the time to the answer's headers, and between two chunks of a stream.
            #[serde(default)]
            pub timeout_ms: Option<u64>,
            /// Retries after the first attempt on 408, 409, 429, 5xx, timeouts and connection errors.
            #[serde(default)]
            pub max_retries: Option<u32>,
            /// First backoff; doubled on every retry, with jitter, unless the server sends `Retry-After`.
            #[serde(default)]
            pub backoff_ms: Option<u64>,
            /// Calls in flight at once to this provider; more wait their turn.
            #[serde(default)]
            pub max_concurrency: Option<u32>,
            /// Mock: answers given in turn (a text, or `{content, tool_calls, finish_reason}`).
            #[serde(default)]
            pub responses: Option<Vec<Value>>,
            $($tail)*
        }
    };
}

with_provider_keys! {
    /// `settings.llm:`: the flat keys describe one provider (named after its type);
    /// `providers:` names any number of them.
    pub struct LlmSettings {
        /// `openai` (any OpenAI-compatible server), `azure_openai`, `ollama`, `anthropic` or `mock`.
        #[serde(default)]
        pub provider: Option<String>,
    } then {
        /// Named providers; a call picks one with `provider:`.
        #[serde(default)]
        pub providers: BTreeMap<String, ProviderSettings>,
        /// The provider a call that names none goes to.
        #[serde(default)]
        pub default: Option<String>,
        /// Calls that give no `max_tokens` get this one.
        #[serde(default)]
        pub max_tokens: Option<u32>,
        /// Azure: the deployment calls go to (default: the model name).
        #[serde(default)]
        pub deployment: Option<String>,
        /// TEA's local programs answering calls; run only when the operator grants them.
        #[serde(default)]
        pub shell_providers: BTreeMap<String, ShellProviderSettings>,
    }
}

with_provider_keys! {
    /// `settings.llm.providers.NAME:`: one named provider.
    pub struct ProviderSettings {
        /// One of [`PROVIDER_TYPES`].
        #[serde(rename = "type")]
        pub kind: String,
    } then {
        /// Azure: the deployment calls go to (default: the model name).
        #[serde(default)]
        pub deployment: Option<String>,
        /// Azure: the `api-version` query parameter.
        #[serde(default)]
        pub api_version: Option<String>,
        /// Azure: `api_key` (the `api-key` header, default) or `bearer` (an Entra ID token).
        #[serde(default)]
        pub auth: Option<String>,
        /// Anthropic: the `anthropic-version` header.
        #[serde(default)]
        pub anthropic_version: Option<String>,
        /// Calls that give no `max_tokens` get this one (Anthropic requires one).
        #[serde(default)]
        pub max_tokens: Option<u32>,
        /// OpenAI: send the limit as `max_completion_tokens` (reasoning models) instead of `max_tokens`.
        #[serde(default)]
        pub max_tokens_field: Option<String>,
        /// Mock: `echo` (default) answers with the last user message.
        #[serde(default)]
        pub rule: Option<String>,
    }
}
