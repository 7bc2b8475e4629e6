//! `kettle submit`: a run request enqueued for the workers, and its result fetched or awaited.

use crate::WorkerError;
use crate::jet::{Jet, nats_error};
use crate::names::{result_subject, run_subject, token_problem};
use crate::wire::{RunRequest, RunResult};
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use futures::StreamExt;
use std::time::Duration;

/// A run id: sortable by submission time, unique enough to name a run.
pub fn new_run_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{millis:013x}-{:08x}", rand::random::<u32>())
}

/// How a submission went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    Queued,
    /// A request with this run id was queued moments ago (within the duplicate window); this
    /// one was dropped.
    Duplicate,
}

/// Enqueues `request` on `kettle.runs.<agent>`, once per run id.
pub async fn submit(jet: &Jet, request: &RunRequest) -> Result<Submitted, WorkerError> {
    for (what, text) in [
        ("the run id", &request.run_id),
        ("the agent", &request.agent),
    ] {
        if let Some(problem) = token_problem(what, text) {
            return Err(WorkerError::BadRequest(problem));
        }
    }
    let payload =
        serde_json::to_vec(request).map_err(|e| WorkerError::BadRequest(e.to_string()))?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("run-{}", request.run_id).as_str());
    let ack = jet
        .js
        .publish_with_headers(run_subject(&request.agent), headers, payload.into())
        .await
        .map_err(|e| nats_error(&jet.url, e))?
        .await
        .map_err(|e| nats_error(&jet.url, format!("the request was not stored: {e}")))?;
    Ok(if ack.duplicate {
        Submitted::Duplicate
    } else {
        Submitted::Queued
    })
}

/// The result of run `run_id`, if it has ended.
pub async fn fetch_result(jet: &Jet, run_id: &str) -> Result<Option<RunResult>, WorkerError> {
    match jet
        .outcomes
        .get_last_raw_message_by_subject(&result_subject(run_id))
        .await
    {
        Ok(message) => serde_json::from_slice(&message.payload)
            .map(Some)
            .map_err(|e| {
                nats_error(
                    &jet.url,
                    format!("the result of run {run_id} is unreadable: {e}"),
                )
            }),
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(e) => Err(nats_error(
            &jet.url,
            format!("reading the result of run {run_id}: {e}"),
        )),
    }
}

/// Enqueues `request` and waits up to `timeout` for its result.
pub async fn submit_and_wait(
    jet: &Jet,
    request: &RunRequest,
    timeout: Duration,
) -> Result<RunResult, WorkerError> {
    // Listening before submitting, so that a fast result is not missed.
    let mut results = jet
        .client
        .subscribe(result_subject(&request.run_id))
        .await
        .map_err(|e| nats_error(&jet.url, e))?;
    submit(jet, request).await?;
    wait(jet, &request.run_id, &mut results, timeout).await
}

/// Waits up to `timeout` for the result of a run submitted earlier.
pub async fn wait_result(
    jet: &Jet,
    run_id: &str,
    timeout: Duration,
) -> Result<RunResult, WorkerError> {
    let mut results = jet
        .client
        .subscribe(result_subject(run_id))
        .await
        .map_err(|e| nats_error(&jet.url, e))?;
    wait(jet, run_id, &mut results, timeout).await
}

async fn wait(
    jet: &Jet,
    run_id: &str,
    results: &mut async_nats::Subscriber,
    timeout: Duration,
) -> Result<RunResult, WorkerError> {
    if let Some(result) = fetch_result(jet, run_id).await? {
        return Ok(result);
    }
    let message = tokio::time::timeout(timeout, results.next())
        .await
        .map_err(|_| WorkerError::Timeout {
            run_id: run_id.to_string(),
            waited: timeout,
        })?
        .ok_or_else(|| {
            nats_error(
                &jet.url,
                "the connection closed while waiting for the result",
            )
        })?;
    serde_json::from_slice(&message.payload).map_err(|e| {
        nats_error(
            &jet.url,
            format!("the result of run {run_id} is unreadable: {e}"),
        )
    })
}

/// Enqueues every request and waits up to `timeout` for all their results, which are
/// returned in the order they arrived.
pub async fn submit_all_and_wait(
    jet: &Jet,
    requests: &[RunRequest],
    timeout: Duration,
) -> Result<Vec<RunResult>, WorkerError> {
    let mut results = jet
        .client
        .subscribe("kettle.results.>")
        .await
        .map_err(|e| nats_error(&jet.url, e))?;
    let mut waiting: std::collections::HashSet<&str> =
        requests.iter().map(|r| r.run_id.as_str()).collect();
    for request in requests {
        submit(jet, request).await?;
    }
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !waiting.is_empty() {
        let message = tokio::time::timeout_at(deadline, results.next())
            .await
            .map_err(|_| WorkerError::Timeout {
                run_id: format!(
                    "{} runs, such as {}",
                    waiting.len(),
                    waiting.iter().next().copied().unwrap_or_default()
                ),
                waited: timeout,
            })?
            .ok_or_else(|| {
                nats_error(&jet.url, "the connection closed while waiting for results")
            })?;
        let Ok(result) = serde_json::from_slice::<RunResult>(&message.payload) else {
            continue;
        };
        if waiting.remove(result.run_id.as_str()) {
            got.push(result);
        }
    }
    Ok(got)
}
