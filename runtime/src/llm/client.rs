//! The run's LLM client: the providers `settings.llm` names, each with its defaults, and the
//! record/replay tape. Every call goes through [`LlmClient::resolve`] (which provider, which
//! model, which defaults) and then [`LlmClient::complete`] or [`LlmClient::stream`].

use super::anthropic;
use super::http::{HttpProvider, Observer, WireSetup};
use super::mock::MockProvider;
use super::ollama;
use super::openai;
use super::retry::{DEFAULT_BACKOFF_MS, DEFAULT_MAX_RETRIES, RetryPolicy};
use super::shell::{ShellProvider, provider_key};
use super::stream::ChatStream;
use super::tape::{Recorder, Replayer, Tape, TapeEntry, TapeError};
use super::types::StreamItem;
use super::types::{ChatRequest, ChatResponse, LlmError};
use crate::spec::{LlmSettings, ProviderSettings, ShellProviderSettings};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const DEFAULT_TIMEOUT_MS: u64 = 120_000;
const DEFAULT_MAX_CONCURRENCY: u32 = 32;

/// A problem in `settings.llm` found before the run starts.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LlmConfigError {
    /// Where in the agent file (`settings.llm.providers.NAME.auth`).
    pub at: String,
    pub message: String,
}

impl LlmConfigError {
    pub(super) fn new(at: String, message: String) -> Self {
        Self { at, message }
    }
}

fn config_error(at: String, message: String) -> LlmConfigError {
    LlmConfigError::new(at, message)
}

#[derive(Debug)]
enum Backend {
    Mock(MockProvider),
    Http(HttpProvider),
    Shell(ShellProvider),
}

/// One named provider with its defaults.
#[derive(Debug)]
pub struct Provider {
    pub name: String,
    /// `gen_ai.provider.name`: `openai`, `azure.ai.openai`, `anthropic`, `ollama`, `mock`.
    pub system: &'static str,
    default_model: Option<String>,
    default_temperature: Option<serde_json::Number>,
    /// Given to calls that set no `max_tokens`.
    default_max_tokens: Option<u32>,
    backend: Backend,
    /// Why the provider has no key although `api_key_env` names one (the variable is not
    /// set): a call to it fails with this, unless the run is replayed.
    missing_key: Option<String>,
}

/// A call ready to go: its provider, and its request with every default filled in.
#[derive(Debug)]
pub struct Resolved {
    pub provider: Arc<Provider>,
    pub model: String,
    pub request: ChatRequest,
    /// The request's `api_base`, applied.
    http: Option<HttpProvider>,
}

impl Resolved {
    fn http(&self) -> Option<&HttpProvider> {
        match (&self.http, &self.provider.backend) {
            (Some(h), _) | (None, Backend::Http(h)) => Some(h),
            (None, Backend::Mock(_) | Backend::Shell(_)) => None,
        }
    }

    /// Whether the call goes over HTTP (not to the mock provider).
    pub fn is_http(&self) -> bool {
        self.http().is_some()
    }

    /// Host and port of the provider's server, when it has one.
    pub fn server(&self) -> Option<(String, u16)> {
        self.http().and_then(HttpProvider::server)
    }
}

/// Performs chat completions for one run.
#[derive(Debug)]
pub struct LlmClient {
    providers: BTreeMap<String, Arc<Provider>>,
    default: String,
    secrets: Vec<String>,
    tape: OnceLock<Tape>,
    /// Keys named by `api_key_env` whose variables are not set.
    missing_keys: Vec<LlmConfigError>,
    /// The shell providers the operator granted to this run (none by default).
    shell_grants: OnceLock<BTreeSet<String>>,
}

impl LlmClient {
    /// The deterministic offline provider alone.
    pub fn mock() -> Self {
        let mut providers = BTreeMap::new();
        providers.insert("mock".to_string(), Arc::new(mock_provider("mock")));
        Self {
            providers,
            default: "mock".into(),
            secrets: Vec::new(),
            tape: OnceLock::new(),
            missing_keys: Vec::new(),
            shell_grants: OnceLock::new(),
        }
    }

    /// The `api_key_env` variables that are not set, each with where it is named. A run that
    /// makes requests needs them (`engine::load_agent` refuses the agent); a replayed run
    /// makes none, and does not.
    pub fn missing_keys(&self) -> &[LlmConfigError] {
        &self.missing_keys
    }

    /// The providers `settings.llm` describes; the mock provider when it describes none.
    pub fn from_settings(settings: Option<&LlmSettings>) -> Result<Self, LlmConfigError> {
        let Some(settings) = settings else {
            return Ok(Self::mock());
        };
        let mut client = Self::mock();
        let mut secrets = Vec::new();
        let mut missing = Vec::new();
        let flat = settings
            .provider
            .clone()
            .or_else(|| settings.providers.is_empty().then(|| "mock".to_string()));
        if let Some(kind) = &flat {
            let flat_settings = ProviderSettings {
                kind: kind.clone(),
                model: settings.model.clone(),
                base_url: settings.base_url.clone(),
                api_key_env: settings.api_key_env.clone(),
                temperature: settings.temperature.clone(),
                timeout_ms: settings.timeout_ms,
                max_retries: settings.max_retries,
                backoff_ms: settings.backoff_ms,
                max_concurrency: settings.max_concurrency,
                responses: settings.responses.clone(),
                max_tokens: settings.max_tokens,
                deployment: settings.deployment.clone(),
                ..ProviderSettings::default()
            };
            let mut keys = Keys {
                secrets: &mut secrets,
                missing: &mut missing,
            };
            let provider = build(kind, &flat_settings, settings, "settings.llm", &mut keys)?;
            client.providers.insert(kind.clone(), Arc::new(provider));
        }
        for (name, p) in &settings.providers {
            let at = format!("settings.llm.providers.{name}");
            let mut keys = Keys {
                secrets: &mut secrets,
                missing: &mut missing,
            };
            let provider = build(name, p, settings, &at, &mut keys)?;
            client.providers.insert(name.clone(), Arc::new(provider));
        }
        client.default = match (&settings.default, &flat) {
            (Some(default), _) => default.clone(),
            (None, Some(kind)) => kind.clone(),
            (None, None) if settings.providers.len() == 1 => settings
                .providers
                .keys()
                .next()
                .cloned()
                .unwrap_or_default(),
            (None, None) => {
                return Err(config_error(
                    "settings.llm.providers".to_string(),
                    format!(
                        "settings.llm names several providers ({}) but no default; add `default: NAME`",
                        settings
                            .providers
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        };
        if !client.providers.contains_key(&client.default) {
            return Err(config_error(
                "settings.llm.default".to_string(),
                format!(
                    "settings.llm.default is `{}`, which is not a provider of settings.llm.providers",
                    client.default
                ),
            ));
        }
        client.secrets = secrets;
        client.missing_keys = missing;
        Ok(client)
    }

    /// Adds the agent's shell providers (declared and built in). They run nothing until
    /// [`Self::grant_shell_providers`] grants them; the error names the provider.
    pub fn add_shell_providers(
        &mut self,
        providers: &BTreeMap<String, ShellProviderSettings>,
        secret_variables: &[String],
    ) -> Result<(), (String, String)> {
        for (name, settings) in providers {
            let shell = ShellProvider::from_settings(name, settings, secret_variables)
                .map_err(|message| (name.clone(), message))?;
            self.providers.insert(
                provider_key(name),
                Arc::new(Provider {
                    name: provider_key(name),
                    system: "shell",
                    default_model: Some(name.clone()),
                    default_temperature: None,
                    default_max_tokens: None,
                    backend: Backend::Shell(shell),
                    missing_key: None,
                }),
            );
        }
        Ok(())
    }

    /// Lets this run's calls run the programs of the shell providers `names` (the operator's
    /// `--allow-shell-provider`). A name that is not a shell provider of the agent is refused,
    /// so that a typo is not a silent no-op. Granting happens once per client.
    pub fn grant_shell_providers(&self, names: &[String]) -> Result<(), String> {
        for name in names {
            if !self.providers.contains_key(&provider_key(name)) {
                return Err(format!(
                    "--allow-shell-provider {name}: the agent has no shell provider `{name}`; it has: {}",
                    self.shell_providers()
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        self.shell_grants
            .set(names.iter().cloned().collect())
            .map_err(|_| "the shell providers of this agent were granted already".to_string())
    }

    /// The agent's shell providers and the command line each runs.
    pub fn shell_providers(&self) -> Vec<(String, String)> {
        self.providers
            .values()
            .filter_map(|p| match &p.backend {
                Backend::Shell(shell) => Some((shell.name().to_string(), shell.command_line())),
                _ => None,
            })
            .collect()
    }

    /// The call's shell provider, if the operator granted it; else why the call is denied.
    fn granted<'a>(&self, shell: &'a ShellProvider) -> Result<&'a ShellProvider, LlmError> {
        let name = shell.name();
        if self
            .shell_grants
            .get()
            .is_some_and(|granted| granted.contains(name))
        {
            return Ok(shell);
        }
        Err(LlmError::Denied(format!(
            "shell provider `{name}` would run the program `{}` on this machine, and this run was not granted it; the agent file alone cannot start a program: rerun with `kettle run --allow-shell-provider {name}` if you trust that program with the prompt",
            shell.command_line()
        )))
    }

    /// Records every call of the run to `path`.
    pub fn record_to(&self, path: &Path) -> Result<(), TapeError> {
        let recorder = Recorder::create(path, self.secrets.clone())?;
        let _ = self.tape.set(Tape::Record(Arc::new(recorder)));
        Ok(())
    }

    /// Answers every call of the run from the recording at `path`, with no network.
    pub fn replay_from(&self, path: &Path) -> Result<(), TapeError> {
        let replayer = Replayer::open(path)?;
        let _ = self.tape.set(Tape::Replay(replayer));
        Ok(())
    }

    fn default_provider(&self) -> Option<&Arc<Provider>> {
        self.providers.get(&self.default)
    }

    /// `gen_ai.provider.name` of the default provider.
    pub fn provider_name(&self) -> &'static str {
        self.default_provider().map_or("mock", |p| p.system)
    }

    pub fn is_mock(&self) -> bool {
        self.default_provider()
            .is_some_and(|p| matches!(p.backend, Backend::Mock(_)))
    }

    /// Whether calls are answered from a recording.
    pub fn is_replay(&self) -> bool {
        matches!(self.tape.get(), Some(Tape::Replay(_)))
    }

    /// The model a request without one goes to.
    pub fn default_model(&self) -> &str {
        self.default_provider()
            .and_then(|p| p.default_model.as_deref())
            .unwrap_or(MockProvider::default_model())
    }

    /// The options of an `llm.*` node's `with:` that the provider it goes to cannot take, as
    /// (key, why); templated values are checked when the call is made.
    pub fn refused_options(
        &self,
        with: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<(String, String)> {
        let name = match with.get("provider") {
            Some(serde_json::Value::String(p)) if !p.contains("{{") => p.as_str(),
            Some(_) => return Vec::new(),
            None => self.default.as_str(),
        };
        let Some(provider) = self.providers.get(name) else {
            return Vec::new();
        };
        with.iter()
            .filter_map(|(key, value)| {
                super::options::refusal(name, provider.system, key, value)
                    .map(|why| (key.clone(), why))
            })
            .collect()
    }

    /// The provider and model `request` goes to, without preparing the call.
    pub fn target(&self, request: &ChatRequest) -> Result<(Arc<Provider>, String), LlmError> {
        let name = request.provider.as_deref().unwrap_or(&self.default);
        let provider = self.providers.get(name).cloned().ok_or_else(|| {
            LlmError::InvalidRequest(format!(
                "no LLM provider is named `{name}`; settings.llm has: {}",
                self.providers
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        let model = match (&request.model, &provider.default_model) {
            // A shell provider's program picks its model; the span shows the provider's name.
            (_, Some(m)) if matches!(provider.backend, Backend::Shell(_)) => m.clone(),
            (Some(m), _) | (None, Some(m)) => m.clone(),
            (None, None) => {
                return Err(LlmError::InvalidRequest(format!(
                    "the call names no model and provider `{name}` has no default `model`"
                )));
            }
        };
        Ok((provider, model))
    }

    /// Picks the provider and fills in the defaults.
    pub fn resolve(&self, mut request: ChatRequest) -> Result<Resolved, LlmError> {
        let (provider, model) = self.target(&request)?;
        let name = provider.name.clone();
        if request.messages.is_empty() {
            return Err(LlmError::InvalidRequest(
                "the request has no messages".into(),
            ));
        }
        request.provider = Some(name);
        request.model = Some(model.clone());
        if request.temperature.is_none() {
            request.temperature = provider.default_temperature.clone();
        }
        if request.max_tokens.is_none() {
            request.max_tokens = provider.default_max_tokens;
        }
        let http = match (&request.api_base, &provider.backend) {
            (Some(base), Backend::Http(h)) => {
                let moved = h.at(base);
                moved.server().ok_or_else(|| {
                    LlmError::InvalidRequest(format!("api_base `{base}` is not a URL"))
                })?;
                Some(moved)
            }
            _ => None,
        };
        Ok(Resolved {
            provider,
            model,
            request,
            http,
        })
    }

    /// Performs one completion; `trace_headers` (W3C Trace Context) are sent along so that
    /// the provider can join the trace.
    pub async fn complete(
        &self,
        call: &Resolved,
        trace_headers: &[(String, String)],
        observer: Observer<'_>,
    ) -> Result<ChatResponse, LlmError> {
        let name = &call.provider.name;
        if let Some(Tape::Replay(replayer)) = self.tape.get() {
            return replayer.take(name, false, &call.request)?.outcome();
        }
        if let Some(missing) = &call.provider.missing_key {
            return Err(LlmError::Denied(missing.clone()));
        }
        let (outcome, http) = match (&call.provider.backend, call.http()) {
            (_, Some(provider)) => match provider.wire_call(&call.request, &call.model, false) {
                Ok(wire) => (
                    provider
                        .complete(&wire, &call.model, trace_headers, observer)
                        .await
                        .map_err(LlmError::redacted),
                    Some(wire.redacted()),
                ),
                Err(e) => (Err(e), None),
            },
            (Backend::Mock(mock), None) => (mock.complete(&call.request), None),
            (Backend::Shell(shell), None) => match self.granted(shell) {
                Ok(shell) => (shell.complete(&call.request).await, None),
                Err(denied) => return Err(denied),
            },
            (Backend::Http(_), None) => (unreachable_http(), None),
        };
        if let Some(Tape::Record(recorder)) = self.tape.get() {
            recorder.write(&TapeEntry {
                provider: name.clone(),
                stream: false,
                request: call.request.clone(),
                http,
                response: outcome.as_ref().ok().cloned(),
                deltas: Vec::new(),
                error: outcome.as_ref().err().cloned(),
            });
        }
        outcome
    }

    /// Opens a streamed completion.
    pub async fn stream(
        &self,
        call: &Resolved,
        trace_headers: &[(String, String)],
        observer: Observer<'_>,
    ) -> Result<ChatStream, LlmError> {
        let name = &call.provider.name;
        if let Some(Tape::Replay(replayer)) = self.tape.get() {
            return Ok(ChatStream::items(
                replayer.take(name, true, &call.request)?.items(),
            ));
        }
        if let Some(missing) = &call.provider.missing_key {
            return Err(LlmError::Denied(missing.clone()));
        }
        let mut entry = TapeEntry {
            provider: name.clone(),
            stream: true,
            request: call.request.clone(),
            http: None,
            response: None,
            deltas: Vec::new(),
            error: None,
        };
        let opened = match (&call.provider.backend, call.http()) {
            (_, Some(provider)) => match provider.wire_call(&call.request, &call.model, true) {
                Ok(wire) => {
                    entry.http = Some(wire.redacted());
                    provider
                        .stream(&wire, &call.model, trace_headers, observer)
                        .await
                        .map(ChatStream::http)
                        .map_err(LlmError::redacted)
                }
                Err(e) => Err(e),
            },
            (Backend::Mock(mock), None) => mock
                .stream(&call.request)
                .map(|items| ChatStream::items(items.into_iter().map(Ok).collect())),
            // A program's answer is one piece, as TEA aggregates it.
            (Backend::Shell(shell), None) => match self.granted(shell) {
                Ok(shell) => shell.complete(&call.request).await.map(|response| {
                    ChatStream::items(
                        [
                            Ok(StreamItem::Delta(response.content.clone())),
                            Ok(StreamItem::End(response)),
                        ]
                        .into(),
                    )
                }),
                Err(denied) => return Err(denied),
            },
            (Backend::Http(_), None) => unreachable_http(),
        };
        match (self.tape.get(), opened) {
            (Some(Tape::Record(recorder)), Ok(stream)) => {
                Ok(stream.recorded(recorder.clone(), entry))
            }
            (Some(Tape::Record(recorder)), Err(e)) => {
                entry.error = Some(e.clone());
                recorder.write(&entry);
                Err(e)
            }
            (_, opened) => opened,
        }
    }
}

/// `Resolved::http` always finds the HTTP provider of an HTTP backend.
fn unreachable_http<T>() -> Result<T, LlmError> {
    Err(LlmError::Provider(
        "internal: an HTTP provider without its client".into(),
    ))
}

fn mock_provider(name: &str) -> Provider {
    Provider {
        name: name.into(),
        system: "mock",
        default_model: Some(MockProvider::default_model().into()),
        default_temperature: None,
        default_max_tokens: None,
        backend: Backend::Mock(MockProvider::echo()),
        missing_key: None,
    }
}

/// One provider from its settings; the flat keys of `settings.llm` fill what it leaves out.
/// Each wire module reads the settings of its own provider types.
fn build(
    name: &str,
    p: &ProviderSettings,
    shared: &LlmSettings,
    at: &str,
    keys: &mut Keys<'_>,
) -> Result<Provider, LlmConfigError> {
    let setup = match p.kind.as_str() {
        "mock" => return mock_from_settings(name, p, shared, at),
        "openai" => openai::from_settings(p, at)?,
        "azure_openai" => openai::azure_from_settings(p, at)?,
        "ollama" => ollama::from_settings(p),
        "anthropic" => anthropic::from_settings(p),
        other => {
            return Err(config_error(
                format!("{at}.type"),
                format!(
                    "{at}: unknown LLM provider type `{other}`; use one of openai, azure_openai, ollama, anthropic, mock"
                ),
            ));
        }
    };
    http_provider(name, p, shared, at, setup, keys)
}

/// What reading the providers' keys gathers: the keys (to redact), the variables not set.
struct Keys<'a> {
    secrets: &'a mut Vec<String>,
    missing: &'a mut Vec<LlmConfigError>,
}

fn mock_from_settings(
    name: &str,
    p: &ProviderSettings,
    shared: &LlmSettings,
    at: &str,
) -> Result<Provider, LlmConfigError> {
    let mut provider = mock_provider(name);
    if let Some(model) = &p.model {
        provider.default_model = Some(model.clone());
    }
    provider.default_temperature = p.temperature.clone().or_else(|| shared.temperature.clone());
    provider.default_max_tokens = p.max_tokens.or(shared.max_tokens);
    provider.backend = Backend::Mock(MockProvider::from_settings(p, at)?);
    Ok(provider)
}

/// The settings every HTTP provider shares: key, model, retries, timeout, concurrency.
fn http_provider(
    name: &str,
    p: &ProviderSettings,
    shared: &LlmSettings,
    at: &str,
    setup: WireSetup,
    keys: &mut Keys<'_>,
) -> Result<Provider, LlmConfigError> {
    // Model, address and key belong to one provider; behaviour settings are shared.
    let (api_key, missing_key) = match api_key(p.api_key_env.as_deref(), setup.standard_key_env, at)
    {
        Ok(key) => (key, None),
        Err(missing) => {
            let message = missing.message.clone();
            keys.missing.push(missing);
            (None, Some(message))
        }
    };
    if let Some(key) = &api_key {
        crate::redact::register(key);
        keys.secrets.push(key.clone());
    }
    if p.model.is_none() && p.deployment.is_none() {
        return Err(config_error(
            format!("{at}.model"),
            format!(
                "{at}.model is required with provider type `{}` (for example `{}`)",
                p.kind, setup.example_model
            ),
        ));
    }
    let policy = RetryPolicy {
        max_retries: p
            .max_retries
            .or(shared.max_retries)
            .unwrap_or(DEFAULT_MAX_RETRIES),
        backoff: Duration::from_millis(
            p.backoff_ms
                .or(shared.backoff_ms)
                .unwrap_or(DEFAULT_BACKOFF_MS),
        ),
    };
    let timeout = Duration::from_millis(
        p.timeout_ms
            .or(shared.timeout_ms)
            .unwrap_or(DEFAULT_TIMEOUT_MS),
    );
    let concurrency = p
        .max_concurrency
        .or(shared.max_concurrency)
        .unwrap_or(DEFAULT_MAX_CONCURRENCY);
    let http = HttpProvider::new(
        setup.wire,
        setup.base_url,
        api_key,
        policy,
        timeout,
        concurrency as usize,
    )
    .map_err(|e| config_error(format!("{at}.base_url"), format!("{at}: {e}")))?;
    Ok(Provider {
        name: name.into(),
        system: setup.system,
        default_model: p.model.clone().or_else(|| p.deployment.clone()),
        default_temperature: p.temperature.clone().or_else(|| shared.temperature.clone()),
        default_max_tokens: p.max_tokens.or(shared.max_tokens),
        backend: Backend::Http(http),
        missing_key,
    })
}

/// The key from the variable the YAML names (which must be set), else from the provider's
/// standard variable (which may be unset: local servers need no key).
fn api_key(
    named: Option<&str>,
    standard: Option<&str>,
    at: &str,
) -> Result<Option<String>, LlmConfigError> {
    match named {
        Some(var) => match std::env::var(var) {
            Ok(key) if !key.is_empty() => Ok(Some(key)),
            _ => Err(config_error(
                format!("{at}.api_key_env"),
                format!(
                    "{at}.api_key_env names `{var}`, but that environment variable is not set; export it, or remove api_key_env for a server that needs no key"
                ),
            )),
        },
        None => Ok(standard
            .and_then(|var| std::env::var(var).ok())
            .filter(|k| !k.is_empty())),
    }
}
