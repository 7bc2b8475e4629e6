//! One served run: admitted, executed on its own task (so that a client who leaves cancels it
//! rather than abandoning it mid-span), bounded in time, recorded, and answered.

use crate::catalog::Served;
use crate::metrics::Metrics;
use crate::registry::{RunBook, RunRecord, Ticket};
use kettle::checkpoint::Checkpoint;
use kettle::engine::{Durability, EventSink, RunError, RunOptions, RunReport};
use opentelemetry::trace::SpanContext;
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// An SSE item: a node event line, or the run's answer.
pub enum Progress {
    Event(String),
    Done(Answer),
}

/// What a run request is answered with.
#[derive(Clone)]
pub struct Answer {
    pub status: &'static str,
    pub body: Value,
    pub traceparent: Option<String>,
}

pub struct RunRequest {
    pub input: Map<String, Value>,
    pub parent: Option<SpanContext>,
    pub timeout: Duration,
    /// Continue a durable run from this checkpoint; what its `interrupt` call returns.
    pub resume: Option<(Checkpoint, Option<Value>)>,
}

/// Held by whoever answers the client; dropping it (the client left) cancels the run.
pub struct ClientGuard(#[allow(dead_code)] oneshot::Sender<()>);

impl ClientGuard {
    pub fn new(client: oneshot::Sender<()>) -> Self {
        Self(client)
    }
}

/// Starts the run on its own task; the answer arrives on the returned channel, after the
/// node events if `progress` was asked for.
pub fn start(
    served: Arc<Served>,
    book: Arc<RunBook>,
    metrics: Arc<Metrics>,
    ticket: Ticket,
    request: RunRequest,
    progress: Option<mpsc::UnboundedSender<Progress>>,
) -> (ClientGuard, oneshot::Receiver<Answer>) {
    let (guard, client_gone) = oneshot::channel::<()>();
    let (answer_tx, answer_rx) = oneshot::channel();
    let sink = event_sink(&served.name, &book, &metrics, progress.clone());
    let mut shutdown = book.cancelled_by_shutdown();
    tokio::spawn(async move {
        let (resume, answer) = match request.resume {
            Some((checkpoint, answer)) => (Some(checkpoint), answer),
            None => (None, None),
        };
        let durable = served.store.clone().map(|store| Durability {
            store,
            agent_file: served.agent_file.clone(),
            resume,
            answer,
        });
        let options = RunOptions {
            parent: request.parent,
            events: Some(sink),
            durable,
            ..RunOptions::default()
        };
        let timeout = request.timeout;
        let interrupt = async move {
            tokio::select! {
                _ = client_gone => "the client disconnected".to_string(),
                _ = tokio::time::sleep(timeout) => format!("the request's timeout of {} ms", timeout.as_millis()),
                _ = shutdown.wait_for(|cancel| *cancel) => "the server shut down past its grace period".to_string(),
            }
        };
        let report = served
            .runtime
            .run(&served.agent, request.input, &options, interrupt)
            .await;
        let answer = answer_of(&report);
        metrics.run_finished(&report, answer.status);
        book.record(RunRecord {
            run_id: report.run_id.clone(),
            agent: report.agent.clone(),
            status: answer.status,
            trace_id: Some(report.trace_id.clone()),
            error: report_error(&report),
            state: Some(report.state.clone()),
            duration_ms: Some(report.duration.as_millis()),
            trace_file: report.trace_file.clone(),
        });
        drop(ticket);
        if let Some(progress) = progress {
            let _ = progress.send(Progress::Done(answer.clone()));
        }
        let _ = answer_tx.send(answer);
    });
    (ClientGuard(guard), answer_rx)
}

/// Run events: to the client's stream if any (node starts and finishes, LLM chunks and calls),
/// to the latency histograms, and the run marked as running in the book from its first node on.
fn event_sink(
    agent: &str,
    book: &Arc<RunBook>,
    metrics: &Arc<Metrics>,
    progress: Option<mpsc::UnboundedSender<Progress>>,
) -> EventSink {
    let agent = agent.to_string();
    let book = book.clone();
    let metrics = metrics.clone();
    EventSink::new(move |line| {
        if let Ok(event) = serde_json::from_str::<Value>(line) {
            let run_id = event["run_id"].as_str().unwrap_or_default();
            match event["event"].as_str() {
                Some("node_start") if book.get(run_id).is_none() => book.record(RunRecord {
                    run_id: run_id.to_string(),
                    agent: agent.clone(),
                    status: "running",
                    trace_id: None,
                    error: None,
                    state: None,
                    duration_ms: None,
                    trace_file: None,
                }),
                Some("node_finish") => {
                    if let Some(ms) = event["duration_ms"].as_f64() {
                        metrics.node_finished(&agent, ms / 1000.0);
                    }
                }
                Some("llm_call") => {
                    if let (Some(provider), Some(model), Some(ms)) = (
                        event["provider"].as_str(),
                        event["model"].as_str(),
                        event["duration_ms"].as_f64(),
                    ) {
                        metrics.llm_call_ended(provider, model, ms / 1000.0);
                    }
                }
                _ => {}
            }
        }
        if let Some(progress) = &progress {
            let _ = progress.send(Progress::Event(line.to_string()));
        }
    })
}

fn report_error(report: &RunReport) -> Option<String> {
    match (&report.outcome, &report.trace_error) {
        (Err(e), _) => Some(kettle::redact::text(&e.to_string()).into_owned()),
        (Ok(()), Some(trace)) => Some(kettle::redact::text(trace).into_owned()),
        (Ok(()), None) => None,
    }
}

fn answer_of(report: &RunReport) -> Answer {
    let status = match (&report.outcome, &report.trace_error) {
        (Ok(()), None) => "ok",
        (Err(RunError::Interrupted(_)), _) => "cancelled",
        (Err(RunError::Paused { .. }), None) => "interrupted",
        _ => "failed",
    };
    let mut body = json!({
        "run_id": report.run_id,
        "agent": report.agent,
        "status": status,
        "trace_id": report.trace_id,
        "state": report.state,
        "nodes_run": report.nodes_run,
        "duration_ms": report.duration.as_millis() as u64,
        "llm": {
            "calls": report.llm.calls,
            "input_tokens": report.llm.input_tokens,
            "output_tokens": report.llm.output_tokens,
        },
    });
    if let Some(error) = report_error(report) {
        body["error"] = Value::String(error);
    }
    if let Err(RunError::Paused {
        node,
        when,
        payload,
    }) = &report.outcome
    {
        let asked = payload
            .as_deref()
            .map(|p| serde_json::from_str(p).unwrap_or_else(|_| Value::String(p.to_string())));
        body["interrupt"] = json!({
            "node": node,
            "when": when,
            "payload": asked,
            "resume": format!("/v1/runs/{}/resume", report.run_id),
        });
    }
    Answer {
        status,
        body,
        traceparent: report.traceparent.clone(),
    }
}
