//! `settings.tracing`, `settings.opik` and `settings.langfuse`: where a run's trace goes and
//! what it holds, as written in the agent file, and the checks of those values.

use super::error::SpecError;
use super::load::LoadedSpec;
use serde::Deserialize;
use std::collections::BTreeMap;

/// The exporters `settings.tracing.exporter` and `--trace-exporter` may name.
pub const EXPORTERS: &[&str] = &["file", "otlp", "console", "opik", "langfuse", "none"];

/// `settings.tracing:`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TracingSettings {
    /// One exporter or a list: `file` (default), `otlp`, `console`, `opik`, `langfuse`, `none`.
    #[serde(default)]
    pub exporter: Option<ExporterList>,
    /// Folder of the `file` exporter, relative to the current directory.
    #[serde(default)]
    pub dir: Option<String>,
    /// OTLP/HTTP traces endpoint (the full URL, such as `http://localhost:4318/v1/traces`).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Headers sent with every OTLP request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Put prompts and answers on LLM spans (`gen_ai.input.messages` / `gen_ai.output.messages`).
    #[serde(default)]
    pub capture_content: Option<bool>,
    /// Fraction of runs whose trace is recorded, from 0 to 1 (default 1).
    #[serde(default)]
    pub sample_ratio: Option<f64>,
    /// `service.name` of the exported spans (default `OTEL_SERVICE_NAME`, else `kettle`).
    #[serde(default)]
    pub service_name: Option<String>,
    /// How long exit waits for spans to be delivered (default 5000).
    #[serde(default)]
    pub flush_timeout_ms: Option<u64>,
    /// Characters of the run's input and output kept on the root span (default 8192).
    #[serde(default)]
    pub max_content_chars: Option<usize>,
    /// Spans one node execution may open through the `trace` import (default 1000).
    #[serde(default)]
    pub max_spans_per_node: Option<u64>,
    /// Bytes of attributes and events one node execution may write (default 1 MiB).
    #[serde(default)]
    pub max_attribute_bytes_per_node: Option<u64>,
    /// `genai` (default), `openinference` or `both`.
    #[serde(default)]
    pub conventions: Option<TraceConventions>,
}

/// Which semantic conventions spans follow: OpenTelemetry's GenAI ones always; OpenInference's
/// added for the backends that read them (Phoenix, Arize).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceConventions {
    #[default]
    GenAi,
    OpenInference,
    Both,
}

impl TraceConventions {
    pub fn openinference(self) -> bool {
        matches!(self, Self::OpenInference | Self::Both)
    }
}

/// `exporter: file` or `exporter: [file, otlp]` (or `"file,otlp"`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct ExporterList(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for ExporterList {
    fn from(value: OneOrMany) -> Self {
        let items = match value {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        };
        Self(
            items
                .iter()
                .flat_map(|s| s.split(','))
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        )
    }
}

/// `settings.opik:` (TEA's keys): send the trace to Opik over OTLP.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpikSettings {
    /// Wins over `OPIK_PROJECT_NAME`.
    #[serde(default)]
    pub project_name: Option<String>,
    /// Wins over `OPIK_WORKSPACE`.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Opik's address (default Opik Cloud, `https://www.comet.com/opik`).
    #[serde(default)]
    pub url: Option<String>,
}

/// `settings.langfuse:`: send the trace to Langfuse over OTLP with Basic auth.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangfuseSettings {
    /// Langfuse's address (default `https://cloud.langfuse.com`).
    #[serde(default)]
    pub host: Option<String>,
    /// Environment variable holding the public key (default `LANGFUSE_PUBLIC_KEY`).
    #[serde(default)]
    pub public_key_env: Option<String>,
    /// Environment variable holding the secret key (default `LANGFUSE_SECRET_KEY`).
    #[serde(default)]
    pub secret_key_env: Option<String>,
}

/// Checks the values typing cannot: exporter names, ratios, URLs.
pub fn validate(loaded: &LoadedSpec) -> Vec<SpecError> {
    let settings = &loaded.spec.settings;
    let mut errors = Vec::new();
    if let Some(tracing) = &settings.tracing {
        if let Some(list) = &tracing.exporter {
            for (i, name) in list.0.iter().enumerate() {
                if !EXPORTERS.contains(&name.as_str()) {
                    let at = if list.0.len() == 1 {
                        "settings.tracing.exporter".to_string()
                    } else {
                        format!("settings.tracing.exporter[{i}]")
                    };
                    errors.push(loaded.error_at(
                        &at,
                        format!("unknown trace exporter `{name}`"),
                        Some(format!(
                            "use one or several of: {} (for example `exporter: [file, otlp]`)",
                            EXPORTERS.join(", ")
                        )),
                    ));
                }
            }
        }
        if let Some(ratio) = tracing.sample_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            errors.push(loaded.error_at(
                "settings.tracing.sample_ratio",
                format!("sample_ratio {ratio} is not between 0 and 1"),
                Some("1 records every run, 0.1 one run in ten".into()),
            ));
        }
        if let Some(endpoint) = &tracing.endpoint {
            check_url(loaded, "settings.tracing.endpoint", endpoint, &mut errors);
        }
    }
    if let Some(url) = settings.opik.as_ref().and_then(|o| o.url.as_ref()) {
        check_url(loaded, "settings.opik.url", url, &mut errors);
    }
    if let Some(host) = settings.langfuse.as_ref().and_then(|l| l.host.as_ref()) {
        check_url(loaded, "settings.langfuse.host", host, &mut errors);
    }
    errors
}

fn check_url(loaded: &LoadedSpec, at: &str, url: &str, errors: &mut Vec<SpecError>) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        errors.push(loaded.error_at(
            at,
            format!("`{url}` is not an http(s) URL"),
            Some("write the full address, such as `http://localhost:4318/v1/traces`".into()),
        ));
    }
}
