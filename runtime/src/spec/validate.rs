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
            let usable = path.is_dir() && crate::sandbox::Language::detect(&path).is_some()
                || path.is_file() && path.extension().is_some_and(|e| e == "wasm");
            if !usable {
                let what = if path.exists() {
                    "is neither a .wasm file nor a node folder (with a Cargo.toml, app.py, pyproject.toml, package.json or .js file)"
                } else {
                    "does not exist"
                };
                errors.push(loaded.error_at(
                    &format!("{at}.component"),
                    format!("component of node `{name}`: {} {what}", path.display()),
                    Some("give a .wasm component or a node folder (Rust, Python or JavaScript), relative to the agent file".into()),
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
