//! `kettle serve --nats`: serve's runs enqueued for the workers (the request `kettle submit`
//! sends), their node events relayed from `kettle.events.<run>`, their results awaited on
//! `kettle.results.<run>` or fetched by run id from the outcomes stream.

use crate::WorkerError;
use crate::jet::{Jet, nats_error};
use crate::names::events_subject;
use crate::submit::{fetch_result, new_run_id, submit_and_wait};
use crate::wire::{RunRequest, RunResult};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use kettle_serve::{BackendError, QueuedResult, QueuedRun, RunBackend};
use std::time::Duration;
use tokio::sync::mpsc;

/// The workers behind a NATS server, as serve's `RunBackend`.
pub struct NatsBackend {
    jet: Jet,
}

impl NatsBackend {
    pub fn new(jet: Jet) -> Self {
        Self { jet }
    }
}

impl RunBackend for NatsBackend {
    fn describe(&self) -> String {
        format!("the workers at NATS {}", self.jet.url)
    }

    fn run(
        &self,
        run: QueuedRun,
        timeout: Duration,
        events: Option<mpsc::UnboundedSender<String>>,
    ) -> BoxFuture<'static, Result<QueuedResult, BackendError>> {
        let jet = self.jet.clone();
        Box::pin(async move {
            let request = RunRequest {
                run_id: new_run_id(),
                agent: run.agent,
                input: run.input,
                traceparent: run.traceparent,
            };
            // Subscribed before the request is queued, so that no event is missed.
            let relay = match events {
                Some(events) => {
                    let lines = jet
                        .client
                        .subscribe(events_subject(&request.run_id))
                        .await
                        .map_err(|e| unavailable(&jet, e))?;
                    let (done, finished) = tokio::sync::oneshot::channel();
                    Some((done, tokio::spawn(relay(lines, events, finished))))
                }
                None => None,
            };
            let result = submit_and_wait(&jet, &request, timeout).await;
            if let Some((done, relay)) = relay {
                let _ = done.send(());
                let _ = relay.await;
            }
            match result {
                Ok(result) => Ok(queued_result(result)),
                Err(e @ WorkerError::Timeout { .. }) => Err(BackendError::NoResultYet {
                    run_id: request.run_id.clone(),
                    message: format!(
                        "{}; it is queued or running on a worker: GET /v1/runs/{} for its result",
                        no_result(&e, &request.run_id),
                        request.run_id
                    ),
                }),
                Err(e @ WorkerError::BadRequest(_)) => Err(BackendError::Refused(e.to_string())),
                Err(e) => Err(BackendError::Unavailable(e.to_string())),
            }
        })
    }

    fn result(
        &self,
        run_id: &str,
    ) -> BoxFuture<'static, Result<Option<QueuedResult>, BackendError>> {
        let jet = self.jet.clone();
        let run_id = run_id.to_string();
        Box::pin(async move {
            // An id that cannot be a subject token was never a run of the workers.
            if crate::names::token_problem("the run id", &run_id).is_some() {
                return Ok(None);
            }
            fetch_result(&jet, &run_id)
                .await
                .map(|found| found.map(queued_result))
                .map_err(|e| BackendError::Unavailable(e.to_string()))
        })
    }
}

/// Sends each event line to `events` until told the run is done; then sends those already
/// received (the connection hands them over in order, so the run's events came before its
/// result) and stops.
async fn relay(
    mut lines: async_nats::Subscriber,
    events: mpsc::UnboundedSender<String>,
    mut done: tokio::sync::oneshot::Receiver<()>,
) {
    let send = |message: &async_nats::Message| {
        events
            .send(String::from_utf8_lossy(&message.payload).into_owned())
            .is_ok()
    };
    loop {
        tokio::select! {
            message = lines.next() => match message {
                Some(message) if send(&message) => {}
                _ => return,
            },
            _ = &mut done => break,
        }
    }
    while let Some(Some(message)) = lines.next().now_or_never() {
        if !send(&message) {
            return;
        }
    }
}

fn no_result(error: &WorkerError, run_id: &str) -> String {
    match error {
        WorkerError::Timeout { waited, .. } => format!(
            "no result for run {run_id} within the request's timeout ({} s)",
            waited.as_secs()
        ),
        other => other.to_string(),
    }
}

fn unavailable(jet: &Jet, error: impl std::fmt::Display) -> BackendError {
    BackendError::Unavailable(nats_error(&jet.url, error).to_string())
}

fn queued_result(result: RunResult) -> QueuedResult {
    QueuedResult {
        run_id: result.run_id,
        agent: result.agent,
        status: result.status,
        state: result.state,
        error: result.error,
        trace_id: result.trace_id,
        traceparent: result.traceparent,
        ran_by: Some(result.worker),
        nodes_run: result.usage.as_ref().map(|u| u.nodes_run),
        duration_ms: result.usage.as_ref().map(|u| u.duration_ms),
        llm: result
            .usage
            .as_ref()
            .map(|u| (u.llm_calls, u.input_tokens, u.output_tokens)),
    }
}
