//! Actions inside nodes: one action (component, `llm.call`, expression), `steps:` run in order
//! with a span each, and `while_loop` iterations with a span each and the exit reason recorded.

use super::Run;
use crate::engine::error::RunError;
use crate::graph::{Action, Output, Step, template};
use crate::telemetry::{SpanGuard, SpanHandle};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde_json::{Map, Value};

/// What templates and expressions see: `state`, `variables`, and `extras` (a
/// `dynamic_parallel` item and its index) at the top level; in a fan-in node, also
/// `parallel_results` (as in TEA).
impl Run<'_> {
    pub(super) fn context(
        &self,
        state: &Map<String, Value>,
        extras: &Map<String, Value>,
    ) -> template::Context {
        let mut context = extras.clone();
        if let Some(results) = state.get(super::flow::PARALLEL_RESULTS) {
            context.insert(super::flow::PARALLEL_RESULTS.into(), results.clone());
        }
        context.insert("state".into(), Value::Object(state.clone()));
        context.insert(
            "variables".into(),
            Value::Object(self.agent.variables.clone()),
        );
        template::Context::new(Value::Object(context))
    }
}

/// The update an action's result makes: the result under `output`'s key, or (TEA's `output:`
/// mapping) each key of the mapping, rendered with `result` bound to the action's result.
pub(super) fn store_output(
    node: &str,
    output: &Output,
    result: Value,
    context: &template::Context,
) -> Result<Map<String, Value>, RunError> {
    let mut update = Map::new();
    match output {
        Output::Key(key) => {
            update.insert(key.clone(), result);
        }
        Output::Mapping(mapping) => {
            let context = context.with("result", result);
            for (key, value) in mapping {
                let value = template::render_value(value, &context).map_err(|e| {
                    RunError::node(node, "template", format!("field `output.{key}`: {e}"))
                })?;
                update.insert(key.clone(), value);
            }
        }
    }
    Ok(update)
}

/// Merges `update` into both the working state and the accumulated update.
fn absorb(
    working: &mut Map<String, Value>,
    total: &mut Map<String, Value>,
    update: Map<String, Value>,
) {
    for (key, value) in update {
        working.insert(key.clone(), value.clone());
        total.insert(key, value);
    }
}

impl Run<'_> {
    /// Runs one action of node `node` against `state`; LLM calls and guest spans are children
    /// of `span`.
    pub(super) async fn run_action(
        &self,
        node: &str,
        action: &Action,
        state: &Map<String, Value>,
        extras: &Map<String, Value>,
        span: &SpanHandle,
    ) -> Result<Map<String, Value>, RunError> {
        match action {
            Action::Component { component, config } => {
                self.run_component(node, *component, config, state, span, 1)
                    .await
            }
            Action::LlmCall {
                action,
                with,
                output,
            } => {
                let context = self.context(state, extras);
                // Boxed: an LLM call's future (the provider's HTTP request) is kilobytes, and
                // every action's future would carry it inline.
                Box::pin(self.run_llm_call(node, *action, with, output, &context, span)).await
            }
            Action::File {
                write,
                with,
                output,
            } => {
                let context = self.context(state, extras);
                let result = self.run_file_action(node, *write, with, &context)?;
                store_output(node, output, result, &context)
            }
            Action::Inline(inline) => self.run_inline(node, inline, state, extras, span, 1).await,
            Action::Expression { expression, output } => {
                let context = self.context(state, extras);
                let value = template::eval_expression(expression, &context).map_err(|e| {
                    RunError::node(
                        node,
                        "expression",
                        format!("field `run.value` (`{expression}`): {e}"),
                    )
                })?;
                store_output(node, output, value, &context)
            }
            Action::PassThrough => Ok(Map::new()),
        }
    }

    /// Runs `steps` in order, each on the state the previous ones left, each under its own
    /// span (a child of `parent`). Returns everything they updated.
    pub(super) async fn run_steps(
        &self,
        node: &str,
        steps: &[Step],
        state: &Map<String, Value>,
        extras: &Map<String, Value>,
        parent: &SpanHandle,
    ) -> Result<Map<String, Value>, RunError> {
        let mut working = state.clone();
        let mut total = Map::new();
        for step in steps {
            let span = SpanGuard::new(parent.child(
                self.telemetry.tracer(),
                format!("step {}", step.name),
                SpanKind::Internal,
                vec![
                    KeyValue::new("kettle.node.name", node.to_string()),
                    KeyValue::new("kettle.step.name", step.name.clone()),
                    KeyValue::new("kettle.step.kind", step.action.kind()),
                ],
            ));
            let result = self
                .run_action(node, &step.action, &working, extras, span.handle())
                .await;
            match result {
                Ok(update) => {
                    span.finish_ok();
                    absorb(&mut working, &mut total, update);
                }
                Err(e) => {
                    let e = in_step(e, &step.name);
                    span.finish_error(e.to_string());
                    return Err(e);
                }
            }
        }
        Ok(total)
    }

    /// Runs `body` while `condition` holds, at most `max_iterations` times; each iteration is
    /// a span under the node's span, and the node's span records how the loop ended.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_while_loop(
        &self,
        node: &str,
        condition: &str,
        max_iterations: u32,
        body: &[Step],
        state: &Map<String, Value>,
        span: &SpanHandle,
    ) -> Result<Map<String, Value>, RunError> {
        let mut working = state.clone();
        let mut total = Map::new();
        let mut iterations = 0;
        let no_extras = Map::new();
        let exit_reason = loop {
            if iterations >= max_iterations {
                break "max_iterations_reached";
            }
            let holds = template::eval_condition(condition, &self.context(&working, &no_extras))
                .map_err(|e| {
                    RunError::node(
                        node,
                        "condition",
                        format!("loop condition `{condition}`: {e}"),
                    )
                })?;
            if !holds {
                break "condition_false";
            }
            iterations += 1;
            let iteration = SpanGuard::new(span.child(
                self.telemetry.tracer(),
                format!("iteration {iterations}"),
                SpanKind::Internal,
                vec![
                    KeyValue::new("kettle.node.name", node.to_string()),
                    KeyValue::new("kettle.loop.iteration", i64::from(iterations)),
                ],
            ));
            match self
                .run_steps(node, body, &working, &no_extras, iteration.handle())
                .await
            {
                Ok(update) => {
                    iteration.finish_ok();
                    absorb(&mut working, &mut total, update);
                }
                Err(e) => {
                    iteration.finish_error(e.to_string());
                    return Err(e);
                }
            }
        };
        span.set_attribute(KeyValue::new(
            "kettle.loop.iterations",
            i64::from(iterations),
        ));
        span.set_attribute(KeyValue::new("kettle.loop.exit_reason", exit_reason));
        Ok(total)
    }
}

/// Names the step in a node's error.
fn in_step(error: RunError, step: &str) -> RunError {
    match error {
        RunError::Node {
            node,
            kind,
            message,
        } if !message.starts_with("step `") => RunError::Node {
            node,
            kind,
            message: format!("step `{step}`: {message}"),
        },
        other => other,
    }
}
