//! One run handed to the `RunBackend`: admitted here like a local run (the same concurrency
//! bound, timeout and drain), waited for on its own task (so that a client who leaves frees
//! its slot; the run itself goes on elsewhere), recorded, and answered with a local run's JSON.

use crate::backend::{BackendError, QueuedResult, QueuedRun, RunBackend};
use crate::registry::{RunBook, RunRecord, Ticket};
use crate::runs::{Answer, ClientGuard, Progress};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Hands the run over on its own task; the answer arrives on the returned channel, after the
/// node events if `progress` was asked for.
pub fn start(
    backend: Arc<dyn RunBackend>,
    book: Arc<RunBook>,
    ticket: Ticket,
    run: QueuedRun,
    timeout: Duration,
    progress: Option<mpsc::UnboundedSender<Progress>>,
) -> (ClientGuard, oneshot::Receiver<Answer>) {
    let (guard, mut client_gone) = oneshot::channel::<()>();
    let (answer_tx, answer_rx) = oneshot::channel();
    let mut shutdown = book.cancelled_by_shutdown();
    tokio::spawn(async move {
        let agent = run.agent.clone();
        let (events_tx, mut events_rx) = mpsc::unbounded_channel::<String>();
        let events = progress.is_some().then_some(events_tx);
        let mut waiting = backend.run(run, timeout, events);
        let relay = |line: String| {
            if let Some(progress) = &progress {
                let _ = progress.send(Progress::Event(line));
            }
        };
        let outcome = loop {
            tokio::select! {
                Some(line) = events_rx.recv() => relay(line),
                result = &mut waiting => break Ok(result),
                _ = &mut client_gone => break Err("the client disconnected"),
                _ = shutdown.wait_for(|cancel| *cancel) => break Err("the server shut down past its grace period"),
            }
        };
        while let Ok(line) = events_rx.try_recv() {
            relay(line);
        }
        let answer = match outcome {
            Ok(Ok(result)) => answer_of(&result),
            Ok(Err(error)) => failure(&agent, &error),
            Err(why) => Answer {
                status: "cancelled",
                body: json!({
                    "agent": agent,
                    "status": "cancelled",
                    "error": format!("{why}; the run goes on in the queue, its result is kept: GET /v1/runs/{{id}} with the id the workers give it"),
                }),
                traceparent: None,
            },
        };
        book.record(record_of(&agent, &answer));
        drop(ticket);
        if let Some(progress) = progress {
            let _ = progress.send(Progress::Done(answer.clone()));
        }
        let _ = answer_tx.send(answer);
    });
    (ClientGuard::new(guard), answer_rx)
}

/// The run's record in the server's book; every accepted run gets exactly one final one.
fn record_of(agent: &str, answer: &Answer) -> RunRecord {
    let text = |key: &str| answer.body[key].as_str().map(str::to_string);
    RunRecord {
        run_id: text("run_id").unwrap_or_default(),
        agent: agent.to_string(),
        // A run this server stopped waiting for is, for its book, cancelled here.
        status: match answer.status {
            "ok" | "failed" | "interrupted" => answer.status,
            _ => "cancelled",
        },
        trace_id: text("trace_id"),
        error: text("error"),
        state: answer.body["state"].as_object().cloned(),
        duration_ms: answer.body["duration_ms"].as_u64().map(u128::from),
        trace_file: None,
    }
}

fn failure(agent: &str, error: &BackendError) -> Answer {
    let message = kettle::redact::text(&error.to_string()).into_owned();
    match error {
        BackendError::NoResultYet { run_id, .. } => Answer {
            status: "waiting",
            body: json!({
                "run_id": run_id,
                "agent": agent,
                "status": "queued",
                "error": message,
                "result": format!("/v1/runs/{run_id}"),
            }),
            traceparent: None,
        },
        BackendError::Refused(_) => Answer {
            status: "refused",
            body: json!({ "agent": agent, "status": "refused", "error": message }),
            traceparent: None,
        },
        BackendError::Unavailable(_) => Answer {
            status: "unavailable",
            body: json!({ "agent": agent, "status": "unavailable", "error": message }),
            traceparent: None,
        },
    }
}

/// A local run's answer, from a result that came back: `ok`, `failed` or `interrupted`.
pub fn answer_of(result: &QueuedResult) -> Answer {
    let status = match result.status.as_str() {
        "completed" => "ok",
        "interrupted" => "interrupted",
        _ => "failed",
    };
    let mut body = json!({
        "run_id": result.run_id,
        "agent": result.agent,
        "status": status,
        "trace_id": result.trace_id,
        "state": result.state,
    });
    if let Some(nodes) = result.nodes_run {
        body["nodes_run"] = json!(nodes);
    }
    if let Some(ms) = result.duration_ms {
        body["duration_ms"] = json!(ms);
    }
    if let Some((calls, input, output)) = result.llm {
        body["llm"] = json!({"calls": calls, "input_tokens": input, "output_tokens": output});
    }
    if let Some(worker) = &result.ran_by {
        body["worker"] = Value::String(worker.clone());
    }
    if let Some(error) = &result.error {
        body["error"] = Value::String(kettle::redact::text(error).into_owned());
    }
    Answer {
        status,
        body,
        traceparent: result.traceparent.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(status: &str) -> QueuedResult {
        QueuedResult {
            run_id: "r1".into(),
            agent: "a".into(),
            status: status.into(),
            trace_id: "t".into(),
            ran_by: Some("w1".into()),
            nodes_run: Some(3),
            llm: Some((2, 10, 5)),
            ..QueuedResult::default()
        }
    }

    #[test]
    fn a_result_is_answered_as_a_local_run_is() {
        let ok = answer_of(&result("completed"));
        assert_eq!(ok.status, "ok");
        assert_eq!(ok.body["status"], "ok");
        assert_eq!(ok.body["worker"], "w1");
        assert_eq!(ok.body["nodes_run"], 3);
        assert_eq!(ok.body["llm"]["input_tokens"], 10);
        assert_eq!(answer_of(&result("failed")).status, "failed");
        assert_eq!(answer_of(&result("interrupted")).status, "interrupted");
    }

    #[test]
    fn every_answer_is_recorded_with_a_final_status() {
        // The book counts a run as done only on a final status: a run this server stopped
        // waiting for must not stay in flight, or the drain would never end.
        let waiting = failure(
            "a",
            &BackendError::NoResultYet {
                run_id: "r2".into(),
                message: "no result".into(),
            },
        );
        assert_eq!(waiting.body["status"], "queued");
        assert_eq!(record_of("a", &waiting).status, "cancelled");
        assert_eq!(record_of("a", &waiting).run_id, "r2");
        let down = failure("a", &BackendError::Unavailable("gone".into()));
        assert_eq!(record_of("a", &down).status, "cancelled");
        assert_eq!(
            record_of("a", &answer_of(&result("completed"))).status,
            "ok"
        );
    }
}
