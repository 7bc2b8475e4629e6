//! Structural checks that typing cannot express: names, node kinds, references, files.

use super::error::SpecError;
use super::load::LoadedSpec;
use super::model::{END, NodeSpec, START};
use std::collections::HashMap;

/// Built-in actions a node may name in `uses:`.
pub const ACTIONS: &[&str] = &["llm.call"];

pub fn validate(loaded: &LoadedSpec) -> Vec<SpecError> {
    let spec = &loaded.spec;
    let mut errors = Vec::new();
    if spec.nodes.is_empty() {
        errors.push(loaded.error_at(
            "nodes",
            "the agent has no nodes",
            Some("add at least one entry under `nodes:`".into()),
        ));
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (index, node) in spec.nodes.iter().enumerate() {
        let at = format!("nodes[{index}]");
        if node.name.trim().is_empty() || node.name == START || node.name == END {
            errors.push(loaded.error_at(
                &format!("{at}.name"),
                format!("`{}` cannot be a node name", node.name),
                Some(format!("{START} and {END} are reserved; pick another name")),
            ));
        }
        if let Some(first) = seen.insert(node.name.as_str(), index) {
            errors.push(loaded.error_at(
                &format!("{at}.name"),
                format!(
                    "node `{}` is defined twice (first as nodes[{first}])",
                    node.name
                ),
                Some("node names must be unique".into()),
            ));
        }
        validate_node(loaded, &at, node, &mut errors);
        validate_policy(loaded, &at, node, &mut errors);
    }
    for (index, node) in spec.nodes.iter().enumerate() {
        if let Some(handler) = &node.on_error
            && !seen.contains_key(handler.as_str())
        {
            errors.push(unknown_node(
                loaded,
                &format!("nodes[{index}].on_error"),
                handler,
                &seen,
            ));
        }
    }
    if let Some(limits) = &spec.settings.limits {
        validate_limits(loaded, "settings.limits", limits, &mut errors);
    }

    if let Some(llm) = &spec.settings.llm
        && let Some(provider) = &llm.provider
        && !["openai", "mock"].contains(&provider.as_str())
    {
        errors.push(loaded.error_at(
            "settings.llm.provider",
            format!("unknown LLM provider `{provider}`"),
            Some("use `openai` (any OpenAI-compatible server, with base_url) or `mock`".into()),
        ));
    }
    if let Some(tracing) = &spec.settings.tracing
        && let Some(exporter) = &tracing.exporter
        && !["file", "none"].contains(&exporter.as_str())
    {
        errors.push(loaded.error_at(
            "settings.tracing.exporter",
            format!("unknown trace exporter `{exporter}`"),
            Some("use `file` (JSON lines under .kettle/traces) or `none`".into()),
        ));
    }

    let mut unconditional_from: HashMap<&str, usize> = HashMap::new();
    for (index, edge) in spec.edges.iter().enumerate() {
        let at = format!("edges[{index}]");
        if edge.from == END || (edge.from != START && !seen.contains_key(edge.from.as_str())) {
            errors.push(unknown_node(
                loaded,
                &format!("{at}.from"),
                &edge.from,
                &seen,
            ));
        }
        if edge.to == START || (edge.to != END && !seen.contains_key(edge.to.as_str())) {
            errors.push(unknown_node(loaded, &format!("{at}.to"), &edge.to, &seen));
        }
        if let Some(first) = unconditional_from.insert(edge.from.as_str(), index) {
            errors.push(loaded.error_at(
                &at,
                format!(
                    "`{}` already has an edge (edges[{first}]); a node has one next node",
                    edge.from
                ),
                Some("to run several nodes after it, make them a parallel group (`type: parallel` with `fan_in:`)".into()),
            ));
        }
    }
    errors
}

fn validate_node(loaded: &LoadedSpec, at: &str, node: &NodeSpec, errors: &mut Vec<SpecError>) {
    let name = &node.name;
    if node.run.is_some() || node.script.is_some() {
        let key = if node.run.is_some() { "run" } else { "script" };
        errors.push(loaded.error_at(
            &format!("{at}.{key}"),
            format!("node `{name}` has inline code (`{key}:`), which Kettle does not run: inline code cannot be sandboxed"),
            Some("move the code into a component node (`component: path/to/node`, written in Rust, Python or JavaScript) or use a built-in action (`uses: llm.call`)".into()),
        ));
        return;
    }
    match (&node.component, &node.uses) {
        (Some(_), Some(_)) => errors.push(loaded.error_at(
            &format!("{at}.uses"),
            format!("node `{name}` has both `component:` and `uses:`"),
            Some(
                "a node is either a component or a built-in action; split it into two nodes".into(),
            ),
        )),
        (None, None) => errors.push(loaded.error_at(
            at,
            format!("node `{name}` does nothing: it has neither `component:` nor `uses:`"),
            Some("add `component: path/to/node` or `uses: llm.call`".into()),
        )),
        (Some(component), None) => {
            let path = loaded.resolve(component);
            let usable = path.is_dir() && path.join("Cargo.toml").is_file()
                || path.is_file() && path.extension().is_some_and(|e| e == "wasm");
            if !usable {
                let what = if path.exists() {
                    "is neither a .wasm file nor a folder with a Cargo.toml"
                } else {
                    "does not exist"
                };
                errors.push(loaded.error_at(
                    &format!("{at}.component"),
                    format!("component of node `{name}`: {} {what}", path.display()),
                    Some("give a .wasm component or a Rust node folder, relative to the agent file".into()),
                ));
            }
            for key in ["with", "output"] {
                let present = if key == "with" {
                    node.with.is_some()
                } else {
                    node.output.is_some()
                };
                if present {
                    errors.push(loaded.error_at(
                        &format!("{at}.{key}"),
                        format!(
                            "`{key}:` belongs to `uses:` nodes, but `{name}` is a component node"
                        ),
                        Some("pass parameters to a component with `config:`".into()),
                    ));
                }
            }
        }
        (None, Some(action)) => {
            if !ACTIONS.contains(&action.as_str()) {
                errors.push(loaded.error_at(
                    &format!("{at}.uses"),
                    format!("node `{name}` uses the unknown action `{action}`"),
                    Some(format!(
                        "available actions: {}; for anything else write a component node",
                        ACTIONS.join(", ")
                    )),
                ));
            }
            if node.config.is_some() {
                errors.push(loaded.error_at(
                    &format!("{at}.config"),
                    format!("`config:` belongs to component nodes, but `{name}` uses `{action}`"),
                    Some("pass the action's parameters with `with:`".into()),
                ));
            }
        }
    }
}

fn unknown_node(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    known: &HashMap<&str, usize>,
) -> SpecError {
    let mut names: Vec<&str> = known.keys().copied().collect();
    names.sort_unstable();
    loaded.error_at(
        at,
        format!("`{name}` is not a node of this agent"),
        Some(format!(
            "known nodes: {}, plus {START} and {END}",
            names.join(", ")
        )),
    )
}

/// Variables that hold provider credentials: never passed to a node.
const SECRET_VARIABLES: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "OPIK_API_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_PUBLIC_KEY",
];

fn validate_policy(loaded: &LoadedSpec, at: &str, node: &NodeSpec, errors: &mut Vec<SpecError>) {
    let name = &node.name;
    if let Some(limits) = &node.limits {
        validate_limits(loaded, &format!("{at}.limits"), limits, errors);
    }
    if let Some(retry) = &node.retry
        && !(1..=100).contains(&retry.max_attempts)
    {
        errors.push(loaded.error_at(
            &format!("{at}.retry.max_attempts"),
            format!(
                "node `{name}`: retry.max_attempts must be between 1 and 100, not {}",
                retry.max_attempts
            ),
            Some("max_attempts counts the first attempt too: 3 means two retries".into()),
        ));
    }
    let Some(permissions) = &node.permissions else {
        return;
    };
    if node.component.is_none() {
        errors.push(loaded.error_at(
            &format!("{at}.permissions"),
            format!("node `{name}` is not a component: `permissions:` grants nothing to it"),
            Some("remove `permissions:`; the host performs built-in actions itself".into()),
        ));
        return;
    }
    for (i, grant) in permissions.fs.iter().enumerate() {
        let path = loaded.resolve(&grant.path);
        if !path.is_dir() {
            errors.push(loaded.error_at(
                &format!("{at}.permissions.fs[{i}].path"),
                format!(
                    "node `{name}`: granted folder {} is not a folder",
                    path.display()
                ),
                Some("grant an existing folder, relative to the agent file".into()),
            ));
        }
        if let Some(guest) = &grant.guest_path
            && !guest.starts_with('/')
        {
            errors.push(loaded.error_at(
                &format!("{at}.permissions.fs[{i}].as"),
                format!("node `{name}`: `as: {guest}` must be an absolute path in the node, such as /data"),
                None,
            ));
        }
    }
    for (i, host) in permissions.http.iter().enumerate() {
        if let Err(message) = crate::sandbox::HostPattern::parse(host) {
            errors.push(loaded.error_at(
                &format!("{at}.permissions.http[{i}]"),
                format!("node `{name}`: {message}"),
                Some("grant hosts such as api.example.com, *.example.com or http://localhost:8080".into()),
            ));
        }
    }
    let api_key_env = loaded
        .spec
        .settings
        .llm
        .as_ref()
        .and_then(|l| l.api_key_env.as_deref());
    for (i, variable) in permissions.env.iter().enumerate() {
        if SECRET_VARIABLES.contains(&variable.as_str()) || Some(variable.as_str()) == api_key_env {
            errors.push(loaded.error_at(
                &format!("{at}.permissions.env[{i}]"),
                format!("node `{name}` may not read `{variable}`: provider credentials never reach a node"),
                Some("the host makes LLM calls for the node through the llm import; no key is needed".into()),
            ));
        }
    }
}

fn validate_limits(
    loaded: &LoadedSpec,
    at: &str,
    limits: &crate::spec::LimitsSpec,
    errors: &mut Vec<SpecError>,
) {
    let checks = [
        ("memory_mb", limits.memory_mb, 1, 4096),
        ("timeout_ms", limits.timeout_ms, 1, 24 * 3600 * 1000),
        ("max_output_bytes", limits.max_output_bytes, 2, 1 << 30),
    ];
    for (key, value, min, max) in checks {
        if let Some(value) = value
            && !(min..=max).contains(&value)
        {
            errors.push(loaded.error_at(
                &format!("{at}.{key}"),
                format!("{key} must be between {min} and {max}, not {value}"),
                None,
            ));
        }
    }
}
