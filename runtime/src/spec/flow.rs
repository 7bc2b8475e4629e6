//! The typed shape of TEA's flow constructs: `goto`, conditional and parallel edges, steps of
//! `steps:` / `body:` / `action:`, and the `fan_in` key.

use serde::Deserialize;
use serde_json::{Map, Value};

/// `goto:` on a node: a node name (or `__end__`), or rules evaluated in order.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Goto {
    To(String),
    Rules(Vec<GotoRule>),
}

/// One rule of a conditional `goto:`; a rule without `if` always matches.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GotoRule {
    #[serde(default, rename = "if")]
    pub condition: Option<String>,
    pub to: String,
}

/// `fan_in:` on a node: `true` marks a fan-in node; a node name is where a `dynamic_parallel`
/// node goes after collecting its results.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FanIn {
    Flag(bool),
    Node(String),
}

/// `condition:` on an edge: TEA's `{type: expression, value: EXPR}`, or the expression
/// written as a plain string.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "ConditionForm")]
pub struct EdgeCondition {
    pub kind: String,
    pub value: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ConditionForm {
    Expression(String),
    Typed(TypedCondition),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypedCondition {
    #[serde(rename = "type", default = "expression")]
    kind: String,
    value: String,
}

impl From<ConditionForm> for EdgeCondition {
    fn from(form: ConditionForm) -> Self {
        match form {
            ConditionForm::Expression(value) => Self {
                kind: expression(),
                value,
            },
            ConditionForm::Typed(t) => Self {
                kind: t.kind,
                value: t.value,
            },
        }
    }
}

/// `action:` on a node: one step per item on a `dynamic_parallel` node; elsewhere an action's
/// name, TEA-Rust's spelling of `uses:`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NodeAction {
    Name(String),
    Step(Box<StepSpec>),
}

/// `output:` of an action: the state key its result goes under, or (TEA) a mapping from state
/// keys to templates over `result` (the action's result) and `state`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Output {
    Key(String),
    Mapping(Map<String, Value>),
}

impl Output {
    /// The state key, when `output:` names one.
    pub fn key(&self) -> Option<&str> {
        match self {
            Output::Key(key) => Some(key),
            Output::Mapping(_) => None,
        }
    }
}

fn expression() -> String {
    "expression".into()
}

/// `when:` on an edge: an expression (`!name` negates a state key), or with `condition:`,
/// the boolean the condition must equal.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum When {
    Bool(bool),
    Expression(String),
}

/// Declares a struct with the keys of a single action, shared by nodes and steps: its own
/// leading keys, the action's keys (`component`, `config`, `uses`, `with`, `output`, `run`,
/// `script`, `language`, `type`), then its own trailing keys; and its `action_view`. A macro
/// and not `#[serde(flatten)]`, which would lose `deny_unknown_fields` and with it the located
/// unknown-key errors.
macro_rules! with_action_keys {
    (
        $(#[$meta:meta])*
        pub struct $name:ident { $($head:tt)* } then { $($tail:tt)* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, ::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $($head)*
            /// A `.wasm` component, or a folder with its source, relative to the agent file.
            #[serde(default)]
            pub component: Option<String>,
            /// Handed to the component as JSON.
            #[serde(default)]
            pub config: Option<::serde_json::Value>,
            /// A built-in action, such as `llm.call`.
            #[serde(default)]
            pub uses: Option<String>,
            /// Parameters of the action; strings are templates.
            #[serde(default, rename = "with")]
            pub with: Option<::serde_json::Map<String, ::serde_json::Value>>,
            /// What the node says it does; shown by `kettle graph`.
            #[serde(default)]
            pub description: Option<String>,
            /// Where the action's result goes: a state key, or a mapping of state keys to
            /// templates over `result`.
            #[serde(default)]
            pub output: Option<$crate::spec::Output>,
            /// An expression form, or TEA's inline code (run by a sandboxed interpreter, see `inline.rs`).
            #[serde(default)]
            pub run: Option<::serde_json::Value>,
            /// TEA's inline script form, the same as `run: |`.
            #[serde(default)]
            pub script: Option<::serde_json::Value>,
            /// TEA's language of inline code (`python`, `lua`, `prolog`).
            #[serde(default)]
            pub language: Option<String>,
            /// A node's form: `while_loop` or `dynamic_parallel`, absent for the others.
            /// Refused on a step: loops do not nest.
            #[serde(default, rename = "type")]
            pub kind: Option<String>,
            $($tail)*
        }

        impl $name {
            /// The keys that make this a single action, for checks shared by nodes and steps.
            pub fn action_view(&self) -> $crate::spec::ActionView<'_> {
                $crate::spec::ActionView {
                    component: self.component.as_ref(),
                    config: self.config.as_ref(),
                    uses: self.uses.as_ref(),
                    with: self.with.as_ref(),
                    output: self.output.as_ref(),
                    run: self.run.as_ref(),
                    script: self.script.as_ref(),
                    language: self.language.as_ref(),
                }
            }
        }
    };
}

with_action_keys! {
    /// One step of `steps:`, `body:` or `action:`: a `uses:` action, a component, or an
    /// expression (`run: {type: expression, ...}`).
    pub struct StepSpec {
        #[serde(default)]
        pub name: Option<String>,
    } then {}
}

/// `run: {type: expression, value: EXPR, output_key: KEY}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpressionRun {
    #[serde(rename = "type")]
    pub kind: String,
    pub value: String,
    #[serde(default)]
    pub output_key: Option<String>,
}

impl ExpressionRun {
    /// The expression form of a `run:` value, if it is one: what `Self::deserialize` accepts
    /// with `type: expression`, read by hand because every load asks it of every node twice.
    pub fn from_run(run: &Value) -> Option<Self> {
        let (mut kind, mut value, mut output_key) = (None, None, None);
        for (key, field) in run.as_object()? {
            match key.as_str() {
                "type" => kind = Some(field),
                "value" => value = Some(field),
                "output_key" => output_key = Some(field),
                _ => return None,
            }
        }
        if kind?.as_str()? != "expression" {
            return None;
        }
        let output_key = match output_key {
            None | Some(Value::Null) => None,
            Some(Value::String(key)) => Some(key.clone()),
            Some(_) => return None,
        };
        Some(Self {
            kind: "expression".into(),
            value: value?.as_str()?.to_string(),
            output_key,
        })
    }
}

/// The keys of a node or step that make it a single action, for checks shared by both.
#[derive(Debug, Clone, Copy)]
pub struct ActionView<'a> {
    pub component: Option<&'a String>,
    pub config: Option<&'a Value>,
    pub uses: Option<&'a String>,
    pub with: Option<&'a Map<String, Value>>,
    pub output: Option<&'a Output>,
    pub run: Option<&'a Value>,
    pub script: Option<&'a Value>,
    pub language: Option<&'a String>,
}

impl super::model::NodeSpec {
    /// The step of a `dynamic_parallel` node's `action:`.
    pub fn action_step(&self) -> Option<&StepSpec> {
        match &self.action {
            Some(NodeAction::Step(step)) => Some(step),
            _ => None,
        }
    }

    /// Whether parallel branches join at this node.
    pub fn is_fan_in(&self) -> bool {
        matches!(self.fan_in, Some(FanIn::Flag(true)))
    }
}

impl super::model::EdgeSpec {
    /// A fan-out edge (`type: parallel`, or TEA's `parallel: true`).
    pub fn is_parallel(&self) -> bool {
        self.kind.as_deref() == Some("parallel") || self.parallel == Some(true)
    }

    /// An edge that is always taken.
    pub fn is_unconditional(&self) -> bool {
        self.condition.is_none() && matches!(self.when, None | Some(When::Bool(true)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_expression_form_is_what_its_type_reads() {
        for run in [
            json!({"type": "expression", "value": "state.n + 1", "output_key": "n"}),
            json!({"type": "expression", "value": "1"}),
            json!({"type": "expression", "value": "1", "output_key": null}),
            json!({"type": "expression", "value": "1", "output_key": 3}),
            json!({"type": "expression", "value": 1}),
            json!({"type": "expression"}),
            json!({"type": "expression", "value": "1", "extra": true}),
            json!({"type": "python", "value": "1"}),
            json!({"value": "1"}),
            json!("print(1)"),
            json!(null),
        ] {
            let by_serde = ExpressionRun::deserialize(&run)
                .ok()
                .filter(|e| e.kind == "expression");
            assert_eq!(
                format!("{:?}", ExpressionRun::from_run(&run)),
                format!("{by_serde:?}"),
                "{run}"
            );
        }
    }
}
