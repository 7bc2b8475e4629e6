//! One node of a run: its attempts (retries with backoff as its policy says), each under its
//! own `node {name}` span, a child of the span the flow gives; component and `llm.call`
//! executions; and where a failure is routed.

use super::Run;
use super::cores::Instance;
use super::durable::{PathId, current_tape, with_tape};
use super::llm_node;
use crate::capabilities::{LlmQuota, NodeSetup};
use crate::engine::error::RunError;
use crate::engine::events::NodeEvent;
use crate::graph::{Action, LlmAction, NodeKind, Output, template};
use crate::sandbox::{NodeInvocation, NodeLimits, NodeOutput, raise_hint};
use crate::telemetry::{SpanGuard, SpanHandle};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde_json::{Map, Value};
use std::time::Instant;

impl Run<'_> {
    /// Runs node `index` as its policy says: again after a backoff while its failures are
    /// retryable and attempts remain. Each attempt has its own span, a child of `parent`.
    pub(super) async fn run_node(
        &self,
        parent: &SpanHandle,
        index: usize,
        state: &Map<String, Value>,
        path: PathId,
    ) -> Result<Map<String, Value>, RunError> {
        let name = &self.agent.graph.nodes[index].name;
        let policy = self.agent.policy(name);
        let mut attempt = 1;
        loop {
            // A durable run's execution answers the LLM calls it made before a crash from its tape.
            let tape = self.tape_for(path, name, attempt);
            let outcome =
                with_tape(tape, self.run_attempt(parent, index, state, attempt, path)).await;
            // The node called `interrupt` without an answer: the run stops here, checkpointed.
            if outcome.is_err()
                && let Some(asked) = self.capabilities.interrupt.take_asked()
            {
                return Err(self.asked(path, &asked.node, asked.payload));
            }
            match outcome {
                Err(RunError::Node { kind, .. })
                    if attempt < policy.max_attempts() && policy.retries(&kind) =>
                {
                    attempt += 1;
                    tokio::time::sleep(policy.backoff(attempt)).await;
                }
                outcome => return outcome,
            }
        }
    }

    /// One attempt of node `index`, under its own span, a child of `parent` (the root span,
    /// a parallel group's span). Returns the node's state update.
    async fn run_attempt(
        &self,
        parent: &SpanHandle,
        index: usize,
        state: &Map<String, Value>,
        attempt: u32,
        path: PathId,
    ) -> Result<Map<String, Value>, RunError> {
        let node = &self.agent.graph.nodes[index];
        let tracer = self.telemetry.tracer();
        // A child of a span that does not record does not record either: its name and
        // attributes would be dropped unread, so they are not made.
        let recording = parent.is_recording();
        let attributes = if recording {
            vec![
                KeyValue::new("kettle.node.name", node.name.clone()),
                KeyValue::new("kettle.node.kind", node.kind.name()),
                KeyValue::new("kettle.run.id", self.run_id.to_string()),
                KeyValue::new("kettle.node.attempt", i64::from(attempt)),
            ]
        } else {
            Vec::new()
        };
        let name = if recording {
            format!("node {}", node.name)
        } else {
            String::new()
        };
        let span = SpanGuard::new(parent.child(tracer, name, SpanKind::Internal, attributes));
        self.telemetry.node_input(span.handle(), state);
        let started = Instant::now();
        if let Some(events) = self.events {
            events.emit(&NodeEvent::start(self.run_id, &node.name, node.kind.name()));
        }
        let no_extras = Map::new();
        let result = match &node.kind {
            // A component node knows which attempt it is in (`ctx.attempt`).
            NodeKind::Action(Action::Component { component, config }) => {
                self.run_component(
                    &node.name,
                    *component,
                    config,
                    state,
                    span.handle(),
                    attempt,
                )
                .await
            }
            NodeKind::Action(Action::Inline(inline)) => {
                self.run_inline(
                    &node.name,
                    inline,
                    state,
                    &no_extras,
                    span.handle(),
                    attempt,
                )
                .await
            }
            NodeKind::Action(action) => {
                self.run_action(&node.name, action, state, &no_extras, span.handle())
                    .await
            }
            // Boxed, as the forms below: a node's future is moved whole at every node, and
            // these (with an LLM call or a fan-out inside) are kilobytes that a component or
            // expression node would otherwise carry too.
            NodeKind::Steps(steps) => {
                Box::pin(self.run_steps(&node.name, steps, state, &no_extras, span.handle())).await
            }
            NodeKind::WhileLoop {
                condition,
                max_iterations,
                body,
            } => {
                Box::pin(self.run_while_loop(
                    &node.name,
                    condition,
                    *max_iterations,
                    body,
                    state,
                    span.handle(),
                ))
                .await
            }
            NodeKind::DynamicParallel(dp) => {
                Box::pin(self.run_dynamic_parallel(&node.name, dp, state, span.handle(), path))
                    .await
            }
        };
        if let Some(events) = self.events {
            events.emit(&NodeEvent::finish(
                self.run_id,
                &node.name,
                started.elapsed(),
                result.as_ref().err(),
            ));
        }
        match &result {
            Ok(update) => {
                self.telemetry.node_output(span.handle(), update);
                span.finish_ok();
            }
            Err(e) => {
                if let RunError::Node { kind, .. } = e {
                    span.handle()
                        .set_attribute(KeyValue::new("error.type", kind.clone()));
                }
                span.finish_error(e.to_string());
            }
        }
        result
    }

    /// The limits of node `node`: `--limit` beats the node's `limits:`, which beats
    /// `settings.limits`.
    pub(super) fn limits_of(&self, node: &str) -> NodeLimits {
        NodeLimits::resolve(&[
            Some(&self.options.limits),
            self.agent.policy(node).limits.as_ref(),
            self.agent.default_limits.as_ref(),
        ])
    }

    /// What the capabilities read to prepare an execution of node `node`.
    pub(super) fn node_setup<'a>(
        &'a self,
        node: &'a str,
        span: &'a SpanHandle,
        limits: &'a NodeLimits,
    ) -> NodeSetup<'a> {
        NodeSetup {
            node,
            span,
            limits,
            llm: &self.agent.policy(node).llm,
            tape: current_tape(),
        }
    }

    /// The LLM allowance of one execution of node `node`.
    fn quota_of(&self, node: &str, span: &SpanHandle, limits: &NodeLimits) -> LlmQuota {
        self.capabilities
            .llm
            .quota(&self.node_setup(node, span, limits))
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_component(
        &self,
        node: &str,
        component: usize,
        config: &Value,
        state: &Map<String, Value>,
        span: &SpanHandle,
        attempt: u32,
    ) -> Result<Map<String, Value>, RunError> {
        let source = self.agent.source(component);
        let component = self
            .agent
            .component(component)
            .ok_or_else(|| RunError::node(node, "internal", "the component was not prepared"))?;
        // A folder run from source: the interpreter receives the folder's files beside the
        // node's own config, and hands the node only the latter.
        let config = match source {
            Some(source) => format!(r#"{{"kettle_node_folder":{source},"config":{config}}}"#),
            None => config.to_string(),
        };
        let limits = self.limits_of(node);
        let capabilities = Box::new(
            self.capabilities
                .prepare(&self.node_setup(node, span, &limits)),
        );
        let run_id = self.run_id.to_string();
        let node_name = node.to_string();
        let grants = self.agent.policy(node).grants.clone();
        let state = state.clone();
        let invocation = move || NodeInvocation {
            run_id,
            node_name,
            attempt,
            config,
            state: Value::Object(state).to_string(),
            capabilities,
            grants,
            limits,
        };
        self.tasks
            .execute(component, Instance::Fresh, invocation, update_of(node))
            .await
            .map_err(|failure| RunError::node(node, &failure.kind(), failure.to_string()))?
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_llm_call(
        &self,
        node: &str,
        action: LlmAction,
        with: &Map<String, Value>,
        output: &Output,
        context: &template::Context,
        span: &SpanHandle,
    ) -> Result<Map<String, Value>, RunError> {
        let mut rendered = Map::new();
        for (key, value) in with {
            let value = template::render_value(value, context).map_err(|e| {
                RunError::node(node, "template", format!("field `with.{key}`: {e}"))
            })?;
            rendered.insert(key.clone(), value);
        }
        // TEA's `timeout:` of the call, in seconds; the node's own limit still applies.
        let call_timeout = match rendered.remove("timeout") {
            None | Some(Value::Null) => None,
            Some(value) => match value.as_f64() {
                Some(seconds) if seconds > 0.0 && seconds.is_finite() => Some(seconds),
                _ => {
                    return Err(RunError::node(
                        node,
                        "invalid_request",
                        format!("`with.timeout` must be a positive number of seconds, not {value}"),
                    ));
                }
            },
        };
        let request = llm_node::request_from(action, &rendered)
            .map_err(|e| RunError::node(node, "invalid_request", e))?;
        let limits = self.limits_of(node);
        let mut quota = self.quota_of(node, span, &limits);
        let usage = &self.capabilities.llm.usage;
        if let Err(denied) = quota.admit(&self.agent.llm, &request, usage) {
            let kind = quota
                .breach()
                .map_or_else(|| "denied".to_string(), |b| format!("limit.{}", b.limit));
            return Err(RunError::node(node, &kind, denied.to_string()));
        }
        let call = llm_node::perform(
            action,
            &self.agent.llm,
            self.telemetry.tracer(),
            span,
            usage,
            self.telemetry.content(),
            request,
            current_tape(),
            self.capabilities.llm.watch(node),
        );
        let node_limit = limits.timeout();
        let limit = call_timeout
            .map(std::time::Duration::from_secs_f64)
            .filter(|t| *t < node_limit);
        let response = match tokio::time::timeout(limit.unwrap_or(node_limit), call).await {
            Ok(response) => response.map_err(|e| RunError::node(node, e.kind(), e.message()))?,
            Err(_) if limit.is_some() => {
                return Err(RunError::node(
                    node,
                    "llm.timeout",
                    format!(
                        "the LLM call did not finish within its `with.timeout` of {} s",
                        call_timeout.unwrap_or_default()
                    ),
                ));
            }
            Err(_) => {
                return Err(RunError::node(
                    node,
                    "limit.timeout_ms",
                    format!(
                        "the LLM call did not finish in {} ms; {}",
                        limits.timeout_ms,
                        raise_hint("timeout_ms")
                    ),
                ));
            }
        };
        super::steps::store_output(node, output, llm_node::result_value(&response), context)
    }
}

/// Where a failure of node `index` is routed, and the `state.error` the handler receives.
pub(super) fn error_route(
    agent: &crate::engine::Agent,
    index: usize,
    error: &RunError,
) -> Option<(usize, Value)> {
    let RunError::Node {
        node,
        kind,
        message,
    } = error
    else {
        return None;
    };
    let handler = agent
        .policy(&agent.graph.nodes[index].name)
        .on_error
        .as_deref()?;
    let target = agent.graph.nodes.iter().position(|n| n.name == handler)?;
    Some((
        target,
        serde_json::json!({ "node": node, "kind": kind, "message": message }),
    ))
}

/// [`parse_update`] of node `node`'s output, to run in its execution's task.
pub(super) fn update_of(
    node: &str,
) -> impl FnOnce(NodeOutput) -> Result<Map<String, Value>, RunError> + Send + 'static {
    let node = node.to_string();
    move |output| parse_update(&node, &output.update)
}

/// A node's output as a state update: a JSON object.
pub(super) fn parse_update(node: &str, update: &str) -> Result<Map<String, Value>, RunError> {
    match serde_json::from_str::<Value>(update) {
        Ok(Value::Object(update)) => Ok(update),
        Ok(other) => Err(RunError::node(
            node,
            "bad_output",
            format!(
                "the node must return a JSON object (a state update), not {}",
                json_type(&other)
            ),
        )),
        Err(e) => Err(RunError::node(
            node,
            "bad_output",
            format!("the node returned text that is not JSON: {e}"),
        )),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
