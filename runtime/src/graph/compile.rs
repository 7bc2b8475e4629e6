//! From a validated spec to a [`Graph`]: node kinds resolved, templates and expressions
//! checked, and the route out of every node (see `routes.rs`).

use super::template;
use super::{
    Action, ComponentSource, DynamicParallel, Graph, GraphNode, InlineAction, LlmAction, NodeKind,
    Output, Step, has_template, inline_config, routes,
};
use crate::spec::{
    ActionView, ExpressionRun, LoadedSpec, NodeSpec, SHELL, SpecError, SpecErrors, StepSpec,
    inline_code, place,
};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Parameters `uses: llm.call` (and `llm.stream`, `llm.tools`) accepts in `with:`.
pub const LLM_CALL_PARAMS: &[&str] = &[
    "model",
    "messages",
    "prompt",
    "system",
    "temperature",
    "max_tokens",
    "stop",
    "seed",
    "provider",
    "api_base",
    "tools",
    "tool_choice",
    "response_format",
    "timeout",
    "shell_provider",
];

/// Where an expression's value goes without `output_key` (TEA's default).
pub const DEFAULT_EXPRESSION_OUTPUT: &str = "result";

/// Where `dynamic_parallel` results go when the node names no `output:`.
pub const DEFAULT_PARALLEL_OUTPUT: &str = "parallel_results";

pub fn compile(loaded: &LoadedSpec) -> Result<Graph, SpecErrors> {
    let spec = &loaded.spec;
    let index: FxHashMap<&str, usize> = spec
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let mut compiler = Compiler {
        loaded,
        errors: Vec::new(),
        components: Vec::new(),
        interpreters: HashMap::new(),
        folders: HashMap::new(),
        fresh_instance: false,
    };
    let mut nodes = Vec::with_capacity(spec.nodes.len());
    for (i, node) in spec.nodes.iter().enumerate() {
        compiler.fresh_instance = node.isolation.as_deref() == Some("node");
        let kind = compiler.node_kind(&place::item("nodes", i), node, &index);
        nodes.push(GraphNode {
            name: node.name.clone(),
            description: node.description.clone(),
            kind,
            fan_in: node.is_fan_in(),
        });
    }
    let (entry, routes) = routes::build(loaded, &index, &mut compiler.errors);
    if compiler.errors.is_empty() {
        Ok(Graph {
            nodes,
            entry,
            routes,
            component_sources: compiler.components,
        })
    } else {
        Err(SpecErrors(compiler.errors))
    }
}

struct Compiler<'a> {
    loaded: &'a LoadedSpec,
    errors: Vec<SpecError>,
    components: Vec<(String, ComponentSource)>,
    /// The component id of each language's interpreter, once one node needs it.
    interpreters: HashMap<String, usize>,
    /// Whether each component path named so far (as written) is a folder: asked of the disk
    /// once per path, not once per node naming it.
    folders: HashMap<String, bool>,
    /// The node being compiled asked for `isolation: node`.
    fresh_instance: bool,
}

impl Compiler<'_> {
    fn node_kind(&mut self, at: &str, node: &NodeSpec, index: &FxHashMap<&str, usize>) -> NodeKind {
        let name = &node.name;
        match node.kind.as_deref() {
            Some("while_loop") => {
                let condition = node.condition.clone().unwrap_or_else(|| "false".into());
                self.expression((at, "condition"), name, "condition", &condition);
                NodeKind::WhileLoop {
                    condition,
                    max_iterations: node.max_iterations.unwrap_or(1),
                    body: self.steps(&format!("{at}.body"), name, node.body.as_deref()),
                }
            }
            Some("dynamic_parallel") => {
                let items = node.items.clone().unwrap_or_else(|| "[]".into());
                self.template((at, "items"), name, "items", &items);
                let body = if let Some(action) = node.action_step() {
                    vec![self.step(&format!("{at}.action"), name, action, name)]
                } else if let Some(steps) = &node.steps {
                    self.steps(&format!("{at}.steps"), name, Some(steps))
                } else {
                    // A component node: the component runs once per item.
                    let view = ActionView {
                        output: None,
                        ..node.action_view()
                    };
                    vec![Step {
                        name: name.clone(),
                        action: self.action(at, name, view),
                    }]
                };
                let fan_in = match &node.fan_in {
                    Some(crate::spec::FanIn::Node(target)) => index.get(target.as_str()).copied(),
                    _ => None,
                };
                NodeKind::DynamicParallel(DynamicParallel {
                    items,
                    item_var: node.item_var.clone().unwrap_or_else(|| "item".into()),
                    index_var: node.index_var.clone().unwrap_or_else(|| "index".into()),
                    max_concurrency: node.max_concurrency,
                    fail_fast: node.fail_fast.unwrap_or(false),
                    output: node
                        .output
                        .as_ref()
                        .and_then(Output::key)
                        .unwrap_or(DEFAULT_PARALLEL_OUTPUT)
                        .to_string(),
                    body,
                    body_is_steps: node.action_step().is_none() && node.steps.is_some(),
                    fan_in,
                })
            }
            _ => match &node.steps {
                Some(steps) => {
                    NodeKind::Steps(self.steps(&format!("{at}.steps"), name, Some(steps)))
                }
                None => NodeKind::Action(self.action(at, name, node.action_view())),
            },
        }
    }

    fn steps(&mut self, at: &str, node: &str, steps: Option<&[StepSpec]>) -> Vec<Step> {
        steps
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, step)| {
                let fallback = format!("step{}", i + 1);
                self.step(&format!("{at}[{i}]"), node, step, &fallback)
            })
            .collect()
    }

    fn step(&mut self, at: &str, node: &str, step: &StepSpec, fallback: &str) -> Step {
        let name = step.name.clone().unwrap_or_else(|| fallback.to_string());
        let action = self.action(at, node, step.action_view());
        Step { name, action }
    }

    /// The action of a node or step; `owner` names the node in messages and defaults `output`.
    fn action(&mut self, at: &str, owner: &str, view: ActionView<'_>) -> Action {
        if let Some(component) = view.component {
            let path = self.loaded.resolve(component);
            let is_folder = match self.folders.get(component.as_str()) {
                Some(is_folder) => *is_folder,
                None => {
                    let is_folder = path.is_dir();
                    self.folders.insert(component.clone(), is_folder);
                    is_folder
                }
            };
            let source = if is_folder {
                ComponentSource::Folder(path)
            } else {
                ComponentSource::Wasm(path)
            };
            self.components.push((owner.to_string(), source));
            return Action::Component {
                component: self.components.len() - 1,
                config: view
                    .config
                    .cloned()
                    .unwrap_or_else(|| Value::Object(Map::new())),
            };
        }
        if let Some(inline) = inline_code(&view) {
            let interpreter = match self.interpreters.get(&inline.language) {
                Some(id) => *id,
                None => {
                    self.components.push((
                        owner.to_string(),
                        ComponentSource::Interpreter(inline.language.clone()),
                    ));
                    let id = self.components.len() - 1;
                    self.interpreters.insert(inline.language.clone(), id);
                    id
                }
            };
            if has_template(&inline.code) {
                self.template((at, inline.key), owner, inline.key, &inline.code);
            }
            return Action::Inline(InlineAction {
                interpreter,
                config: (!has_template(&inline.code)).then(|| inline_config(&inline.code)),
                language: inline.language,
                code: inline.code,
                fresh_instance: self.fresh_instance,
            });
        }
        if let Some(run) = view.run.and_then(ExpressionRun::from_run) {
            self.expression((at, "run.value"), owner, "run.value", &run.value);
            return Action::Expression {
                expression: run.value,
                output: run
                    .output_key
                    .map(Output::Key)
                    .or_else(|| view.output.cloned())
                    .unwrap_or_else(|| Output::Key(DEFAULT_EXPRESSION_OUTPUT.into())),
            };
        }
        if view.uses.is_none() {
            return Action::PassThrough;
        }
        if let Some(Output::Mapping(mapping)) = view.output {
            self.output_templates(at, owner, mapping);
        }
        let with = view.with.cloned().unwrap_or_default();
        if let Some(file @ ("file.read" | "file.write")) = view.uses.map(String::as_str) {
            let write = file == "file.write";
            let needed: &[&str] = if write {
                &["path", "content"]
            } else {
                &["path"]
            };
            for key in needed {
                if !with.contains_key(*key) {
                    self.errors.push(self.loaded.error_at(
                        &format!("{at}.with"),
                        format!("node `{owner}` ({file}) needs `with.{key}`"),
                        Some("for example `with: {path: data/notes.txt}`, a path inside a folder of the node's `permissions.fs`".into()),
                    ));
                }
            }
            return Action::File {
                write,
                with,
                output: view
                    .output
                    .cloned()
                    .unwrap_or_else(|| Output::Key(owner.to_string())),
            };
        }
        let action = view.uses.and_then(|u| LlmAction::from_name(u));
        if action.is_some() {
            self.check_llm_call(at, owner, &with);
        }
        Action::LlmCall {
            action: action.unwrap_or(LlmAction::Call),
            with,
            output: view
                .output
                .cloned()
                .unwrap_or_else(|| Output::Key(owner.to_string())),
        }
    }

    /// The templates of an `output:` mapping.
    fn output_templates(&mut self, at: &str, node: &str, mapping: &Map<String, Value>) {
        for (key, value) in mapping {
            for (path, source) in template::strings(value, &format!("{at}.output.{key}")) {
                if let Err(message) = template::check(source) {
                    self.errors.push(
                        self.loaded.error_at(
                            &path,
                            format!(
                                "bad template in node `{node}`, field `output.{key}`: {message}"
                            ),
                            Some(
                                "templates use Jinja syntax: {{ result.content }}, {{ state.key }}"
                                    .into(),
                            ),
                        ),
                    );
                }
            }
        }
    }

    /// Checks an expression written at `at.key` (the place is made only for an error).
    fn expression(&mut self, (at, key): (&str, &str), node: &str, field: &str, source: &str) {
        if let Err(message) = template::check_expression(source) {
            self.errors.push(self.loaded.error_at(
                &place::under(at, key),
                format!("bad expression in node `{node}`, field `{field}`: {message}"),
                Some(
                    "expressions are Jinja expressions over state and variables, e.g. `state.count < 5 and not state.get(\"done\", False)`"
                        .into(),
                ),
            ));
        }
    }

    /// Checks a template written at `at.key` (the place is made only for an error).
    fn template(&mut self, (at, key): (&str, &str), node: &str, field: &str, source: &str) {
        if let Err(message) = template::check(source) {
            self.errors.push(self.loaded.error_at(
                &place::under(at, key),
                format!("bad template in node `{node}`, field `{field}`: {message}"),
                Some("templates use Jinja syntax: {{ state.key }}, {{ variables.name }}".into()),
            ));
        }
    }

    /// TEA's `provider: shell` with `shell_provider: NAME`: a name written out must be one of
    /// the agent's shell providers (or TEA's built-in ones).
    fn check_shell_provider(&mut self, at: &str, name: &str, with: &Map<String, Value>) {
        let provider = with.get("provider").and_then(Value::as_str);
        let literal = |v: &str| !has_template(v);
        match (with.get("shell_provider"), provider) {
            (Some(_), Some(p)) if p != SHELL && literal(p) => {
                self.errors.push(self.loaded.error_at(
                    &format!("{at}.provider"),
                    format!("node `{name}` names `shell_provider:` but its `provider:` is `{p}`"),
                    Some("write `provider: shell` (or leave `provider:` out) to use a shell provider".into()),
                ));
            }
            (Some(Value::String(shell)), _) if literal(shell) => {
                let known = self.loaded.spec.settings.shell_providers();
                if !known.contains_key(shell) {
                    self.errors.push(self.loaded.error_at(
                        &format!("{at}.shell_provider"),
                        format!("node `{name}` names the shell provider `{shell}`, which the agent does not declare"),
                        Some(format!(
                            "declare it under `settings.llm.shell_providers` (`{shell}: {{command: PROGRAM, args: [...]}}`), or use one of: {}",
                            known.keys().cloned().collect::<Vec<_>>().join(", ")
                        )),
                    ));
                }
            }
            (Some(Value::String(_)), _) => {}
            (Some(_), _) => self.errors.push(self.loaded.error_at(
                &format!("{at}.shell_provider"),
                format!("node `{name}`: `shell_provider` must be the name of a shell provider"),
                Some("for example `shell_provider: claude`".into()),
            )),
            (None, Some(SHELL)) => self.errors.push(self.loaded.error_at(
                &format!("{at}.provider"),
                format!("node `{name}` has `provider: shell` but no `shell_provider:`"),
                Some("name the program's provider, such as `shell_provider: claude`".into()),
            )),
            (None, _) => {}
        }
    }

    fn check_llm_call(&mut self, at: &str, name: &str, with: &Map<String, Value>) {
        let at = format!("{at}.with");
        if !with.contains_key("messages") && !with.contains_key("prompt") {
            self.errors.push(self.loaded.error_at(
                &at,
                format!("node `{name}` (llm.call) has nothing to send: give `with.prompt` or `with.messages`"),
                Some("for example `with: {prompt: \"Summarize {{ state.text }}\"}`".into()),
            ));
        }
        self.check_shell_provider(&at, name, with);
        for (key, value) in with {
            if !LLM_CALL_PARAMS.contains(&key.as_str()) {
                self.errors.push(self.loaded.error_at(
                    &format!("{at}.{key}"),
                    format!("llm.call does not take `{key}`"),
                    Some(format!("llm.call takes: {}", LLM_CALL_PARAMS.join(", "))),
                ));
            }
            for (path, source) in template::strings(value, &format!("{at}.{key}")) {
                if let Err(message) = template::check(source) {
                    self.errors.push(
                        self.loaded.error_at(
                            &path,
                            format!(
                                "bad template in node `{name}`, field `{}`: {message}",
                                &path[at.len() + 1..]
                            ),
                            Some(
                                "templates use Jinja syntax: {{ state.key }}, {{ variables.name }}"
                                    .into(),
                            ),
                        ),
                    );
                }
            }
        }
    }
}
