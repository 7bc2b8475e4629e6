//! From a validated spec to a [`Graph`]: node kinds resolved, templates checked, successors
//! fixed by edges or, where a node has none, by TEA's implicit chaining.

use super::template;
use super::{ComponentSource, Graph, GraphNode, Next, NodeKind};
use crate::spec::{END, LoadedSpec, START, SpecError, SpecErrors};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Parameters `uses: llm.call` accepts in `with:`.
pub const LLM_CALL_PARAMS: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "system",
    "temperature",
    "max_tokens",
    "stop",
];

pub fn compile(loaded: &LoadedSpec) -> Result<Graph, SpecErrors> {
    let spec = &loaded.spec;
    let index: HashMap<&str, usize> = spec
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let target = |name: &str| {
        if name == END {
            Next::End
        } else {
            index.get(name).map_or(Next::End, |i| Next::Node(*i))
        }
    };
    let mut errors = Vec::new();

    let mut nodes = Vec::with_capacity(spec.nodes.len());
    for (i, node) in spec.nodes.iter().enumerate() {
        let kind = if let Some(component) = &node.component {
            let path = loaded.resolve(component);
            let source = if path.is_dir() {
                ComponentSource::Folder(path)
            } else {
                ComponentSource::Wasm(path)
            };
            NodeKind::Component {
                source,
                config: node
                    .config
                    .clone()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            }
        } else {
            let with = node.with.clone().unwrap_or_default();
            check_llm_call(loaded, i, &with, &mut errors);
            NodeKind::LlmCall {
                with,
                output: node.output.clone().unwrap_or_else(|| node.name.clone()),
            }
        };
        nodes.push(GraphNode {
            name: node.name.clone(),
            kind,
        });
    }

    let mut successors: Vec<Next> = (0..nodes.len())
        .map(|i| {
            if i + 1 < nodes.len() {
                Next::Node(i + 1)
            } else {
                Next::End
            }
        })
        .collect();
    let mut entry = if nodes.is_empty() {
        Next::End
    } else {
        Next::Node(0)
    };
    for edge in &spec.edges {
        let to = target(&edge.to);
        if edge.from == START {
            entry = to;
        } else if let Some(&from) = index.get(edge.from.as_str()) {
            successors[from] = to;
        }
    }

    if errors.is_empty() {
        Ok(Graph {
            nodes,
            entry,
            successors,
        })
    } else {
        Err(SpecErrors(errors))
    }
}

fn check_llm_call(
    loaded: &LoadedSpec,
    node: usize,
    with: &Map<String, Value>,
    errors: &mut Vec<SpecError>,
) {
    let name = &loaded.spec.nodes[node].name;
    let at = format!("nodes[{node}].with");
    if !with.contains_key("messages") && !with.contains_key("prompt") {
        errors.push(loaded.error_at(
            &at,
            format!("node `{name}` (llm.call) has nothing to send: give `with.prompt` or `with.messages`"),
            Some("for example `with: {prompt: \"Summarize {{ state.text }}\"}`".into()),
        ));
    }
    for (key, value) in with {
        if !LLM_CALL_PARAMS.contains(&key.as_str()) {
            errors.push(loaded.error_at(
                &format!("{at}.{key}"),
                format!("llm.call does not take `{key}`"),
                Some(format!("llm.call takes: {}", LLM_CALL_PARAMS.join(", "))),
            ));
        }
        for (path, source) in template::strings(value, &format!("{at}.{key}")) {
            if let Err(message) = template::check(source) {
                errors.push(loaded.error_at(
                    &path,
                    format!(
                        "bad template in node `{name}`, field `{}`: {message}",
                        &path[at.len() + 1..]
                    ),
                    Some(
                        "templates use Jinja syntax: {{ state.key }}, {{ variables.name }}".into(),
                    ),
                ));
            }
        }
    }
}
