//! The run's LLM client: the provider chosen by `settings.llm`, with its defaults.

use super::mock::MockProvider;
use super::openai::{DEFAULT_BASE_URL, OpenAiProvider};
use super::types::{ChatRequest, ChatResponse, LlmError};
use crate::spec::LlmSettings;
use std::time::Duration;

const DEFAULT_TIMEOUT_MS: u64 = 120_000;

#[derive(Debug)]
enum Provider {
    Mock(MockProvider),
    OpenAi(OpenAiProvider),
}

/// A problem in `settings.llm` found before the run starts.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LlmConfigError(pub String);

/// Performs chat completions for one run, filling in the agent's defaults.
#[derive(Debug)]
pub struct LlmClient {
    provider: Provider,
    default_model: String,
    default_temperature: Option<f32>,
}

impl LlmClient {
    /// The deterministic offline provider.
    pub fn mock() -> Self {
        Self {
            provider: Provider::Mock(MockProvider),
            default_model: MockProvider::default_model().into(),
            default_temperature: None,
        }
    }

    /// The client `settings.llm` asks for; the mock provider when it asks for none.
    pub fn from_settings(settings: Option<&LlmSettings>) -> Result<Self, LlmConfigError> {
        let Some(settings) = settings else {
            return Ok(Self::mock());
        };
        match settings.provider.as_deref().unwrap_or("mock") {
            "mock" => Ok(Self {
                default_model: settings
                    .model
                    .clone()
                    .unwrap_or_else(|| MockProvider::default_model().into()),
                default_temperature: settings.temperature,
                provider: Provider::Mock(MockProvider),
            }),
            "openai" => {
                let api_key = api_key(settings.api_key_env.as_deref())?;
                let base_url = settings.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
                let timeout =
                    Duration::from_millis(settings.timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS));
                let provider = OpenAiProvider::new(base_url, api_key, timeout)
                    .map_err(|e| LlmConfigError(format!("settings.llm.base_url: {e}")))?;
                let default_model = settings.model.clone().ok_or_else(|| {
                    LlmConfigError("settings.llm.model is required with provider `openai` (for example `gpt-4o-mini`)".into())
                })?;
                Ok(Self {
                    provider: Provider::OpenAi(provider),
                    default_model,
                    default_temperature: settings.temperature,
                })
            }
            other => Err(LlmConfigError(format!("unknown LLM provider `{other}`"))),
        }
    }

    /// `gen_ai.provider.name` of this client.
    pub fn provider_name(&self) -> &'static str {
        match self.provider {
            Provider::Mock(_) => "mock",
            Provider::OpenAi(_) => "openai",
        }
    }

    pub fn is_mock(&self) -> bool {
        matches!(self.provider, Provider::Mock(_))
    }

    /// The model a request without one goes to.
    pub fn default_model(&self) -> &str {
        &self.default_model
    }

    /// The model `request` will be sent to.
    pub fn model_for<'a>(&'a self, request: &'a ChatRequest) -> &'a str {
        request.model.as_deref().unwrap_or(&self.default_model)
    }

    /// Host and port of the provider's server, when it has one.
    pub fn server(&self) -> Option<(String, u16)> {
        match &self.provider {
            Provider::Mock(_) => None,
            Provider::OpenAi(p) => Some(p.server()),
        }
    }

    /// Performs one completion; `traceparent` is sent along so the provider can join the trace.
    pub async fn complete(
        &self,
        mut request: ChatRequest,
        traceparent: Option<&str>,
    ) -> Result<ChatResponse, LlmError> {
        if request.messages.is_empty() {
            return Err(LlmError::InvalidRequest(
                "the request has no messages".into(),
            ));
        }
        if request.temperature.is_none() {
            request.temperature = self.default_temperature;
        }
        let model = self.model_for(&request).to_string();
        match &self.provider {
            Provider::Mock(mock) => {
                request.model = Some(model);
                mock.complete(&request)
            }
            Provider::OpenAi(openai) => openai.complete(&request, &model, traceparent).await,
        }
    }
}

fn api_key(named: Option<&str>) -> Result<Option<String>, LlmConfigError> {
    match named {
        Some(var) => match std::env::var(var) {
            Ok(key) if !key.is_empty() => Ok(Some(key)),
            _ => Err(LlmConfigError(format!(
                "settings.llm.api_key_env names `{var}`, but that environment variable is not set; export it, or remove api_key_env for a server that needs no key"
            ))),
        },
        None => Ok(std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty())),
    }
}
