//! Telemetry configuration from its three sources, in order of precedence: command-line flags,
//! then the agent's `settings.tracing` / `settings.opik` / `settings.langfuse`, then the
//! standard `OTEL_*` environment variables.

use super::config::{
    ContentPolicy, DEFAULT_MAX_CONTENT_CHARS, DEFAULT_TRACE_DIR, ExporterKind, OtlpTarget,
    SpanCaps, SpoolConfig, TelemetryConfig,
};
use super::presets;
use crate::spec::{EXPORTERS, LangfuseSettings, OpikSettings, TracingSettings};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const OTLP_DEFAULT_ENDPOINT: &str = "http://localhost:4318/v1/traces";
const OTLP_DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A configuration that cannot work, said for a person.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// What the command line says (`kettle run --trace-…`).
#[derive(Debug, Clone, Default)]
pub struct TraceOverrides {
    /// `--trace-exporter`; empty when not given.
    pub exporters: Vec<String>,
    /// `--trace-endpoint`.
    pub endpoint: Option<String>,
    /// `--trace-dir`.
    pub dir: Option<PathBuf>,
    /// `--no-trace`.
    pub no_trace: bool,
}

/// What the agent file says.
#[derive(Debug, Clone, Copy, Default)]
pub struct TraceSettings<'a> {
    pub tracing: Option<&'a TracingSettings>,
    pub opik: Option<&'a OpikSettings>,
    pub langfuse: Option<&'a LangfuseSettings>,
}

/// Reads the process environment, treating empty values as unset.
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Combines flags, settings and environment (`env` reads a variable) into one configuration.
pub fn resolve(
    cli: &TraceOverrides,
    yaml: TraceSettings<'_>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TelemetryConfig, ConfigError> {
    let tracing = yaml.tracing.cloned().unwrap_or_default();
    let timeout = env("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")
        .or_else(|| env("OTEL_EXPORTER_OTLP_TIMEOUT"))
        .and_then(|ms| ms.trim().parse().ok())
        .map(Duration::from_millis)
        .unwrap_or(OTLP_DEFAULT_TIMEOUT);
    let endpoint = cli
        .endpoint
        .clone()
        .or_else(|| tracing.endpoint.clone())
        .or_else(|| env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
        .or_else(|| {
            env("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
        });

    let names = exporter_names(cli, yaml, &tracing, endpoint.is_some(), env)?;
    let mut exporters = Vec::new();
    for name in &names {
        let exporter = match name.as_str() {
            "file" => ExporterKind::File(
                cli.dir
                    .clone()
                    .or_else(|| tracing.dir.as_ref().map(PathBuf::from))
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_TRACE_DIR)),
            ),
            "console" => ExporterKind::Console,
            "otlp" => {
                let mut headers =
                    parse_headers(&env("OTEL_EXPORTER_OTLP_HEADERS").unwrap_or_default());
                headers.extend(parse_headers(
                    &env("OTEL_EXPORTER_OTLP_TRACES_HEADERS").unwrap_or_default(),
                ));
                headers.extend(tracing.headers.clone());
                ExporterKind::Otlp(OtlpTarget {
                    label: "otlp".into(),
                    endpoint: endpoint
                        .clone()
                        .unwrap_or_else(|| OTLP_DEFAULT_ENDPOINT.into()),
                    headers,
                    timeout,
                })
            }
            "opik" => ExporterKind::Otlp(presets::opik(
                yaml.opik.unwrap_or(&OpikSettings::default()),
                env,
                timeout,
            )),
            "langfuse" => ExporterKind::Otlp(presets::langfuse(
                yaml.langfuse.unwrap_or(&LangfuseSettings::default()),
                env,
                timeout,
            )?),
            other => return Err(unknown_exporter(other)),
        };
        exporters.push(exporter);
    }

    let defaults = TelemetryConfig::default();
    Ok(TelemetryConfig {
        exporters,
        service_name: tracing
            .service_name
            .clone()
            .or_else(|| env("OTEL_SERVICE_NAME"))
            .unwrap_or(defaults.service_name),
        sample_ratio: tracing.sample_ratio.unwrap_or(1.0),
        flush_timeout: tracing
            .flush_timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(defaults.flush_timeout),
        content: ContentPolicy {
            capture: tracing.capture_content.unwrap_or_else(|| {
                env("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            }),
            max_chars: tracing
                .max_content_chars
                .unwrap_or(DEFAULT_MAX_CONTENT_CHARS),
        },
        caps: SpanCaps {
            max_spans: tracing
                .max_spans_per_node
                .unwrap_or(defaults.caps.max_spans),
            max_attribute_bytes: tracing
                .max_attribute_bytes_per_node
                .unwrap_or(defaults.caps.max_attribute_bytes),
        },
        spool: SpoolConfig {
            dir: env("KETTLE_SPOOL_DIR")
                .map(PathBuf::from)
                .unwrap_or(defaults.spool.dir),
            max_bytes: env("KETTLE_SPOOL_MAX_BYTES")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(defaults.spool.max_bytes),
        },
        conventions: tracing.conventions.unwrap_or_default(),
    })
}

/// The exporters by name: the flag's list, else the file's, else the environment's verdict,
/// else `file` plus every destination that was configured (endpoint, Opik, Langfuse).
fn exporter_names(
    cli: &TraceOverrides,
    yaml: TraceSettings<'_>,
    tracing: &TracingSettings,
    has_endpoint: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    if cli.no_trace {
        return Ok(Vec::new());
    }
    let sdk_disabled = env("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let mut names: Vec<String> = if !cli.exporters.is_empty() {
        cli.exporters
            .iter()
            .flat_map(|s| s.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    } else if let Some(list) = &tracing.exporter {
        list.0.clone()
    } else if sdk_disabled {
        return Ok(Vec::new());
    } else {
        let mut names = vec!["file".to_string()];
        if has_endpoint {
            names.push("otlp".into());
        }
        if yaml.opik.is_some() {
            names.push("opik".into());
        }
        if yaml.langfuse.is_some() {
            names.push("langfuse".into());
        }
        names
    };
    if let Some(bad) = names.iter().find(|n| !EXPORTERS.contains(&n.as_str())) {
        return Err(unknown_exporter(bad));
    }
    if names.iter().any(|n| n == "none") {
        if names.len() > 1 {
            return Err(ConfigError(
                "the trace exporter `none` cannot be combined with others; pick `none` alone, or drop it".into(),
            ));
        }
        return Ok(Vec::new());
    }
    let mut seen = Vec::new();
    names.retain(|n| {
        let first = !seen.contains(n);
        seen.push(n.clone());
        first
    });
    Ok(names)
}

fn unknown_exporter(name: &str) -> ConfigError {
    ConfigError(format!(
        "unknown trace exporter `{name}`; use one or several of: {}",
        EXPORTERS.join(", ")
    ))
}

/// `OTEL_EXPORTER_OTLP_HEADERS` format: `key=value,key2=value2`, values percent-encoded.
pub fn parse_headers(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            let key = key.trim();
            (!key.is_empty()).then(|| (key.to_string(), percent_decode(value.trim())))
        })
        .collect()
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(byte) = u8::from_str_radix(hex, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn otlp(config: &TelemetryConfig) -> Vec<&OtlpTarget> {
        config
            .exporters
            .iter()
            .filter_map(|e| match e {
                ExporterKind::Otlp(t) => Some(t),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn default_is_the_file_exporter() {
        let config = resolve(
            &TraceOverrides::default(),
            TraceSettings::default(),
            &env_of(&[]),
        )
        .expect("resolves");
        assert_eq!(
            config.exporters,
            [ExporterKind::File(PathBuf::from(".kettle/traces"))]
        );
        assert_eq!(config.service_name, "kettle");
        assert!(!config.content.capture);
    }

    #[test]
    fn env_endpoint_adds_otlp_and_base_endpoints_get_the_traces_path() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318/"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=two%20words"),
            ("OTEL_SERVICE_NAME", "svc"),
        ]);
        let config =
            resolve(&TraceOverrides::default(), TraceSettings::default(), &env).expect("resolves");
        let targets = otlp(&config);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[0].endpoint, "http://collector:4318/v1/traces");
        assert_eq!(targets[0].headers["b"], "two words");
        assert_eq!(config.service_name, "svc");
        assert!(matches!(config.exporters[0], ExporterKind::File(_)));
    }

    #[test]
    fn cli_beats_yaml_beats_env() {
        let env = env_of(&[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://env/v1/traces"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=env,x-env=1"),
            ("OTEL_SERVICE_NAME", "from-env"),
        ]);
        let mut tracing = TracingSettings {
            endpoint: Some("http://yaml/v1/traces".into()),
            service_name: Some("from-yaml".into()),
            exporter: Some(crate::spec::ExporterList(vec!["otlp".into()])),
            ..TracingSettings::default()
        };
        tracing.headers.insert("x-team".into(), "yaml".into());
        let yaml = TraceSettings {
            tracing: Some(&tracing),
            ..TraceSettings::default()
        };
        let config = resolve(&TraceOverrides::default(), yaml, &env).expect("resolves");
        let target = otlp(&config)[0];
        assert_eq!(target.endpoint, "http://yaml/v1/traces");
        assert_eq!(target.headers["x-team"], "yaml");
        assert_eq!(target.headers["x-env"], "1");
        assert_eq!(config.service_name, "from-yaml");
        assert_eq!(config.exporters.len(), 1);

        let cli = TraceOverrides {
            exporters: vec!["console,otlp".into()],
            endpoint: Some("http://cli/v1/traces".into()),
            ..TraceOverrides::default()
        };
        let config = resolve(&cli, yaml, &env).expect("resolves");
        assert_eq!(config.exporters[0], ExporterKind::Console);
        assert_eq!(otlp(&config)[0].endpoint, "http://cli/v1/traces");
    }

    #[test]
    fn sdk_disabled_turns_tracing_off_unless_the_file_or_flags_say_otherwise() {
        let env = env_of(&[("OTEL_SDK_DISABLED", "true")]);
        let config =
            resolve(&TraceOverrides::default(), TraceSettings::default(), &env).expect("resolves");
        assert!(config.exporters.is_empty());
        let cli = TraceOverrides {
            exporters: vec!["file".into()],
            ..TraceOverrides::default()
        };
        let config = resolve(&cli, TraceSettings::default(), &env).expect("resolves");
        assert_eq!(config.exporters.len(), 1);
    }

    #[test]
    fn opik_preset_path_headers_and_project_precedence() {
        let env = env_of(&[
            ("OPIK_API_KEY", "key-123"),
            ("OPIK_PROJECT_NAME", "env-project"),
            ("OPIK_WORKSPACE", "env-ws"),
        ]);
        let opik = OpikSettings {
            project_name: Some("yaml-project".into()),
            workspace: None,
            url: Some("http://127.0.0.1:5173/".into()),
        };
        let yaml = TraceSettings {
            opik: Some(&opik),
            ..TraceSettings::default()
        };
        let config = resolve(&TraceOverrides::default(), yaml, &env).expect("resolves");
        let target = otlp(&config)[0];
        assert_eq!(
            target.endpoint,
            "http://127.0.0.1:5173/api/v1/private/otel/v1/traces"
        );
        assert_eq!(target.headers["projectName"], "yaml-project");
        assert_eq!(target.headers["Comet-Workspace"], "env-ws");
        assert_eq!(target.headers["Authorization"], "key-123");

        let cloud = OpikSettings::default();
        let yaml = TraceSettings {
            opik: Some(&cloud),
            ..TraceSettings::default()
        };
        let config = resolve(&TraceOverrides::default(), yaml, &env).expect("resolves");
        let target = otlp(&config)[0];
        assert_eq!(
            target.endpoint,
            "https://www.comet.com/opik/api/v1/private/otel/v1/traces"
        );
        assert_eq!(target.headers["projectName"], "env-project");
    }

    #[test]
    fn langfuse_preset_uses_basic_auth_and_says_which_key_is_missing() {
        let settings = LangfuseSettings {
            host: Some("http://127.0.0.1:3000".into()),
            public_key_env: Some("PK".into()),
            secret_key_env: None,
        };
        let yaml = TraceSettings {
            langfuse: Some(&settings),
            ..TraceSettings::default()
        };
        let env = env_of(&[("PK", "pk-lf"), ("LANGFUSE_SECRET_KEY", "sk-lf")]);
        let config = resolve(&TraceOverrides::default(), yaml, &env).expect("resolves");
        let target = otlp(&config)[0];
        assert_eq!(
            target.endpoint,
            "http://127.0.0.1:3000/api/public/otel/v1/traces"
        );
        // base64("pk-lf:sk-lf")
        assert_eq!(target.headers["Authorization"], "Basic cGstbGY6c2stbGY=");

        let error = resolve(&TraceOverrides::default(), yaml, &env_of(&[("PK", "x")]))
            .expect_err("the secret key is missing");
        assert!(error.0.contains("LANGFUSE_SECRET_KEY"), "{error}");
    }

    #[test]
    fn bad_exporter_lists_are_refused() {
        let cli = TraceOverrides {
            exporters: vec!["jaeger".into()],
            ..TraceOverrides::default()
        };
        let error = resolve(&cli, TraceSettings::default(), &env_of(&[])).expect_err("unknown");
        assert!(error.0.contains("`jaeger`"));
        let cli = TraceOverrides {
            exporters: vec!["none,file".into()],
            ..TraceOverrides::default()
        };
        assert!(resolve(&cli, TraceSettings::default(), &env_of(&[])).is_err());
    }
}
