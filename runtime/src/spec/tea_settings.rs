//! TEA's `settings:` sections and `settings.llm` keys that Kettle reads its own way. Before
//! typing, the sections Kettle has no counterpart for are taken out of the tree and noted
//! (each becomes a warning naming the section and what Kettle does instead; `kettle validate
//! --strict` makes them errors), and TEA's spellings of `settings.llm` keys are rewritten to
//! Kettle's where they mean the same thing.

use super::typing::Mistake;
use serde_json::{Map, Value};

/// A TEA key Kettle accepted but does not apply: where it is, and what Kettle does instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeaNote {
    /// The path of the key (`settings.ltm`).
    pub path: String,
    pub message: String,
}

/// `settings:` sections of TEA with no counterpart in Kettle, and what Kettle does instead.
pub const TEA_SECTIONS: &[(&str, &str)] = &[
    (
        "ltm",
        "Kettle has no long-term memory store: keep what must last in the state, or in a component node granted a folder",
    ),
    (
        "memory",
        "Kettle has no memory backend: keep the conversation in the state",
    ),
    (
        "memory_infrastructure",
        "Kettle has no memory backend: keep the conversation in the state",
    ),
    (
        "llamaindex",
        "Kettle has no retrieval (RAG) actions: query your index from a component node granted `http`",
    ),
    (
        "dspy",
        "Kettle has no DSPy integration: write the prompt as an `llm.call` node, or the program as a component node",
    ),
    (
        "textgrad",
        "Kettle has no TextGrad integration: write the loop as nodes with `llm.call`",
    ),
    (
        "agents",
        "Kettle has no multi-agent actions: write each agent as an `llm.call` node with its own `system:` and `model:`",
    ),
    (
        "a2a",
        "Kettle has no agent-to-agent protocol: reach other agents from a component node granted `http`",
    ),
    (
        "execution",
        "Kettle has no `execution.*` actions: write the steps as nodes",
    ),
    (
        "graph",
        "Kettle has no graph-database actions: reach the database from a component node granted `http`",
    ),
    (
        "interview",
        "Kettle has no interactive interviews (interrupts are not supported yet): the run goes on without stopping",
    ),
    (
        "auto_trace",
        "Kettle always traces every run: one OpenTelemetry trace, configured by `settings.tracing`",
    ),
    (
        "auto_trace_llm_payloads",
        "Kettle keeps prompts and answers on `chat` spans with `settings.tracing.capture_content: true`",
    ),
    (
        "opik_llm_tracing",
        "every LLM call is a `chat` span of the run's trace already (see `settings.opik`)",
    ),
    (
        "trace_exporter",
        "use `settings.tracing.exporter` (file, otlp, console, opik, langfuse)",
    ),
    (
        "trace_file",
        "use `settings.tracing.dir` (one JSON-lines file per run)",
    ),
    (
        "progress",
        "use `kettle run --events` (one JSON line per node start and finish)",
    ),
    (
        "rate_limiters",
        "bound calls with `max_concurrency` of a provider in `settings.llm` and with `settings.budget`",
    ),
    (
        "secrets",
        "Kettle reads no secrets backend: a provider's key comes from the variable its `api_key_env` names",
    ),
    (
        "session",
        "Kettle keeps nothing between runs: pass what a run needs with `--input`",
    ),
    (
        "firestore",
        "Kettle has no Firestore backend: reach it from a component node granted `http`",
    ),
    (
        "error_handling",
        "use `retry:` and `on_error:` on the nodes",
    ),
];

/// `settings.llm` keys of TEA for a local llama.cpp model or backend choice; Kettle sends
/// every call to the configured provider (the offline mock when none is).
const LOCAL_MODEL_KEYS: &[&str] = &[
    "backend",
    "n_gpu_layers",
    "n_ctx",
    "n_threads",
    "model_path",
    "chat_format",
    "embedding",
];

/// Takes TEA's sections out of `settings` (noting each) and rewrites TEA's `settings.llm`
/// keys. Mistakes are what cannot be rewritten (a key written into the file).
pub fn rewrite(
    settings: &mut Map<String, Value>,
    notes: &mut Vec<TeaNote>,
    mistakes: &mut Vec<Mistake>,
) {
    for (section, instead) in TEA_SECTIONS {
        if settings.remove(*section).is_some() {
            notes.push(TeaNote {
                path: format!("settings.{section}"),
                message: format!("settings.{section} (TEA) is ignored: {instead}"),
            });
        }
    }
    // TEA's Opik switch: `enabled: false` turns the section off.
    if let Some(Value::Object(opik)) = settings.get_mut("opik")
        && let Some(enabled) = opik.remove("enabled")
        && enabled == Value::Bool(false)
    {
        settings.remove("opik");
    }
    if let Some(Value::Object(llm)) = settings.get_mut("llm") {
        rewrite_llm(llm, notes, mistakes);
    }
}

/// TEA's spellings in `settings.llm`: `default_model` is `model`, `default_provider` is
/// `provider`, `api_base` is `base_url`, `timeout` (seconds) is `timeout_ms`, and an
/// `api_key` of `${VAR}` is `api_key_env: VAR`.
fn rewrite_llm(
    llm: &mut Map<String, Value>,
    notes: &mut Vec<TeaNote>,
    mistakes: &mut Vec<Mistake>,
) {
    for (tea, kettle) in [
        ("default_model", "model"),
        ("default_provider", "provider"),
        ("api_base", "base_url"),
    ] {
        if let Some(value) = llm.remove(tea) {
            llm.entry(kettle).or_insert(value);
        }
    }
    if let Some(timeout) = llm.remove("timeout") {
        match timeout.as_f64() {
            Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
                llm.entry("timeout_ms")
                    .or_insert(Value::from((seconds * 1000.0).round() as u64));
            }
            _ => mistakes.push(Mistake {
                path: "settings.llm.timeout".into(),
                at_key: false,
                message: format!("settings.llm.timeout must be a number of seconds, not {timeout}"),
                hint: Some("for example `timeout: 120`, or `timeout_ms: 120000`".into()),
            }),
        }
    }
    if let Some(key) = llm.remove("api_key") {
        match key.as_str().and_then(variable_reference) {
            Some(var) => {
                llm.entry("api_key_env").or_insert(Value::String(var));
            }
            // The value is never repeated: it may be the key itself.
            None => mistakes.push(Mistake {
                path: "settings.llm.api_key".into(),
                at_key: true,
                message: "settings.llm.api_key holds a key written into the agent file; Kettle reads keys only from the environment".into(),
                hint: Some("export the key (for example OPENAI_API_KEY) and write `api_key: \"${OPENAI_API_KEY}\"` or `api_key_env: OPENAI_API_KEY`".into()),
            }),
        }
    }
    for key in LOCAL_MODEL_KEYS {
        if let Some(value) = llm.remove(*key) {
            let written = match &value {
                Value::String(s) => format!(" `{s}`"),
                _ => String::new(),
            };
            notes.push(TeaNote {
                path: format!("settings.llm.{key}"),
                message: format!(
                    "settings.llm.{key}{written} (TEA's local llama.cpp model) is ignored: Kettle runs no model in its process; calls go to the configured provider (the offline mock when none is), e.g. a local server with `provider: ollama`"
                ),
            });
        }
    }
}

/// `VAR` from exactly `${VAR}` (or `$VAR`).
fn variable_reference(text: &str) -> Option<String> {
    let text = text.trim();
    let name = text
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .or_else(|| text.strip_prefix('$'))?;
    (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .then(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rewritten(settings: Value) -> (Value, Vec<TeaNote>, Vec<Mistake>) {
        let Value::Object(mut map) = settings else {
            panic!("a mapping")
        };
        let (mut notes, mut mistakes) = (Vec::new(), Vec::new());
        rewrite(&mut map, &mut notes, &mut mistakes);
        (Value::Object(map), notes, mistakes)
    }

    #[test]
    fn tea_llm_keys_become_kettle_keys() {
        let (settings, notes, mistakes) = rewritten(json!({
            "llm": {"default_provider": "ollama", "default_model": "llama3.2", "api_base": "http://h:1/v1",
                    "timeout": 1.5, "api_key": "${MY_KEY}", "backend": "local", "n_gpu_layers": 0},
            "ltm": {"backend": "sqlite"},
            "opik": {"enabled": false},
        }));
        assert_eq!(
            settings,
            json!({"llm": {"provider": "ollama", "model": "llama3.2", "base_url": "http://h:1/v1",
                           "timeout_ms": 1500, "api_key_env": "MY_KEY"}})
        );
        let paths: Vec<&str> = notes.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "settings.ltm",
                "settings.llm.backend",
                "settings.llm.n_gpu_layers"
            ]
        );
        assert!(
            notes[0].message.contains("long-term memory"),
            "{}",
            notes[0].message
        );
        assert_eq!(mistakes, []);
    }

    #[test]
    fn a_key_written_into_the_file_is_refused_without_repeating_it() {
        let (_, _, mistakes) = rewritten(json!({"llm": {"api_key": "sk-live-1234567890abcdef"}}));
        assert_eq!(mistakes.len(), 1);
        assert!(!mistakes[0].message.contains("sk-live"));
        assert!(
            !mistakes[0]
                .hint
                .as_deref()
                .unwrap_or("")
                .contains("sk-live")
        );
    }
}
