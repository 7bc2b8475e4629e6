//! A run: one root span owned by the host, one span per node parented explicitly (routing and
//! parallel groups are in `flow.rs`), state merged after every node, and the trace flushed on
//! every way out.

use super::agent::Agent;
use super::error::RunError;
use super::events::{EventSink, NodeEvent};
use super::llm_node;
use super::report::{RunReport, UsageSnapshot};
use crate::capabilities::{LlmQuota, NodeSetup, RunCapabilities, RunSetup};
use crate::graph::{Action, LlmAction, NodeKind, template};
use crate::sandbox::{NodeInvocation, NodeLimits, Sandbox, raise_hint};
use crate::spec::LimitsSpec;
use crate::telemetry::{SpanGuard, SpanHandle, Telemetry, root_attributes, root_output};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, SpanKind};
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

pub const DEFAULT_MAX_STEPS: u32 = 1000;

/// Per-run options that override the agent's settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub max_steps: Option<u32>,
    /// Receives one event per node start and finish (`kettle run --events`).
    pub events: Option<EventSink>,
    /// Limits that beat every node's own and `settings.limits` (`--limit`).
    pub limits: LimitsSpec,
    /// The caller's span (from `traceparent`): the run's root becomes its child.
    pub parent: Option<SpanContext>,
}

/// Runs agents: the sandbox their components run in and the telemetry their traces go to.
pub struct Runtime {
    sandbox: Arc<Sandbox>,
    telemetry: Arc<Telemetry>,
}

/// What one run shares with its nodes and branches.
pub(super) struct RunScope<'a> {
    pub agent: &'a Agent,
    pub options: &'a RunOptions,
    pub run_id: &'a str,
    pub root: &'a SpanHandle,
    /// The capabilities' run-wide state (the LLM client, budget and usage, ...).
    pub capabilities: &'a RunCapabilities,
    /// Node executions so far, across all branches.
    pub steps: AtomicU32,
    pub max_steps: u32,
    pub events: Option<&'a EventSink>,
}

impl Runtime {
    pub fn new(sandbox: Arc<Sandbox>, telemetry: Arc<Telemetry>) -> Self {
        Self { sandbox, telemetry }
    }

    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Runs `agent` from `input` until it ends, fails, or `interrupt` resolves (with a reason).
    /// The trace is flushed before this returns, whichever happened.
    pub async fn run(
        &self,
        agent: &Agent,
        input: Map<String, Value>,
        options: &RunOptions,
        interrupt: impl Future<Output = String>,
    ) -> RunReport {
        let started = Instant::now();
        let run_id = new_run_id();
        let tracer = self.telemetry.tracer();
        let content = self.telemetry.content();
        let trace_file = self.telemetry.register_run(&run_id);
        let root = SpanHandle::root(
            tracer,
            format!("invoke_agent {}", agent.name),
            &run_id,
            root_attributes(&agent.name, &run_id, &input, content),
            options.parent.clone(),
        );
        let trace_id = root.trace_id();
        // An unsampled run (settings.tracing.sample_ratio) writes no file.
        let trace_file = trace_file.filter(|_| root.is_recording());
        let root_guard = SpanGuard::new(root.clone());
        let capabilities = RunCapabilities::configure(&RunSetup {
            run_id: &run_id,
            llm: &agent.llm,
            budget: agent.budget,
            tracer,
            span_caps: self.telemetry.caps(),
            content,
        });
        let scope = RunScope {
            agent,
            options,
            run_id: &run_id,
            root: &root,
            capabilities: &capabilities,
            steps: AtomicU32::new(0),
            max_steps: options
                .max_steps
                .or(agent.max_steps)
                .unwrap_or(DEFAULT_MAX_STEPS),
            events: options.events.as_ref(),
        };

        let mut state = input;
        let outcome = tokio::select! {
            outcome = self.run_graph(&scope, &mut state) => outcome,
            reason = interrupt => Err(RunError::Interrupted(reason)),
        };
        let nodes_run = scope.steps.load(Ordering::Relaxed);

        for attribute in root_output(&state, content) {
            root.set_attribute(attribute);
        }
        match &outcome {
            Ok(()) => root_guard.finish_ok(),
            Err(e) => root_guard.finish_error(e.to_string()),
        }
        let telemetry = self.telemetry.clone();
        let finished = run_id.clone();
        let trace_error =
            match tokio::task::spawn_blocking(move || telemetry.finish_run(&finished)).await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(format!("the trace flush did not complete: {e}")),
            };
        RunReport {
            run_id,
            agent: agent.name.clone(),
            trace_id: trace_id.to_string(),
            trace_file,
            trace_error,
            outcome,
            state,
            nodes_run,
            llm: UsageSnapshot::from(capabilities.llm.usage.as_ref()),
            llm_provider: agent.llm.provider_name(),
            llm_is_mock: agent.llm.is_mock(),
            duration: started.elapsed(),
        }
    }

    /// Runs node `index` as its policy says: again after a backoff while its failures are
    /// retryable and attempts remain. Each attempt has its own span, a child of `parent`.
    pub(super) async fn run_node(
        &self,
        scope: &RunScope<'_>,
        parent: &SpanHandle,
        index: usize,
        state: &Map<String, Value>,
    ) -> Result<Map<String, Value>, RunError> {
        let name = &scope.agent.graph.nodes[index].name;
        let policy = scope.agent.policy(name);
        let mut attempt = 1;
        loop {
            match self.run_attempt(scope, parent, index, state, attempt).await {
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
        scope: &RunScope<'_>,
        parent: &SpanHandle,
        index: usize,
        state: &Map<String, Value>,
        attempt: u32,
    ) -> Result<Map<String, Value>, RunError> {
        let node = &scope.agent.graph.nodes[index];
        let tracer = self.telemetry.tracer();
        let span = SpanGuard::new(parent.child(
            tracer,
            format!("node {}", node.name),
            SpanKind::Internal,
            vec![
                KeyValue::new("kettle.node.name", node.name.clone()),
                KeyValue::new("kettle.node.kind", node.kind.name()),
                KeyValue::new("kettle.run.id", scope.run_id.to_string()),
                KeyValue::new("kettle.node.attempt", i64::from(attempt)),
            ],
        ));
        let started = Instant::now();
        if let Some(events) = scope.events {
            events.emit(&NodeEvent::start(
                scope.run_id,
                &node.name,
                node.kind.name(),
            ));
        }
        let no_extras = Map::new();
        let result = match &node.kind {
            // A component node knows which attempt it is in (`ctx.attempt`).
            NodeKind::Action(Action::Component { component, config }) => {
                self.run_component(
                    scope,
                    &node.name,
                    *component,
                    config,
                    state,
                    span.handle(),
                    attempt,
                )
                .await
            }
            NodeKind::Action(action) => {
                self.run_action(scope, &node.name, action, state, &no_extras, span.handle())
                    .await
            }
            NodeKind::Steps(steps) => {
                self.run_steps(scope, &node.name, steps, state, &no_extras, span.handle())
                    .await
            }
            NodeKind::WhileLoop {
                condition,
                max_iterations,
                body,
            } => {
                self.run_while_loop(
                    scope,
                    &node.name,
                    condition,
                    *max_iterations,
                    body,
                    state,
                    span.handle(),
                )
                .await
            }
            NodeKind::DynamicParallel(dp) => {
                self.run_dynamic_parallel(scope, &node.name, dp, state, span.handle())
                    .await
            }
        };
        if let Some(events) = scope.events {
            events.emit(&NodeEvent::finish(
                scope.run_id,
                &node.name,
                started.elapsed(),
                result.as_ref().err(),
            ));
        }
        match &result {
            Ok(_) => span.finish_ok(),
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
    fn limits_of(&self, scope: &RunScope<'_>, node: &str) -> NodeLimits {
        NodeLimits::resolve(&[
            Some(&scope.options.limits),
            scope.agent.policy(node).limits.as_ref(),
            scope.agent.default_limits.as_ref(),
        ])
    }

    /// What the capabilities read to prepare an execution of node `node`.
    fn node_setup<'a>(
        &self,
        scope: &'a RunScope<'_>,
        node: &'a str,
        span: &'a SpanHandle,
        limits: &'a NodeLimits,
    ) -> NodeSetup<'a> {
        NodeSetup {
            node,
            span,
            limits,
            llm: &scope.agent.policy(node).llm,
        }
    }

    /// The LLM allowance of one execution of node `node`.
    fn quota_of(
        &self,
        scope: &RunScope<'_>,
        node: &str,
        span: &SpanHandle,
        limits: &NodeLimits,
    ) -> LlmQuota {
        let setup = self.node_setup(scope, node, span, limits);
        scope.capabilities.llm.quota(&setup)
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_component(
        &self,
        scope: &RunScope<'_>,
        node: &str,
        component: usize,
        config: &Value,
        state: &Map<String, Value>,
        span: &SpanHandle,
        attempt: u32,
    ) -> Result<Map<String, Value>, RunError> {
        let component = scope
            .agent
            .component(component)
            .ok_or_else(|| RunError::node(node, "internal", "the component was not prepared"))?;
        let limits = self.limits_of(scope, node);
        let capabilities = scope
            .capabilities
            .prepare(&self.node_setup(scope, node, span, &limits));
        let invocation = NodeInvocation {
            run_id: scope.run_id.to_string(),
            node_name: node.to_string(),
            attempt,
            config: config.to_string(),
            state: Value::Object(state.clone()).to_string(),
            capabilities,
            grants: scope.agent.policy(node).grants.clone(),
            limits,
        };
        let output = self
            .sandbox
            .execute(component, invocation)
            .await
            .map_err(|failure| RunError::node(node, &failure.kind(), failure.to_string()))?;
        match serde_json::from_str::<Value>(&output.update) {
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

    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_llm_call(
        &self,
        scope: &RunScope<'_>,
        node: &str,
        action: LlmAction,
        with: &Map<String, Value>,
        output: &str,
        context: &Value,
        span: &SpanHandle,
    ) -> Result<Map<String, Value>, RunError> {
        let mut rendered = Map::new();
        for (key, value) in with {
            let value = template::render_value(value, context).map_err(|e| {
                RunError::node(node, "template", format!("field `with.{key}`: {e}"))
            })?;
            rendered.insert(key.clone(), value);
        }
        let request = llm_node::request_from(action, &rendered)
            .map_err(|e| RunError::node(node, "invalid_request", e))?;
        let limits = self.limits_of(scope, node);
        let mut quota = self.quota_of(scope, node, span, &limits);
        let usage = &scope.capabilities.llm.usage;
        if let Err(denied) = quota.admit(&scope.agent.llm, &request, usage) {
            let kind = quota
                .breach()
                .map_or_else(|| "denied".to_string(), |b| format!("limit.{}", b.limit));
            return Err(RunError::node(node, &kind, denied.to_string()));
        }
        let call = llm_node::perform(
            action,
            &scope.agent.llm,
            self.telemetry.tracer(),
            span,
            usage,
            self.telemetry.content(),
            request,
        );
        let response = match tokio::time::timeout(limits.timeout(), call).await {
            Ok(response) => response.map_err(|e| RunError::node(node, e.kind(), e.to_string()))?,
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
        let mut update = Map::new();
        update.insert(output.to_string(), llm_node::result_value(&response));
        Ok(update)
    }
}

/// Where a failure of node `index` is routed, and the `state.error` the handler receives.
pub(super) fn error_route(agent: &Agent, index: usize, error: &RunError) -> Option<(usize, Value)> {
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

/// A run id: sortable by start time, unique enough to name a file.
fn new_run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:013x}-{:08x}", rand::random::<u32>())
}
