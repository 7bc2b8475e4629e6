//! Structural checks that typing cannot express: names, node kinds, references, files.

use super::error::SpecError;
use super::flow::{ActionView, ExpressionRun, FanIn, NodeAction, StepSpec};
use super::host_pattern::HostPattern;
use super::inline::{ISOLATIONS, InlineCode, inline_code as inline_code_of};
use super::llm_settings::LlmSettings;
use super::llm_settings::PROVIDER_TYPES;
use super::load::LoadedSpec;
use super::model::{AgentSpec, END, LimitsSpec, NodeSpec, START};
use rustc_hash::FxHashMap;

/// Built-in actions a node may name in `uses:`.
pub const ACTIONS: &[&str] = &[
    "llm.call",
    "llm.chat",
    "llm.stream",
    "llm.tools",
    "file.read",
    "file.write",
];

/// Whether the node (or one of its steps) uses TEA's `file.read` or `file.write`, which the
/// host performs inside the node's `permissions.fs` grants only.
pub fn uses_file_action(node: &NodeSpec) -> bool {
    let is_file = |uses: Option<&String>| uses.is_some_and(|u| u.starts_with("file."));
    is_file(node.uses.as_ref())
        || node.action_step().is_some_and(|s| is_file(s.uses.as_ref()))
        || [&node.steps, &node.body]
            .into_iter()
            .flatten()
            .flatten()
            .any(|s| is_file(s.uses.as_ref()))
}

/// Every structural problem of the file. Files it names are checked outside spec, from the
/// references [`check`] returns beside the errors.
pub fn validate(loaded: &LoadedSpec) -> Vec<SpecError> {
    check(loaded).errors
}

/// A path written in the agent file that names a file or folder, and where it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathRef {
    /// The YAML path to locate an error at (`nodes[1].component`).
    pub at: String,
    /// The node it belongs to.
    pub node: String,
    /// As written, relative to the agent file.
    pub path: String,
}

/// What the checks found: the problems, and the paths whose files are checked elsewhere.
#[derive(Debug, Default)]
pub struct Findings {
    pub errors: Vec<SpecError>,
    /// What TEA allows and Kettle accepts, but is likely a mistake (unreachable nodes, edges
    /// never taken); `kettle validate` prints them, `--strict` makes them errors.
    pub warnings: Vec<SpecError>,
    /// `component:` of every well-formed action.
    pub components: Vec<PathRef>,
    /// `permissions.fs[].path` of every component node.
    pub folders: Vec<PathRef>,
}

/// One pass over the file: its structural problems, and the files and folders it names (for
/// the checks on disk, which spec does not make).
pub fn check(loaded: &LoadedSpec) -> Findings {
    let mut out = Findings::default();
    check_typed(loaded, &mut out);
    // A part that did not type is reported once: not again by the checks of what is left.
    let typing = &loaded.type_errors;
    out.errors.retain(|e| {
        !typing
            .iter()
            .any(|t| (t.line, t.column) == (e.line, e.column))
    });
    out.errors.splice(0..0, typing.iter().cloned());
    out
}

/// The checks of what typed.
fn check_typed(loaded: &LoadedSpec, out: &mut Findings) {
    let spec = &loaded.spec;
    if spec.nodes.is_empty() {
        out.errors.push(loaded.error_at(
            "nodes",
            "the agent has no nodes",
            Some("add at least one entry under `nodes:`".into()),
        ));
    }

    let mut seen: FxHashMap<&str, usize> =
        FxHashMap::with_capacity_and_hasher(spec.nodes.len(), Default::default());
    for (index, node) in spec.nodes.iter().enumerate() {
        let at = super::place::item("nodes", index);
        if node.name.trim().is_empty() {
            if loaded.mistyped(&format!("{at}.name")) || loaded.mistyped_whole(&at) {
                continue;
            }
            out.errors.push(loaded.error_at(
                &at,
                format!("nodes[{index}] has no `name:`"),
                Some("add `name: NODE`; routes and messages refer to nodes by name".into()),
            ));
        } else if node.name == START || node.name == END {
            out.errors.push(loaded.error_at(
                &format!("{at}.name"),
                format!("`{}` cannot be a node name", node.name),
                Some(format!("{START} and {END} are reserved; pick another name")),
            ));
        }
        if let Some(first) = seen.insert(node.name.as_str(), index) {
            out.errors.push(loaded.error_at(
                &format!("{at}.name"),
                format!(
                    "node `{}` is defined twice (first as nodes[{first}])",
                    node.name
                ),
                Some("node names must be unique".into()),
            ));
        }
        validate_node(loaded, &at, node, out);
        validate_policy(loaded, &at, node, out);
    }
    for (index, node) in spec.nodes.iter().enumerate() {
        if let Some(handler) = &node.on_error
            && !seen.contains_key(handler.as_str())
        {
            out.errors.push(unknown_node(
                loaded,
                &format!("nodes[{index}].on_error"),
                handler,
                &seen,
            ));
        }
    }
    if let Some(limits) = &spec.settings.limits {
        validate_limits(loaded, "settings.limits", limits, out);
    }
    validate_parallel(loaded, out);

    if let Some(llm) = &spec.settings.llm {
        validate_llm(loaded, llm, out);
    }
    validate_shell_providers(loaded, out);
    for note in &spec.tea_notes {
        out.warnings.push(loaded.error_at(
            &note.path,
            note.message.clone(),
            Some("remove it to silence this warning (`kettle validate --strict` counts it as a problem)".into()),
        ));
    }
    out.errors.extend(super::tracing_settings::validate(loaded));

    for (index, edge) in spec.edges.iter().enumerate() {
        let at = format!("edges[{index}]");
        for (key, value) in [("from", &edge.from), ("to", &edge.to)] {
            let reported = loaded.mistyped(&format!("{at}.{key}")) || loaded.mistyped_whole(&at);
            if value.is_empty() && !reported {
                out.errors.push(loaded.error_at(
                    &at,
                    format!("{at} has no `{key}:`"),
                    Some("an edge is `{from: NODE, to: NODE}`".into()),
                ));
            }
        }
        if let Some(strategy) = &edge.parallel_strategy
            && !["thread", "process"].contains(&strategy.as_str())
        {
            out.errors.push(loaded.error_at(
                &format!("{at}.parallel_strategy"),
                format!("parallel strategy `{strategy}` is not supported"),
                Some("use `thread` or `process` (Kettle runs branches concurrently in one process either way), or leave `parallel_strategy:` out".into()),
            ));
        }
        if edge.from.is_empty() || edge.to.is_empty() {
            continue;
        }
        if edge.from == END || (edge.from != START && !seen.contains_key(edge.from.as_str())) {
            out.errors.push(unknown_node(
                loaded,
                &format!("{at}.from"),
                &edge.from,
                &seen,
            ));
        }
        if edge.to == START || (edge.to != END && !seen.contains_key(edge.to.as_str())) {
            out.errors
                .push(unknown_node(loaded, &format!("{at}.to"), &edge.to, &seen));
        }
    }
    super::validate_flow::validate_flow(loaded, &seen, &mut out.errors, &mut out.warnings);
}

/// The shell providers the agent declares (in `settings.shell_providers` and
/// `settings.llm.shell_providers`).
fn validate_shell_providers(loaded: &LoadedSpec, out: &mut Findings) {
    let settings = &loaded.spec.settings;
    let places = [
        ("settings.shell_providers", Some(&settings.shell_providers)),
        (
            "settings.llm.shell_providers",
            settings.llm.as_ref().map(|l| &l.shell_providers),
        ),
    ];
    for (at, providers) in places {
        for (name, provider) in providers.into_iter().flatten() {
            for (key, message, hint) in super::shell_providers::check(name, provider) {
                out.errors.push(loaded.error_at(
                    &format!("{at}.{name}.{key}"),
                    message,
                    Some(hint),
                ));
            }
        }
    }
}

/// `settings.parallel`: TEA's `thread` and `process` strategies both run as Kettle's
/// in-process branches; `remote` has no counterpart.
fn validate_parallel(loaded: &LoadedSpec, out: &mut Findings) {
    let Some(parallel) = &loaded.spec.settings.parallel else {
        return;
    };
    if let Some(strategy) = &parallel.strategy
        && !["thread", "process"].contains(&strategy.as_str())
    {
        out.errors.push(loaded.error_at(
            "settings.parallel.strategy",
            format!("parallel strategy `{strategy}` is not supported"),
            Some("use `thread` or `process` (Kettle runs branches concurrently in one process either way), or leave `strategy:` out".into()),
        ));
    }
    if parallel.max_workers == Some(0) {
        out.errors.push(loaded.error_at(
            "settings.parallel.max_workers",
            "`max_workers` must be at least 1",
            Some("leave it out for no bound".into()),
        ));
    }
}

fn validate_node(loaded: &LoadedSpec, at: &str, node: &NodeSpec, out: &mut Findings) {
    let name = &node.name;
    match node.kind.as_deref() {
        None => {}
        Some("while_loop") => return validate_while_loop(loaded, at, node, out),
        Some("dynamic_parallel") => return validate_dynamic_parallel(loaded, at, node, out),
        Some(other) => {
            out.errors.push(
                loaded.error_at(
                    &format!("{at}.type"),
                    format!("node `{name}` has the unknown type `{other}`"),
                    Some(
                        "use `type: while_loop` or `type: dynamic_parallel`, or leave `type:` out"
                            .into(),
                    ),
                ),
            );
            return;
        }
    }
    if node.condition.is_some() {
        // TEA reads a node's `condition:` only on a loop and ignores it elsewhere; so does Kettle.
        out.warnings.push(loaded.error_at(
            &format!("{at}.condition"),
            format!("`condition:` of node `{name}` has no effect: only `type: while_loop` nodes read it (TEA ignores it too)"),
            Some("to run the node only when something holds, put the condition on the edge into it, or route with `goto:`".into()),
        ));
    }
    misplaced(loaded, at, node, &LOOP_BUT_CONDITION, out);
    misplaced(loaded, at, node, &DYNAMIC_PARALLEL, out);
    if matches!(node.fan_in, Some(FanIn::Node(_))) {
        out.errors.push(loaded.error_at(
            &format!("{at}.fan_in"),
            format!(
                "`fan_in:` of node `{name}` names a node, which only `dynamic_parallel` nodes do"
            ),
            Some("write `fan_in: true` to mark the node where parallel branches join".into()),
        ));
    }
    if let Some(steps) = &node.steps {
        let view = node.action_view();
        if view.component.is_some()
            || view.uses.is_some()
            || view.run.is_some()
            || view.script.is_some()
        {
            out.errors.push(loaded.error_at(
                &format!("{at}.steps"),
                format!("node `{name}` has `steps:` and also its own action"),
                Some("put every action of the node in `steps:`".into()),
            ));
        }
        validate_steps(loaded, &format!("{at}.steps"), name, steps, out);
        return;
    }
    validate_action(loaded, at, name, node.action_view(), true, out);
}

/// Keys that belong to one form of node, and how messages name that form.
struct Form {
    keys: &'static [&'static str],
    owner: &'static str,
}

const WHILE_LOOP: Form = Form {
    keys: &["condition", "max_iterations", "body"],
    owner: "`type: while_loop` nodes",
};
/// The loop keys a plain node may not have (its `condition:` is only a warning, as TEA
/// ignores it).
const LOOP_BUT_CONDITION: Form = Form {
    keys: &["max_iterations", "body"],
    owner: "`type: while_loop` nodes",
};
const DYNAMIC_PARALLEL: Form = Form {
    keys: &[
        "items",
        "item_var",
        "index_var",
        "max_concurrency",
        "fail_fast",
        "action",
    ],
    owner: "`type: dynamic_parallel` nodes",
};
/// What a loop may not have: it runs its `body:`.
const PLAIN_NOT_LOOP: Form = Form {
    keys: &["steps", "component", "uses", "with", "run"],
    owner: "plain nodes (a loop runs its `body:`)",
};
/// What a `dynamic_parallel` node may not have: it runs `action:` (or steps, or a component).
const PLAIN_NOT_PARALLEL: Form = Form {
    keys: &["uses", "with", "run"],
    owner: "plain nodes (per item, give `action:`)",
};

fn present(node: &NodeSpec, key: &str) -> bool {
    match key {
        "condition" => node.condition.is_some(),
        "max_iterations" => node.max_iterations.is_some(),
        "body" => node.body.is_some(),
        "items" => node.items.is_some(),
        "item_var" => node.item_var.is_some(),
        "index_var" => node.index_var.is_some(),
        "max_concurrency" => node.max_concurrency.is_some(),
        "fail_fast" => node.fail_fast.is_some(),
        "action" => node.action.is_some(),
        "steps" => node.steps.is_some(),
        "component" => node.component.is_some(),
        "uses" => node.uses.is_some(),
        "with" => node.with.is_some(),
        "run" => node.run.is_some(),
        "goto" => node.goto.is_some(),
        _ => false,
    }
}

/// Keys of another node form, each reported where it is written.
fn misplaced(loaded: &LoadedSpec, at: &str, node: &NodeSpec, form: &Form, out: &mut Findings) {
    let owner = form.owner;
    for key in form.keys {
        if present(node, key) {
            out.errors.push(loaded.error_at(
                &format!("{at}.{key}"),
                format!(
                    "`{key}:` does not belong in node `{}`: it is a key of {owner}",
                    node.name
                ),
                Some(format!("remove `{key}:`, or make the node one of {owner}")),
            ));
        }
    }
}

fn validate_while_loop(loaded: &LoadedSpec, at: &str, node: &NodeSpec, out: &mut Findings) {
    let name = &node.name;
    misplaced(loaded, at, node, &DYNAMIC_PARALLEL, out);
    misplaced(loaded, at, node, &PLAIN_NOT_LOOP, out);
    if node.condition.is_none() {
        out.errors.push(loaded.error_at(
            at,
            format!("while_loop `{name}` has no `condition:`"),
            Some("add `condition: \"state.count < 5\"` (checked before every iteration)".into()),
        ));
    }
    match node.max_iterations {
        None => out.errors.push(loaded.error_at(
            at,
            format!("while_loop `{name}` has no `max_iterations:`; it is required so that no loop runs forever"),
            Some("add `max_iterations: N` with N from 1 to 1000".into()),
        )),
        Some(n) if !(1..=1000).contains(&n) => out.errors.push(loaded.error_at(
            &format!("{at}.max_iterations"),
            format!("`max_iterations` of while_loop `{name}` is {n}, outside 1 to 1000"),
            Some("pick a bound from 1 to 1000".into()),
        )),
        Some(_) => {}
    }
    match &node.body {
        Some(body) if !body.is_empty() => {
            validate_steps(loaded, &format!("{at}.body"), name, body, out)
        }
        _ => out.errors.push(loaded.error_at(
            at,
            format!("while_loop `{name}` has no `body:`"),
            Some("add `body:` with the steps of one iteration (`uses:`, `component:` or `run: {type: expression, ...}`)".into()),
        )),
    }
}

fn validate_dynamic_parallel(loaded: &LoadedSpec, at: &str, node: &NodeSpec, out: &mut Findings) {
    let name = &node.name;
    misplaced(loaded, at, node, &WHILE_LOOP, out);
    misplaced(loaded, at, node, &PLAIN_NOT_PARALLEL, out);
    if node.items.is_none() {
        out.errors.push(loaded.error_at(
            at,
            format!("dynamic_parallel `{name}` has no `items:`"),
            Some("add `items: \"{{ state.list }}\"`, a template yielding the list to fan out over".into()),
        ));
    }
    if node.max_concurrency == Some(0) {
        out.errors.push(loaded.error_at(
            &format!("{at}.max_concurrency"),
            format!("`max_concurrency` of `{name}` is 0, so no item could run"),
            Some("use a positive number, or leave it out for no limit".into()),
        ));
    }
    if matches!(node.fan_in, Some(FanIn::Flag(_))) {
        out.errors.push(loaded.error_at(
            &format!("{at}.fan_in"),
            format!("`fan_in:` of dynamic_parallel `{name}` must name the node that runs after the items"),
            Some("write `fan_in: NODE`; that node receives the results".into()),
        ));
    }
    if matches!(node.output, Some(super::flow::Output::Mapping(_))) {
        out.errors.push(loaded.error_at(
            &format!("{at}.output"),
            format!("`output:` of dynamic_parallel `{name}` must be the state key its results go under"),
            Some("write `output: results`; map each item's result with `output:` inside `action:`".into()),
        ));
    }
    let bodies = [
        node.action.is_some(),
        node.steps.is_some(),
        node.component.is_some(),
    ];
    match bodies.iter().filter(|b| **b).count() {
        0 => out.errors.push(loaded.error_at(
            at,
            format!("dynamic_parallel `{name}` has nothing to run per item"),
            Some("give one of `action:` (a `uses:` step), `steps:`, or `component:`".into()),
        )),
        1 => {}
        _ => out.errors.push(loaded.error_at(
            at,
            format!(
                "dynamic_parallel `{name}` has more than one of `action:`, `steps:`, `component:`"
            ),
            Some("keep exactly one body".into()),
        )),
    }
    if let Some(action) = node.action_step() {
        validate_step(loaded, &format!("{at}.action"), name, action, out);
    }
    if let Some(steps) = &node.steps {
        validate_steps(loaded, &format!("{at}.steps"), name, steps, out);
    }
    if node.component.is_some() {
        let view = ActionView {
            output: None,
            ..node.action_view()
        };
        validate_action(loaded, at, name, view, true, out);
    }
}

fn validate_steps(
    loaded: &LoadedSpec,
    at: &str,
    node: &str,
    steps: &[StepSpec],
    out: &mut Findings,
) {
    if steps.is_empty() {
        out.errors.push(loaded.error_at(
            at,
            format!("node `{node}` has an empty list of steps"),
            Some("add at least one step".into()),
        ));
    }
    for (i, step) in steps.iter().enumerate() {
        validate_step(loaded, &format!("{at}[{i}]"), node, step, out);
    }
}

fn validate_step(loaded: &LoadedSpec, at: &str, node: &str, step: &StepSpec, out: &mut Findings) {
    if let Some(kind) = &step.kind {
        out.errors.push(loaded.error_at(
            &format!("{at}.type"),
            format!("a step of node `{node}` has `type: {kind}`, but loops and parallel nodes do not nest inside steps"),
            Some("make it a node of its own and route to it with `goto:`".into()),
        ));
        return;
    }
    validate_action(loaded, at, node, step.action_view(), false, out);
}

/// A single action: a component, a `uses:` action, or an expression.
fn validate_action(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    view: ActionView<'_>,
    is_node: bool,
    out: &mut Findings,
) {
    let what = if is_node { "node" } else { "a step of node" };
    let expression = view.run.and_then(ExpressionRun::from_run);
    let inline = inline_code_of(&view);
    let problem = inline_code(loaded, at, name, what, view, inline.as_ref())
        .or_else(|| {
            run_of_unknown_type(
                loaded,
                at,
                name,
                what,
                view,
                expression.is_some() || inline.is_some(),
            )
        })
        .or_else(|| {
            not_one_action(
                loaded,
                at,
                name,
                what,
                view,
                expression.is_some(),
                inline.is_some(),
            )
        });
    if let Some(problem) = problem {
        out.errors.push(problem);
        return;
    }
    if let Some(component) = view.component {
        out.components.push(PathRef {
            at: super::place::under(at, "component"),
            node: name.to_string(),
            path: component.clone(),
        });
        component_keys(loaded, at, name, view, out);
    } else if let Some(action) = view.uses {
        uses_keys(loaded, at, name, what, action, view, out);
    } else if inline.is_some() {
        inline_keys(loaded, at, name, view, out);
    } else if expression.is_some() {
        expression_keys(loaded, at, name, view, out);
    } else {
        pass_through_keys(loaded, at, name, view, out);
    }
}

/// TEA's inline code in a language Kettle has no interpreter for, or `language:`
/// without code, refused.
fn inline_code(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    what: &str,
    view: ActionView<'_>,
    inline: Option<&InlineCode>,
) -> Option<SpecError> {
    let Some(inline) = inline else {
        let language = view.language?;
        return Some(loaded.error_at(
            &format!("{at}.language"),
            format!("{what} `{name}` names the language `{language}` but has no inline code"),
            Some("put the code in `run: |` or `script: |`, or remove `language:`".into()),
        ));
    };
    if super::inline::runs(&inline.language) {
        return None;
    }
    let key = inline.key;
    let language = &inline.language;
    Some(loaded.error_at(
        &format!("{at}.{key}"),
        format!("{what} `{name}` has inline code (`{key}:`, {language}), which Kettle does not run: it has no sandboxed interpreter for {language}"),
        Some("write the code in Python (`run: |`, run in a sandboxed interpreter), move it into a component node (`component: path/to/node`, written in Rust, Python or JavaScript), use an expression (`run: {type: expression, value: ..., output_key: ...}`), or a built-in action (`uses: llm.call`)".into()),
    ))
}

/// `run:` with a `type:` other than `expression`.
fn run_of_unknown_type(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    what: &str,
    view: ActionView<'_>,
    is_expression: bool,
) -> Option<SpecError> {
    let run = view.run?;
    (!is_expression && run.get("type").is_some()).then(|| {
        loaded.error_at(
            &format!("{at}.run.type"),
            format!("{what} `{name}`: `run:` with a `type:` must be `{{type: expression, value: EXPR, output_key: KEY}}`"),
            Some("only `type: expression` is supported".into()),
        )
    })
}

/// Exactly one of `component:`, `uses:` and an expression.
fn not_one_action(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    what: &str,
    view: ActionView<'_>,
    is_expression: bool,
    is_inline: bool,
) -> Option<SpecError> {
    let forms = [
        view.component.is_some(),
        view.uses.is_some(),
        is_expression,
        is_inline,
    ];
    match forms.iter().filter(|f| **f).count() {
        // A node without an action passes the state on unchanged, as in TEA.
        0 if what == "node" => None,
        0 => Some(loaded.error_at(
            at,
            format!("{what} `{name}` does nothing: it has neither `component:` nor `uses:` nor `run: {{type: expression}}`"),
            Some("add `component: path/to/node` or `uses: llm.call`".into()),
        )),
        1 => None,
        _ => {
            let key = if view.uses.is_some() { "uses" } else { "run" };
            Some(loaded.error_at(
                &format!("{at}.{key}"),
                format!("{what} `{name}` has more than one of `component:`, `uses:`, `run:`"),
                Some("a node is one action; split it into several nodes or steps".into()),
            ))
        }
    }
}

/// Keys of `uses:` actions on a component.
fn component_keys(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    view: ActionView<'_>,
    out: &mut Findings,
) {
    refuse_keys(
        loaded,
        at,
        &view,
        &["with", "output"],
        |key| format!("`{key}:` belongs to `uses:` nodes, but `{name}` is a component node"),
        "pass parameters to a component with `config:`",
        out,
    );
}

/// A known action, without a component's `config:`.
fn uses_keys(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    what: &str,
    action: &str,
    view: ActionView<'_>,
    out: &mut Findings,
) {
    if !ACTIONS.contains(&action) {
        out.errors.push(loaded.error_at(
            &format!("{at}.uses"),
            format!("{what} `{name}` uses the unknown action `{action}`"),
            Some(format!(
                "available actions: {}; for anything else write a component node",
                ACTIONS.join(", ")
            )),
        ));
    }
    if view.config.is_some() {
        out.errors.push(loaded.error_at(
            &format!("{at}.config"),
            format!("`config:` belongs to component nodes, but `{name}` uses `{action}`"),
            Some("pass the action's parameters with `with:`".into()),
        ));
    }
}

/// Inline code takes none of `with:`, `config:`, `output:`: it reads `state` and returns
/// its update.
fn inline_keys(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    view: ActionView<'_>,
    out: &mut Findings,
) {
    refuse_keys(
        loaded,
        at,
        &view,
        &["with", "config"],
        |key| format!("`{key}:` does not apply to the inline code of `{name}`"),
        "inline code reads `state` and `variables` and returns the keys it updates",
        out,
    );
    if view.output.is_some() {
        // TEA applies `output:` to actions only and ignores it on inline code; so does Kettle.
        out.warnings.push(loaded.error_at(
            &format!("{at}.output"),
            format!("`output:` of node `{name}` has no effect: the dict its inline code returns is merged into the state as it is (TEA ignores it too)"),
            Some("return the key you want, such as `return {\"parsed\": value}`, and remove `output:`".into()),
        ));
    }
}

/// An expression takes neither `with:` nor `config:`.
fn expression_keys(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    view: ActionView<'_>,
    out: &mut Findings,
) {
    let key = if view.with.is_some() {
        "with"
    } else if view.config.is_some() {
        "config"
    } else {
        return;
    };
    out.errors.push(loaded.error_at(
        &format!("{at}.{key}"),
        format!("`{key}:` does not apply to the expression in `{name}`"),
        Some("an expression reads `state` and `variables` directly".into()),
    ));
}

/// A node without an action takes no parameters.
fn pass_through_keys(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    view: ActionView<'_>,
    out: &mut Findings,
) {
    refuse_keys(
        loaded,
        at,
        &view,
        &["with", "config", "output"],
        |key| format!("node `{name}` has `{key}:` but no action to apply it to"),
        "add the action (`uses:`, `component:` or `run: {type: expression, ...}`), or remove the key",
        out,
    );
}

/// One error, at the key, for each of `keys` (`with`, `config`, `output`) that the action has
/// but does not take.
fn refuse_keys(
    loaded: &LoadedSpec,
    at: &str,
    view: &ActionView<'_>,
    keys: &[&str],
    message: impl Fn(&str) -> String,
    hint: &str,
    out: &mut Findings,
) {
    for &key in keys {
        let present = match key {
            "with" => view.with.is_some(),
            "config" => view.config.is_some(),
            _ => view.output.is_some(),
        };
        if present {
            out.errors.push(loaded.error_at(
                &format!("{at}.{key}"),
                message(key),
                Some(hint.into()),
            ));
        }
    }
}

fn unknown_node(
    loaded: &LoadedSpec,
    at: &str,
    name: &str,
    known: &FxHashMap<&str, usize>,
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

/// Variables that hold credentials Kettle itself may use, whatever the agent file says:
/// never passed to a node.
const SECRET_VARIABLES: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "AZURE_OPENAI_API_KEY",
    "OPIK_API_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_PUBLIC_KEY",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
];

/// Every variable holding a credential of this agent: the fixed ones, and those its settings
/// name (`api_key_env` of the flat provider and of each named one, Langfuse's key variables).
pub fn secret_variables(spec: &AgentSpec) -> Vec<String> {
    let mut names: Vec<String> = SECRET_VARIABLES.iter().map(|s| s.to_string()).collect();
    if let Some(llm) = &spec.settings.llm {
        names.extend(llm.api_key_env.clone());
        names.extend(llm.providers.values().filter_map(|p| p.api_key_env.clone()));
    }
    if let Some(langfuse) = &spec.settings.langfuse {
        names.extend(langfuse.public_key_env.clone());
        names.extend(langfuse.secret_key_env.clone());
    }
    names
}

fn validate_policy(loaded: &LoadedSpec, at: &str, node: &NodeSpec, out: &mut Findings) {
    let name = &node.name;
    if let Some(limits) = &node.limits {
        validate_limits(loaded, &format!("{at}.limits"), limits, out);
    }
    if let Some(retry) = &node.retry
        && !(1..=100).contains(&retry.max_attempts)
    {
        out.errors.push(loaded.error_at(
            &format!("{at}.retry.max_attempts"),
            format!(
                "node `{name}`: retry.max_attempts must be between 1 and 100, not {}",
                retry.max_attempts
            ),
            Some("max_attempts counts the first attempt too: 3 means two retries".into()),
        ));
    }
    let inline = has_inline_code(node);
    if let Some(isolation) = &node.isolation {
        if !ISOLATIONS.contains(&isolation.as_str()) {
            out.errors.push(loaded.error_at(
                &format!("{at}.isolation"),
                format!("node `{name}` has the unknown isolation `{isolation}`"),
                Some("use `isolation: node` (a fresh interpreter per execution) or `run` (the default: one per run)".into()),
            ));
        } else if !inline {
            out.errors.push(loaded.error_at(
                &format!("{at}.isolation"),
                format!("node `{name}` has no inline code: `isolation:` applies to nothing"),
                Some("remove `isolation:`; component nodes always get a fresh instance".into()),
            ));
        }
    }
    let Some(permissions) = &node.permissions else {
        return;
    };
    if inline && node.component.is_none() {
        // Inline code runs in the run's interpreter: it may be limited in its LLM use, but is
        // granted nothing else.
        for (key, granted) in [
            ("fs", !permissions.fs.is_empty()),
            ("http", !permissions.http.is_empty()),
            ("env", !permissions.env.is_empty()),
        ] {
            if granted {
                out.errors.push(loaded.error_at(
                    &format!("{at}.permissions.{key}"),
                    format!("node `{name}` runs inline code, which cannot be granted `{key}`"),
                    Some(format!("move the code into a component node (`component: path/to/node`) and grant it `permissions.{key}` there")),
                ));
            }
        }
        return;
    }
    let file_action = node.component.is_none() && uses_file_action(node);
    if file_action {
        for (key, granted) in [
            ("http", !permissions.http.is_empty()),
            ("env", !permissions.env.is_empty()),
            ("llm", permissions.llm.is_some()),
        ] {
            if granted {
                out.errors.push(loaded.error_at(
                    &format!("{at}.permissions.{key}"),
                    format!("node `{name}` uses file.read or file.write, which take only `permissions.fs`"),
                    Some(format!("remove `permissions.{key}`")),
                ));
            }
        }
    }
    if node.component.is_none() && !file_action {
        out.errors.push(loaded.error_at(
            &format!("{at}.permissions"),
            format!("node `{name}` is not a component: `permissions:` grants nothing to it"),
            Some("remove `permissions:`; the host performs built-in actions itself".into()),
        ));
        return;
    }
    for (i, grant) in permissions.fs.iter().enumerate() {
        out.folders.push(PathRef {
            at: format!("{at}.permissions.fs[{i}].path"),
            node: name.clone(),
            path: grant.path.clone(),
        });
        if let Some(guest) = &grant.guest_path
            && !guest.starts_with('/')
        {
            out.errors.push(loaded.error_at(
                &format!("{at}.permissions.fs[{i}].as"),
                format!("node `{name}`: `as: {guest}` must be an absolute path in the node, such as /data"),
                None,
            ));
        }
    }
    for (i, host) in permissions.http.iter().enumerate() {
        if let Err(message) = HostPattern::parse(host) {
            out.errors.push(loaded.error_at(
                &format!("{at}.permissions.http[{i}]"),
                format!("node `{name}`: {message}"),
                Some("grant hosts such as api.example.com, *.example.com or http://localhost:8080".into()),
            ));
        }
    }
    let secrets = secret_variables(&loaded.spec);
    for (i, variable) in permissions.env.iter().enumerate() {
        if secrets.contains(variable) {
            out.errors.push(loaded.error_at(
                &format!("{at}.permissions.env[{i}]"),
                format!("node `{name}` may not read `{variable}`: it holds a credential of Kettle's (an LLM provider's key or a trace exporter's), and credentials never reach a node"),
                Some("the host makes LLM calls for the node through the llm import; no key is needed".into()),
            ));
        }
    }
}

/// Whether the node or one of its steps runs inline code.
fn has_inline_code(node: &NodeSpec) -> bool {
    let step = |s: &StepSpec| inline_code_of(&s.action_view()).is_some();
    inline_code_of(&node.action_view()).is_some()
        || node.steps.iter().flatten().any(step)
        || node.body.iter().flatten().any(step)
        || matches!(&node.action, Some(NodeAction::Step(s)) if step(s))
}

fn validate_limits(loaded: &LoadedSpec, at: &str, limits: &LimitsSpec, out: &mut Findings) {
    let checks = [
        ("memory_mb", limits.memory_mb, 1, 4096),
        ("timeout_ms", limits.timeout_ms, 1, 24 * 3600 * 1000),
        ("max_output_bytes", limits.max_output_bytes, 2, 1 << 30),
        ("max_log_bytes", limits.max_log_bytes, 0, 1 << 30),
        ("max_error_bytes", limits.max_error_bytes, 64, 1 << 30),
    ];
    for (key, value, min, max) in checks {
        if let Some(value) = value
            && !(min..=max).contains(&value)
        {
            out.errors.push(loaded.error_at(
                &format!("{at}.{key}"),
                format!("{key} must be between {min} and {max}, not {value}"),
                None,
            ));
        }
    }
}

fn validate_llm(loaded: &LoadedSpec, llm: &LlmSettings, out: &mut Findings) {
    let hint = || {
        Some(
            "use openai (any OpenAI-compatible server, with base_url), azure_openai, ollama, anthropic or mock"
                .to_string(),
        )
    };
    if let Some(provider) = &llm.provider
        && !PROVIDER_TYPES.contains(&provider.as_str())
    {
        out.errors.push(loaded.error_at(
            "settings.llm.provider",
            format!("unknown LLM provider `{provider}`"),
            hint(),
        ));
    }
    if llm.responses.is_some() && llm.provider.as_deref().is_some_and(|p| p != "mock") {
        out.errors.push(loaded.error_at(
            "settings.llm.responses",
            "`responses:` scripts the mock provider, but settings.llm.provider is not `mock`",
            Some("remove `responses:`, or set `provider: mock`".into()),
        ));
    }
    for (name, provider) in &llm.providers {
        if !PROVIDER_TYPES.contains(&provider.kind.as_str()) {
            out.errors.push(loaded.error_at(
                &format!("settings.llm.providers.{name}.type"),
                format!("provider `{name}` has the unknown type `{}`", provider.kind),
                hint(),
            ));
        }
        if provider.kind != "mock" && provider.responses.is_some() {
            out.errors.push(loaded.error_at(
                &format!("settings.llm.providers.{name}.responses"),
                format!(
                    "`responses:` scripts the mock provider, but `{name}` is `{}`",
                    provider.kind
                ),
                Some("remove `responses:`, or set `type: mock`".into()),
            ));
        }
    }
    if let Some(default) = &llm.default {
        let flat = llm.provider.as_deref();
        if !llm.providers.contains_key(default)
            && flat != Some(default.as_str())
            && default != "mock"
        {
            let mut known: Vec<&str> = llm.providers.keys().map(String::as_str).collect();
            known.extend(flat);
            out.errors.push(loaded.error_at(
                "settings.llm.default",
                format!("`{default}` is not a provider of settings.llm"),
                Some(format!("known providers: {}", known.join(", "))),
            ));
        }
    } else if llm.provider.is_none() && llm.providers.len() > 1 {
        out.errors.push(loaded.error_at(
            "settings.llm.providers",
            "several LLM providers are named, but none is the default",
            Some("add `default: NAME` under settings.llm".into()),
        ));
    }
}
