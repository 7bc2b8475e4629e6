//! A run: one root span owned by the host, the graph walked from it (`flow.rs`: routing and
//! parallel groups; `node.rs`: one node's attempts and executions; `steps.rs`: actions, steps
//! and loops inside a node; `dynamic.rs`: `dynamic_parallel`), and the trace flushed on every
//! way out. [`Run`] is what one run shares with its nodes and branches; its fields are private
//! to this module and the submodules that make up the run.

mod cores;
mod durable;
mod dynamic;
mod file_action;
mod flow;
mod inline;
mod join;
mod llm_node;
mod node;
mod resume;
mod steps;

pub use flow::PARALLEL_RESULTS;

use super::agent::Agent;
use super::error::RunError;
use super::events::EventSink;
use super::report::{RunReport, UsageSnapshot};
use crate::capabilities::{RunCapabilities, RunSetup};
use crate::checkpoint::{Checkpoint, CheckpointStore, RunRecord, RunStatus, now_ms};
use crate::sandbox::Sandbox;
use crate::spec::LimitsSpec;
use crate::telemetry::{
    SpanGuard, SpanHandle, Telemetry, root_attributes, root_input, root_output,
};
use durable::DurableRun;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanContext;
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
    /// Receives one event per node start and finish, streamed LLM delta and LLM call
    /// (`kettle run --events`).
    pub events: Option<EventSink>,
    /// Limits that beat every node's own and `settings.limits` (`--limit`).
    pub limits: LimitsSpec,
    /// The caller's span (from `traceparent`): the run's root becomes its child.
    pub parent: Option<SpanContext>,
    /// A durable run: checkpointed to this store, or resumed from one of its checkpoints.
    pub durable: Option<Durability>,
    /// The run's id when the caller chooses it (a queued request's id, so that whichever
    /// worker runs or resumes it uses the same); a resumed run keeps its checkpoint's.
    pub run_id: Option<String>,
}

/// How a run is made durable.
#[derive(Debug, Clone)]
pub struct Durability {
    pub store: Arc<dyn CheckpointStore>,
    /// The agent file, recorded so that `kettle resume` finds it.
    pub agent_file: String,
    /// Resume this checkpoint (of the run it names): its position, steps, usage and trace.
    pub resume: Option<Checkpoint>,
    /// What the first `interrupt` call of the resumed run returns.
    pub answer: Option<Value>,
}

/// Runs agents: the sandbox their components run in and the telemetry their traces go to.
pub struct Runtime {
    sandbox: Arc<Sandbox>,
    telemetry: Arc<Telemetry>,
}

/// What one run shares with its nodes and branches.
struct Run<'a> {
    telemetry: &'a Telemetry,
    agent: &'a Agent,
    options: &'a RunOptions,
    run_id: &'a str,
    root: &'a SpanHandle,
    /// The capabilities' run-wide state (the LLM client, budget and usage, ...).
    capabilities: &'a RunCapabilities,
    /// The run's node executions, each a task of the runtime (so branches use every core),
    /// and its interpreter instances for inline code (never shared with another run).
    tasks: cores::NodeTasks,
    /// Node executions so far, across all branches.
    steps: AtomicU32,
    max_steps: u32,
    events: Option<&'a EventSink>,
    /// The checkpoint store and live position of a durable run.
    durable: Option<DurableRun>,
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
        let mut input = input;
        if !agent.initial_state.is_empty() {
            let mut seeded = agent.initial_state.clone();
            seeded.extend(input);
            input = seeded;
        }
        let resume = options.durable.as_ref().and_then(|d| d.resume.as_ref());
        let run_id = resume.map_or_else(
            || options.run_id.clone().unwrap_or_else(new_run_id),
            |c| c.run_id.clone(),
        );
        let tracer = self.telemetry.tracer();
        let content = self.telemetry.content();
        let trace_file = self.telemetry.register_run(&run_id);
        // A resumed run continues its trace: its root is a child of the original root, and
        // the spans the crash left unwritten get stand-ins.
        let original_root =
            resume.and_then(|c| resume::original_root(&c.trace_id, &c.root_span_id));
        if let (Some(root), Some(durable)) = (&original_root, &options.durable) {
            let started = durable
                .store
                .run(&run_id)
                .ok()
                .flatten()
                .map_or_else(now_ms, |r| r.created_ms);
            resume::stand_ins(
                tracer,
                trace_file.as_deref(),
                root,
                &agent.name,
                &run_id,
                started,
            );
        }
        let mut attributes = root_attributes(&agent.name, &run_id, &input);
        if let Some(checkpoint) = resume {
            attributes.push(KeyValue::new(
                "kettle.run.resumed_from",
                checkpoint.seq as i64,
            ));
        }
        let root = SpanHandle::root(
            tracer,
            format!("invoke_agent {}", agent.name),
            &run_id,
            attributes,
            original_root.clone().or_else(|| options.parent.clone()),
        );
        if root.is_recording() {
            for attribute in root_input(&input, content) {
                root.set_attribute(attribute);
            }
        }
        let trace_id = root.trace_id();
        let traceparent = root
            .trace_headers()
            .into_iter()
            .find_map(|(name, value)| (name == "traceparent").then_some(value));
        // An unsampled run (settings.tracing.sample_ratio) writes no file.
        let trace_file = trace_file.filter(|_| root.is_recording());
        let root_guard = SpanGuard::new(root.clone());
        let capabilities = RunCapabilities::configure(&RunSetup {
            run_id: &run_id,
            llm: &agent.llm,
            budget: agent.budget,
            tracer,
            span_caps: self.telemetry.caps(),
            max_spans: agent.max_spans,
            content,
            answer: options
                .durable
                .as_ref()
                .and_then(|d| d.answer.as_ref())
                .map(Value::to_string),
            llm_watcher: options.events.as_ref().map(|e| e.llm_watcher(&run_id)),
        });
        if let Some(checkpoint) = resume {
            let usage = &capabilities.llm.usage;
            usage.calls.store(checkpoint.usage.calls, Ordering::Relaxed);
            usage
                .restored_calls
                .store(checkpoint.usage.calls, Ordering::Relaxed);
            usage
                .input_tokens
                .store(checkpoint.usage.input_tokens, Ordering::Relaxed);
            usage
                .output_tokens
                .store(checkpoint.usage.output_tokens, Ordering::Relaxed);
        }
        let (durable, setup_error) = match &options.durable {
            Some(d) => match start_durable(d, agent, &run_id, &root) {
                Ok(durable) => (Some(durable), None),
                Err(e) => (None, Some(e)),
            },
            None => (None, None),
        };
        let run = Run {
            telemetry: &self.telemetry,
            agent,
            options,
            run_id: &run_id,
            root: &root,
            capabilities: &capabilities,
            tasks: cores::NodeTasks::new(self.sandbox.clone()),
            steps: AtomicU32::new(resume.map_or(0, |c| c.steps)),
            max_steps: options
                .max_steps
                .or(agent.max_steps)
                .unwrap_or(DEFAULT_MAX_STEPS),
            events: options.events.as_ref(),
            durable,
        };

        let mut state = input;
        let resumed = resume.map(|c| c.position.clone());
        let outcome = match setup_error {
            Some(e) => Err(e),
            None => tokio::select! {
                outcome = run.run_graph(&mut state, resumed) => outcome,
                reason = interrupt => Err(RunError::Interrupted(reason)),
            },
        };
        // Executions of branches that were dropped (a failing sibling, an interrupt) are
        // aborted; their spans must be closed before the root is and the trace flushed.
        let still_running = run.tasks.drain().await;
        if still_running > 0 {
            tracing::warn!(
                run = %run_id,
                still_running,
                "node executions did not stop in time; their spans may be missing from the trace"
            );
        }
        match &outcome {
            Ok(()) => run.finish_durable(RunStatus::Completed),
            Err(RunError::Paused { .. }) => run.finish_durable(RunStatus::Interrupted),
            // Killed from outside (Ctrl-C, SIGTERM): resumable, as after a crash.
            Err(RunError::Interrupted(_)) => {}
            Err(_) => run.finish_durable(RunStatus::Failed),
        }
        let nodes_run = run.steps.load(Ordering::Relaxed);

        if root.is_recording() {
            for attribute in root_output(&state, content) {
                root.set_attribute(attribute);
            }
        }
        let spans_refused = capabilities.trace.spans.refused();
        if spans_refused > 0 {
            root.set_attribute(KeyValue::new("kettle.spans.refused", spans_refused as i64));
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
            traceparent,
            trace_file,
            trace_error,
            outcome,
            state,
            nodes_run,
            llm: UsageSnapshot::from(capabilities.llm.usage.as_ref()),
            llm_provider: agent.llm.provider_name(),
            llm_is_mock: agent.llm.is_mock(),
            spans_refused,
            max_spans: agent.max_spans,
            duration: started.elapsed(),
        }
    }
}

/// Records the run in the store (a resumed run keeps its original trace and root ids, so
/// that every segment links to the same root).
fn start_durable(
    durable: &Durability,
    agent: &Agent,
    run_id: &str,
    root: &SpanHandle,
) -> Result<DurableRun, RunError> {
    let resume = durable.resume.as_ref();
    let (trace_id, root_span_id) = match resume {
        Some(c) => (c.trace_id.clone(), c.root_span_id.clone()),
        None => (root.trace_id().to_string(), root.span_id().to_string()),
    };
    let now = now_ms();
    durable
        .store
        .put_run(&RunRecord {
            run_id: run_id.to_string(),
            agent: agent.name.clone(),
            agent_file: durable.agent_file.clone(),
            status: RunStatus::Running,
            trace_id: trace_id.clone(),
            root_span_id: root_span_id.clone(),
            created_ms: now,
            updated_ms: now,
            checkpoints: 0,
        })
        .map_err(|e| RunError::Checkpoint(e.to_string()))?;
    let pass_before = resume
        .and_then(|c| c.interrupt.as_ref())
        .filter(|i| i.when == "before")
        .map(|i| i.node.clone());
    Ok(DurableRun::new(
        durable.store.clone(),
        trace_id,
        root_span_id,
        resume.map(|c| c.seq),
        pass_before,
    ))
}

/// A run id: sortable by start time, unique enough to name a file.
fn new_run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:013x}-{:08x}", rand::random::<u32>())
}
