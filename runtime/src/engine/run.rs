//! The run loop: one root span owned by the host, one span per node parented explicitly by the
//! loop, state merged after every node, and the trace flushed on every way out.

use super::agent::Agent;
use super::error::RunError;
use super::llm_node;
use super::report::{RunReport, UsageSnapshot};
use super::state::merge_update;
use crate::capabilities::{LlmUsage, NodeLlm, NodeTrace, traced_call};
use crate::graph::{Next, NodeKind, template};
use crate::sandbox::{NodeInvocation, Sandbox};
use crate::telemetry::{SpanGuard, SpanHandle, Telemetry, root_attributes, root_output};
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, SpanKind};
use serde_json::{Map, Value, json};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

pub const DEFAULT_MAX_STEPS: u32 = 1000;

/// Per-run options that override the agent's settings.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub max_steps: Option<u32>,
    /// The caller's span (from `traceparent`): the run's root becomes its child.
    pub parent: Option<SpanContext>,
}

/// Runs agents: the sandbox their components run in and the telemetry their traces go to.
pub struct Runtime {
    sandbox: Arc<Sandbox>,
    telemetry: Arc<Telemetry>,
}

/// What one run shares with its nodes.
struct RunScope<'a> {
    agent: &'a Agent,
    run_id: &'a str,
    root: &'a SpanHandle,
    usage: &'a Arc<LlmUsage>,
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
        let usage = Arc::new(LlmUsage::default());
        let scope = RunScope {
            agent,
            run_id: &run_id,
            root: &root,
            usage: &usage,
        };

        let mut state = input;
        let mut nodes_run = 0;
        let max_steps = options
            .max_steps
            .or(agent.max_steps)
            .unwrap_or(DEFAULT_MAX_STEPS);
        let outcome = tokio::select! {
            outcome = self.run_loop(&scope, &mut state, &mut nodes_run, max_steps) => outcome,
            reason = interrupt => Err(RunError::Interrupted(reason)),
        };

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
            llm: UsageSnapshot::from(usage.as_ref()),
            llm_provider: agent.llm.provider_name(),
            llm_is_mock: agent.llm.is_mock(),
            duration: started.elapsed(),
        }
    }

    async fn run_loop(
        &self,
        scope: &RunScope<'_>,
        state: &mut Map<String, Value>,
        nodes_run: &mut u32,
        max_steps: u32,
    ) -> Result<(), RunError> {
        let graph = &scope.agent.graph;
        let mut next = graph.entry;
        while let Next::Node(index) = next {
            let name = &graph.nodes[index].name;
            if *nodes_run >= max_steps {
                return Err(RunError::StepLimit {
                    limit: max_steps,
                    node: name.clone(),
                });
            }
            *nodes_run += 1;
            let update = self.run_node(scope, index, state).await?;
            merge_update(state, update);
            next = graph.next(index);
        }
        Ok(())
    }

    /// Runs one node under its own span, a child of `scope.root`.
    async fn run_node(
        &self,
        scope: &RunScope<'_>,
        index: usize,
        state: &Map<String, Value>,
    ) -> Result<Map<String, Value>, RunError> {
        let node = &scope.agent.graph.nodes[index];
        let tracer = self.telemetry.tracer();
        let kind = match node.kind {
            NodeKind::Component { .. } => "component",
            NodeKind::LlmCall { .. } => "llm.call",
        };
        let span = SpanGuard::new(scope.root.child(
            tracer,
            format!("node {}", node.name),
            SpanKind::Internal,
            vec![
                KeyValue::new("kettle.node.name", node.name.clone()),
                KeyValue::new("kettle.node.kind", kind),
                KeyValue::new("kettle.run.id", scope.run_id.to_string()),
            ],
        ));
        let result = match &node.kind {
            NodeKind::Component { config, .. } => {
                self.run_component(scope, index, config, state, span.handle())
                    .await
            }
            NodeKind::LlmCall { with, output } => {
                self.run_llm_call(scope, &node.name, with, output, state, span.handle())
                    .await
            }
        };
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

    async fn run_component(
        &self,
        scope: &RunScope<'_>,
        index: usize,
        config: &Value,
        state: &Map<String, Value>,
        span: &SpanHandle,
    ) -> Result<Map<String, Value>, RunError> {
        let node = &scope.agent.graph.nodes[index].name;
        let component = scope
            .agent
            .component(index)
            .ok_or_else(|| RunError::node(node, "internal", "the component was not prepared"))?;
        let invocation = NodeInvocation {
            run_id: scope.run_id.to_string(),
            node_name: node.clone(),
            attempt: 1,
            config: config.to_string(),
            state: Value::Object(state.clone()).to_string(),
            trace: NodeTrace::with_caps(
                self.telemetry.tracer().clone(),
                span.clone(),
                self.telemetry.caps(),
            ),
            llm: NodeLlm {
                client: scope.agent.llm.clone(),
                usage: scope.usage.clone(),
                content: self.telemetry.content(),
            },
        };
        let output = self
            .sandbox
            .execute(component, invocation)
            .await
            .map_err(|failure| RunError::node(node, failure.kind(), failure.to_string()))?;
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

    async fn run_llm_call(
        &self,
        scope: &RunScope<'_>,
        node: &str,
        with: &Map<String, Value>,
        output: &str,
        state: &Map<String, Value>,
        span: &SpanHandle,
    ) -> Result<Map<String, Value>, RunError> {
        let context = json!({ "state": state, "variables": scope.agent.variables });
        let mut rendered = Map::new();
        for (key, value) in with {
            let value = template::render_value(value, &context).map_err(|e| {
                RunError::node(node, "template", format!("field `with.{key}`: {e}"))
            })?;
            rendered.insert(key.clone(), value);
        }
        let request = llm_node::request_from(&rendered)
            .map_err(|e| RunError::node(node, "invalid_request", e))?;
        let response = traced_call(
            &scope.agent.llm,
            self.telemetry.tracer(),
            span,
            scope.usage,
            self.telemetry.content(),
            request,
        )
        .await
        .map_err(|e| RunError::node(node, e.kind(), e.to_string()))?;
        let mut update = Map::new();
        update.insert(output.to_string(), llm_node::result_value(&response));
        Ok(update)
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

/// A run id: sortable by start time, unique enough to name a file.
fn new_run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:013x}-{:08x}", rand::random::<u32>())
}
