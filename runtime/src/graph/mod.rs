//! The compiled graph: nodes with their resolved kinds, and the route out of each one.

mod compile;
mod json_view;
mod python;
mod render;
mod routes;
pub mod template;

pub use compile::compile;
pub use render::{GraphFormat, render};

pub use crate::spec::Output;
use serde_json::{Map, Value};
use std::path::PathBuf;

/// Where execution goes after a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Node(usize),
    End,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ComponentSource {
    /// A built component.
    Wasm(PathBuf),
    /// A node folder (Rust, Python or JavaScript), built by Kettle when its sources change.
    Folder(PathBuf),
    /// The interpreter component of inline code in this language (`python`), built by Kettle
    /// from the source compiled into it.
    Interpreter(String),
}

/// A condition on a route: an expression, and the truth value it must have.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// As written in the agent file (for messages and `kettle graph`).
    pub written: String,
    /// What is evaluated (`!name` is rewritten to `not state.get("name")`).
    pub expression: String,
    pub expect: bool,
}

/// One way out of a node; the first rule whose condition holds is taken.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub when: Option<Condition>,
    pub to: Next,
}

/// How execution leaves a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// `goto`, edges or implicit chaining, as rules in order.
    Rules(Vec<Rule>),
    /// Parallel edges: every branch runs from a copy of the state up to `fan_in`.
    Parallel { branches: Vec<usize>, fan_in: usize },
}

/// A single action: the body of a plain node, of a step, or of a `dynamic_parallel` item.
#[derive(Debug, Clone)]
pub enum Action {
    Component {
        /// Index into [`Graph::component_sources`].
        component: usize,
        /// The `config:`, handed to the component as JSON.
        config: Value,
    },
    /// `uses: llm.call`, `llm.stream` or `llm.tools`.
    LlmCall {
        action: LlmAction,
        /// `with:`; strings are templates rendered against the state when the node runs.
        with: Map<String, Value>,
        /// Where the result goes.
        output: Output,
    },
    /// TEA's `file.read` (`write: false`) or `file.write`, performed by the host inside the
    /// node's `permissions.fs` grants.
    File {
        write: bool,
        /// `with:` (`path`, and `content` to write); templates rendered when the node runs.
        with: Map<String, Value>,
        output: Output,
    },
    /// `run: {type: expression, value, output_key}`, evaluated on the host.
    Expression { expression: String, output: Output },
    /// A node without an action: the state passes on unchanged (TEA's pass-through node).
    PassThrough,
    /// TEA's inline code, run by its language's interpreter component.
    Inline(InlineAction),
}

/// Inline code (`run: |`, `script: |`): executed by an interpreter component that receives it
/// in its config.
#[derive(Debug, Clone)]
pub struct InlineAction {
    /// Index into [`Graph::component_sources`]: the interpreter of its language.
    pub interpreter: usize,
    pub language: String,
    pub code: String,
    /// The interpreter's config, `{"code": ...}` as JSON, when the code has no templates.
    pub config: Option<String>,
    /// `isolation: node`: a fresh interpreter instance per execution instead of the run's.
    pub fresh_instance: bool,
}

impl InlineAction {
    /// The interpreter's config for one execution: templates in the code (`{{ state.x }}`)
    /// are rendered first, as TEA does.
    pub fn config_for(&self, context: &template::Context) -> Result<String, String> {
        if let Some(config) = &self.config {
            return Ok(config.clone());
        }
        match template::render_value(&Value::String(self.code.clone()), context)? {
            Value::String(code) => Ok(inline_config(&code)),
            other => Ok(inline_config(&other.to_string())),
        }
    }
}

/// The config an interpreter receives: `{"code": CODE, "context": "inline"}`; `context` says
/// that its state argument is the inline context (`{state, variables, extras}`), not the state.
pub fn inline_config(code: &str) -> String {
    serde_json::json!({ "code": code, "context": "inline" }).to_string()
}

/// Whether TEA would change the code by rendering it as a template.
pub fn has_template(code: &str) -> bool {
    code.contains("{{") || code.contains("{%")
}

impl Action {
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Component { .. } => "component",
            Action::LlmCall { action, .. } => action.name(),
            Action::File { write: false, .. } => "file.read",
            Action::File { write: true, .. } => "file.write",
            Action::Expression { .. } => "expression",
            Action::Inline(_) => "inline",
            Action::PassThrough => "pass_through",
        }
    }
}

/// One step of `steps:`, `body:` or a `dynamic_parallel` item.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub action: Action,
}

/// A `dynamic_parallel` node.
#[derive(Debug, Clone)]
pub struct DynamicParallel {
    /// Template (or expression in `{{ }}`) yielding the list.
    pub items: String,
    pub item_var: String,
    pub index_var: String,
    pub max_concurrency: Option<u32>,
    pub fail_fast: bool,
    /// The state key the results are stored under.
    pub output: String,
    pub body: Vec<Step>,
    /// The body came from `steps:` (each step gets its own span); otherwise it is one action
    /// run directly under the item's span.
    pub body_is_steps: bool,
    /// Where the run goes after the results are collected, overriding the node's route.
    pub fan_in: Option<usize>,
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Action(Action),
    Steps(Vec<Step>),
    WhileLoop {
        condition: String,
        max_iterations: u32,
        body: Vec<Step>,
    },
    DynamicParallel(DynamicParallel),
}

impl NodeKind {
    pub fn name(&self) -> &'static str {
        match self {
            NodeKind::Action(action) => action.kind(),
            NodeKind::Steps(_) => "steps",
            NodeKind::WhileLoop { .. } => "while_loop",
            NodeKind::DynamicParallel(_) => "dynamic_parallel",
        }
    }
}

/// Which built-in LLM action a `uses:` node performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmAction {
    Call,
    Stream,
    Tools,
}

impl LlmAction {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            // TEA-Rust's `llm.chat` takes the same parameters and gives the same result.
            "llm.call" | "llm.chat" => Some(Self::Call),
            "llm.stream" => Some(Self::Stream),
            "llm.tools" => Some(Self::Tools),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Call => "llm.call",
            Self::Stream => "llm.stream",
            Self::Tools => "llm.tools",
        }
    }
}

#[derive(Debug, Clone)]
pub struct GraphNode {
    pub name: String,
    /// The node's `description:`, shown by `kettle graph`.
    pub description: Option<String>,
    pub kind: NodeKind,
    /// Marked `fan_in: true`: parallel branches join here.
    pub fan_in: bool,
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    /// The route out of `__start__`.
    pub entry: Route,
    pub routes: Vec<Route>,
    /// Every component the graph uses, with the node that names it.
    pub component_sources: Vec<(String, ComponentSource)>,
}

impl Graph {
    /// The route out of node `index`.
    pub fn route(&self, index: usize) -> &Route {
        static NOWHERE: Route = Route::Rules(Vec::new());
        self.routes.get(index).unwrap_or(&NOWHERE)
    }

    /// Every component: its id, the node that uses it, and where it comes from.
    pub fn components(&self) -> impl Iterator<Item = (usize, &str, &ComponentSource)> {
        self.component_sources
            .iter()
            .enumerate()
            .map(|(i, (node, source))| (i, node.as_str(), source))
    }

    /// Whether a run may have nodes running at once: parallel edges, or `dynamic_parallel`
    /// nodes. Without either, a run executes one node at a time.
    pub fn runs_branches(&self) -> bool {
        std::iter::once(&self.entry)
            .chain(&self.routes)
            .any(|route| matches!(route, Route::Parallel { .. }))
            || self
                .nodes
                .iter()
                .any(|node| matches!(node.kind, NodeKind::DynamicParallel(_)))
    }

    pub fn name_of(&self, next: Next) -> &str {
        match next {
            Next::Node(i) => self.nodes.get(i).map_or("?", |n| n.name.as_str()),
            Next::End => crate::spec::END,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::spec::parse_str;
    use std::path::Path;

    fn runs_branches(yaml: &str) -> bool {
        let loaded = parse_str(yaml, Path::new("agent.yaml")).expect("YAML");
        super::compile::compile(&loaded)
            .expect("a graph")
            .runs_branches()
    }

    #[test]
    fn only_parallel_edges_and_dynamic_parallel_nodes_run_branches() {
        let expression = "    run: {type: expression, value: '1', output_key: n}\n";
        let chain = format!(
            "nodes:\n  - name: a\n{expression}  - name: b\n{expression}edges:\n  - {{from: __start__, to: a}}\n  - {{from: a, to: b, condition: 'state.n == 1'}}\n  - {{from: a, to: __end__}}\n  - {{from: b, to: __end__}}\n"
        );
        assert!(!runs_branches(&chain));
        let fan_out = format!(
            "nodes:\n  - name: a\n{expression}  - name: b\n{expression}  - name: c\n{expression}  - name: join\n    fan_in: true\n{expression}edges:\n  - {{from: __start__, to: a}}\n  - {{from: a, to: b, type: parallel, fan_in: join}}\n  - {{from: a, to: c, type: parallel, fan_in: join}}\n  - {{from: b, to: join}}\n  - {{from: c, to: join}}\n  - {{from: join, to: __end__}}\n"
        );
        assert!(runs_branches(&fan_out));
        let dynamic = "nodes:\n  - name: each\n    type: dynamic_parallel\n    items: '{{ state.items }}'\n    steps:\n      - name: step\n        run: {type: expression, value: '1', output_key: n}\n";
        assert!(runs_branches(dynamic));
    }
}
