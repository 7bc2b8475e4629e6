//! Backends reached through OTLP with their own paths and headers: Opik and Langfuse.

use super::config::OtlpTarget;
use super::resolve::ConfigError;
use crate::spec::{LangfuseSettings, OpikSettings};
use base64::Engine as _;
use std::collections::BTreeMap;
use std::time::Duration;

pub const OPIK_CLOUD_URL: &str = "https://www.comet.com/opik";
pub const LANGFUSE_CLOUD_HOST: &str = "https://cloud.langfuse.com";
const OPIK_DEFAULT_PROJECT: &str = "Default Project";

/// `settings.opik` → `{url}/api/v1/private/otel/v1/traces` with `projectName`,
/// `Comet-Workspace` and `Authorization` (from `OPIK_API_KEY`). YAML beats the environment.
pub fn opik(
    settings: &OpikSettings,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> OtlpTarget {
    let url = settings
        .url
        .clone()
        .or_else(|| env("OPIK_URL"))
        .unwrap_or_else(|| OPIK_CLOUD_URL.into());
    let mut headers = BTreeMap::new();
    let project = settings
        .project_name
        .clone()
        .or_else(|| env("OPIK_PROJECT_NAME"))
        .unwrap_or_else(|| OPIK_DEFAULT_PROJECT.into());
    headers.insert("projectName".into(), project);
    if let Some(workspace) = settings.workspace.clone().or_else(|| env("OPIK_WORKSPACE")) {
        headers.insert("Comet-Workspace".into(), workspace);
    }
    if let Some(key) = env("OPIK_API_KEY") {
        headers.insert("Authorization".into(), key);
    }
    OtlpTarget {
        label: "opik".into(),
        endpoint: format!(
            "{}/api/v1/private/otel/v1/traces",
            url.trim_end_matches('/')
        ),
        headers,
        timeout,
    }
}

/// `settings.langfuse` → `{host}/api/public/otel/v1/traces` with Basic auth from the two keys.
pub fn langfuse(
    settings: &LangfuseSettings,
    env: &dyn Fn(&str) -> Option<String>,
    timeout: Duration,
) -> Result<OtlpTarget, ConfigError> {
    let host = settings
        .host
        .clone()
        .or_else(|| env("LANGFUSE_HOST"))
        .unwrap_or_else(|| LANGFUSE_CLOUD_HOST.into());
    let key = |field: &str, named: &Option<String>, default: &str| {
        let var = named.clone().unwrap_or_else(|| default.to_string());
        env(&var).ok_or_else(|| {
            let whose = match named {
                Some(_) => format!("settings.langfuse.{field} names `{var}`"),
                None => format!("Langfuse reads its key from `{var}` (settings.langfuse.{field})"),
            };
            ConfigError(format!(
                "{whose}, but that environment variable is not set; export it (Langfuse → Settings → API keys)"
            ))
        })
    };
    let public = key(
        "public_key_env",
        &settings.public_key_env,
        "LANGFUSE_PUBLIC_KEY",
    )?;
    let secret = key(
        "secret_key_env",
        &settings.secret_key_env,
        "LANGFUSE_SECRET_KEY",
    )?;
    let credentials =
        base64::engine::general_purpose::STANDARD.encode(format!("{public}:{secret}"));
    let mut headers = BTreeMap::new();
    headers.insert("Authorization".into(), format!("Basic {credentials}"));
    Ok(OtlpTarget {
        label: "langfuse".into(),
        endpoint: format!("{}/api/public/otel/v1/traces", host.trim_end_matches('/')),
        headers,
        timeout,
    })
}
