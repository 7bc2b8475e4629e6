//! `kettle worker`: takes run requests from the agents' pull consumers, at most N at once, runs
//! each as a durable run checkpointed in the state bucket (resuming it when the request is a
//! redelivery of a run another worker started), publishes its result, and only then
//! acknowledges the request. While a run is live its request's ack deadline is pushed back
//! (`+WPI`); a request whose attempts keep failing is moved, with its last error, to
//! `kettle.dead.<agent>`.

use crate::WorkerError;
use crate::agents::{self, Served};
use crate::components::{self, Fetched};
use crate::jet::{Jet, nats_error};
use crate::kv_store::KvStore;
use crate::names::{
    RUNS_STREAM, consumer_name, dead_subject, events_subject, result_subject, run_subject,
    token_problem,
};
use crate::submit::fetch_result;
use crate::wire::{DeadLetter, RunRequest, RunResult, RunUsage};
use async_nats::jetstream::consumer::{AckPolicy, pull};
use async_nats::jetstream::{AckKind, Message};
use bytes::Bytes;
use futures::StreamExt;
use kettle::checkpoint::{Checkpoint, CheckpointStore, RunStatus};
use kettle::engine::{Durability, EventSink, RunError, RunOptions, RunReport};
use kettle::telemetry::parse_traceparent;
use serde_json::Map;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// How long one pull waits for a request before asking again.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

pub struct WorkerConfig {
    pub nats_url: String,
    /// Agent files; the worker takes the requests of these agents only.
    pub agents: Vec<PathBuf>,
    /// Runs at once.
    pub concurrency: usize,
    /// How long a request taken may go without word from its worker before JetStream gives
    /// it to another (a live run sends word every third of it).
    pub ack_wait: Duration,
    /// Deliveries of a request before it goes to the dead-letter subject.
    pub max_deliver: i64,
    pub cache_dir: PathBuf,
    pub trace_dir: Option<PathBuf>,
    /// Names this worker in results and logs.
    pub name: String,
    /// Copies of the streams and the bucket, when this worker is the one creating them.
    pub replicas: usize,
}

/// What a worker did, said when it stops.
#[derive(Debug, Default, Clone, Copy)]
pub struct WorkerSummary {
    pub completed: u64,
    pub failed: u64,
    /// Requests handed back to the queue at shutdown (resumed by another worker).
    pub returned: u64,
    pub dead: u64,
}

#[derive(Default)]
struct Counts {
    completed: AtomicU64,
    failed: AtomicU64,
    returned: AtomicU64,
    dead: AtomicU64,
}

/// What one worker shares with its pull loops and runs.
struct Ctx {
    jet: Jet,
    store: Arc<dyn CheckpointStore>,
    config: WorkerConfig,
    counts: Counts,
    stop: watch::Receiver<bool>,
}

/// Runs a worker until `shutdown` resolves; then stops taking requests, hands the runs in
/// flight back to the queue (they resume from their checkpoints elsewhere), and returns.
/// `ready` is told the agents' names and the components fetched for them.
pub async fn work(
    config: WorkerConfig,
    ready: impl FnOnce(&[String], &[Fetched]),
    shutdown: impl Future<Output = ()>,
) -> Result<WorkerSummary, WorkerError> {
    let jet = Jet::connect_with(&config.nats_url, config.replicas).await?;
    let bucket = components::bucket(&jet, config.replicas).await?;
    let (agents, fetched) = agents::load(
        &jet,
        &bucket,
        &config.agents,
        &config.cache_dir,
        config.trace_dir.as_deref(),
    )
    .await?;
    let store: Arc<dyn CheckpointStore> = Arc::new(KvStore::open(&jet));
    let (stop_tx, stop) = watch::channel(false);
    let concurrency = config.concurrency.max(1);
    let slots = Arc::new(Semaphore::new(concurrency));
    let mut consumers = Vec::new();
    for name in agents.keys() {
        let consumer = jet
            .runs
            .get_or_create_consumer(
                &consumer_name(name),
                pull::Config {
                    durable_name: Some(consumer_name(name)),
                    description: Some(format!("Kettle workers running agent {name}")),
                    filter_subject: run_subject(name),
                    ack_policy: AckPolicy::Explicit,
                    ack_wait: config.ack_wait,
                    max_deliver: config.max_deliver,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| nats_error(&jet.url, format!("the consumer for agent {name}: {e}")))?;
        consumers.push((name.clone(), consumer));
    }
    let ctx = Arc::new(Ctx {
        jet,
        store,
        config,
        counts: Counts::default(),
        stop,
    });
    let mut loops = tokio::task::JoinSet::new();
    for (name, consumer) in consumers {
        let Some(served) = agents.get(&name).cloned() else {
            continue;
        };
        loops.spawn(pull_loop(ctx.clone(), consumer, served, slots.clone()));
        loops.spawn(dead_deliveries(ctx.clone(), name));
    }
    let names: Vec<String> = agents.keys().cloned().collect();
    ready(&names, &fetched);
    shutdown.await;
    stop_tx.send_replace(true);
    while loops.join_next().await.is_some() {}
    // Every run hands its request back or finishes; then the slots are all free.
    let _all = slots.acquire_many(concurrency as u32).await;
    shutdown_telemetry(&agents).await;
    let c = &ctx.counts;
    Ok(WorkerSummary {
        completed: c.completed.load(Ordering::SeqCst),
        failed: c.failed.load(Ordering::SeqCst),
        returned: c.returned.load(Ordering::SeqCst),
        dead: c.dead.load(Ordering::SeqCst),
    })
}

async fn shutdown_telemetry(agents: &BTreeMap<String, Arc<Served>>) {
    for (name, served) in agents {
        let telemetry = served.telemetry.clone();
        if let Ok(warnings) = tokio::task::spawn_blocking(move || telemetry.shutdown()).await {
            for warning in warnings {
                tracing::warn!(agent = %name, "{}", kettle::redact::text(&warning));
            }
        }
    }
}

/// Takes one request whenever a slot is free, until the worker stops.
async fn pull_loop(
    ctx: Arc<Ctx>,
    consumer: async_nats::jetstream::consumer::Consumer<pull::Config>,
    served: Arc<Served>,
    slots: Arc<Semaphore>,
) {
    let mut stop = ctx.stop.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let batch = consumer
            .fetch()
            .max_messages(1)
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut batch = match batch {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!("cannot pull requests for agent {}: {e}", served.agent.name);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        match batch.next().await {
            Some(Ok(message)) => {
                tokio::spawn(handle(ctx.clone(), served.clone(), message, slot));
            }
            Some(Err(e)) => {
                tracing::warn!("pulling a request for agent {}: {e}", served.agent.name);
            }
            None => {}
        }
    }
}

/// How one attempt at a request ended.
enum Attempt {
    /// The run ended: publish this result (none: it was published before), then acknowledge.
    Done(Option<Box<RunResult>>),
    /// The worker is stopping: the request goes back to the queue.
    Returned,
    /// Something outside the run went wrong (the store, the agent): try again later.
    Retry(String),
}

async fn handle(ctx: Arc<Ctx>, served: Arc<Served>, message: Message, _slot: OwnedSemaphorePermit) {
    let message = Arc::new(message);
    let delivery = message
        .info()
        .map_or(1, |i| u64::try_from(i.delivered).unwrap_or(1));
    let agent = served.agent.name.clone();
    let request: RunRequest = match serde_json::from_slice(&message.payload) {
        Ok(request) => request,
        Err(e) => {
            let error = format!(
                "the request is not a Kettle run request (JSON with run_id, agent, input): {e}"
            );
            dead(&ctx, &message, &agent, "", delivery, error).await;
            return;
        }
    };
    if let Some(problem) = token_problem("the run id", &request.run_id) {
        dead(&ctx, &message, &agent, &request.run_id, delivery, problem).await;
        return;
    }
    // Word to JetStream every third of the ack deadline while the run is live.
    let beat = {
        let message = message.clone();
        let every = ctx.config.ack_wait / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                if let Err(e) = message.ack_with(AckKind::Progress).await {
                    tracing::warn!("cannot tell NATS a run is in progress: {e}");
                }
            }
        })
    };
    let attempt = attempt(&ctx, &served, &request, delivery).await;
    beat.abort();
    match attempt {
        Attempt::Done(result) => {
            if let Some(result) = result {
                let counter = if result.status == "failed" {
                    &ctx.counts.failed
                } else {
                    &ctx.counts.completed
                };
                if let Err(e) = publish_result(&ctx.jet, &result).await {
                    tracing::warn!("cannot publish the result of run {}: {e}", result.run_id);
                    let _ = message
                        .ack_with(AckKind::Nak(Some(Duration::from_secs(1))))
                        .await;
                    return;
                }
                counter.fetch_add(1, Ordering::SeqCst);
            }
            if let Err(e) = message.double_ack().await {
                tracing::warn!("cannot acknowledge run {}: {e}", request.run_id);
            }
        }
        Attempt::Returned => {
            ctx.counts.returned.fetch_add(1, Ordering::SeqCst);
            let _ = message.ack_with(AckKind::Nak(None)).await;
        }
        Attempt::Retry(error) => {
            tracing::warn!("run {} (delivery {delivery}): {error}", request.run_id);
            let key = error_key(&request.run_id);
            let _ = ctx.jet.state.put(key, Bytes::from(error.clone())).await;
            if i64::try_from(delivery).unwrap_or(i64::MAX) >= ctx.config.max_deliver {
                dead(&ctx, &message, &agent, &request.run_id, delivery, error).await;
            } else {
                let backoff = Duration::from_secs(delivery.min(30));
                let _ = message.ack_with(AckKind::Nak(Some(backoff))).await;
            }
        }
    }
}

/// One attempt at `request`: resumed from its last checkpoint if an earlier delivery got that
/// far, answered from its checkpoint if it already ended.
async fn attempt(ctx: &Ctx, served: &Served, request: &RunRequest, delivery: u64) -> Attempt {
    match fetch_result(&ctx.jet, &request.run_id).await {
        Ok(Some(_)) => return Attempt::Done(None),
        Ok(None) => {}
        Err(e) => return Attempt::Retry(e.to_string()),
    }
    let store = ctx.store.clone();
    let run_id = request.run_id.clone();
    let saved =
        tokio::task::spawn_blocking(move || -> Result<_, kettle::checkpoint::StoreError> {
            let record = store.run(&run_id)?;
            match record {
                Some(r) if r.checkpoints > 0 => {
                    Ok(store.checkpoint(&run_id, None)?.map(|c| (r.status, c)))
                }
                _ => Ok(None),
            }
        })
        .await;
    let saved: Option<(RunStatus, Checkpoint)> = match saved {
        Ok(Ok(saved)) => saved,
        Ok(Err(e)) => return Attempt::Retry(e.to_string()),
        Err(e) => return Attempt::Retry(format!("reading the run's checkpoint: {e}")),
    };
    let result = |status: &str, state, error, trace_id: String, resumed_from| {
        Box::new(RunResult {
            run_id: request.run_id.clone(),
            agent: request.agent.clone(),
            status: status.to_string(),
            state,
            error,
            trace_id,
            worker: ctx.config.name.clone(),
            delivery,
            resumed_from,
            usage: None,
            traceparent: None,
        })
    };
    let resume = match saved {
        Some((RunStatus::Interrupted, c)) => {
            let error = c.interrupt.as_ref().map(|i| {
                format!("the run stopped {} node `{}` (an interrupt); it is checkpointed in the state bucket", i.when, i.node)
            });
            return Attempt::Done(Some(result(
                "interrupted",
                c.position.state,
                error,
                c.trace_id,
                Some(c.seq),
            )));
        }
        // Running or failed when its worker died: resumed. Completed too (its worker died
        // before publishing the result): the resume ends at once, and writes the stand-ins for
        // the spans the dead worker never wrote.
        Some((_, c)) => Some(c),
        None => None,
    };
    let parent = match request.traceparent.as_deref() {
        Some(text) if resume.is_none() => match parse_traceparent(text, None) {
            Ok(parent) => Some(parent),
            Err(e) => {
                return Attempt::Done(Some(result(
                    "failed",
                    Map::new(),
                    Some(format!("the request's traceparent: {e}")),
                    String::new(),
                    None,
                )));
            }
        },
        _ => None,
    };
    let resumed_from = resume.as_ref().map(|c| c.seq);
    let input = if resume.is_some() {
        Map::new()
    } else {
        request.input.clone()
    };
    let options = RunOptions {
        run_id: Some(request.run_id.clone()),
        parent,
        events: Some(events(&ctx.jet, &request.run_id)),
        durable: Some(Durability {
            store: ctx.store.clone(),
            agent_file: served.agent_file.clone(),
            resume,
            answer: None,
        }),
        ..RunOptions::default()
    };
    let mut stop = ctx.stop.clone();
    let stopping = async move {
        let _ = stop.wait_for(|s| *s).await;
        "the worker is stopping; the request goes back to the queue".to_string()
    };
    let report: RunReport = served
        .runtime
        .run(&served.agent, input, &options, stopping)
        .await;
    let trace_id = report.trace_id.clone();
    let usage = RunUsage {
        nodes_run: u64::from(report.nodes_run),
        duration_ms: u64::try_from(report.duration.as_millis()).unwrap_or(u64::MAX),
        llm_calls: report.llm.calls,
        input_tokens: report.llm.input_tokens,
        output_tokens: report.llm.output_tokens,
    };
    let traceparent = report.traceparent.clone();
    let mut attempt = match report.outcome {
        Ok(()) => Attempt::Done(Some(result(
            "completed",
            report.state,
            None,
            trace_id,
            resumed_from,
        ))),
        Err(RunError::Interrupted(_)) => Attempt::Returned,
        Err(RunError::Checkpoint(e)) => {
            // The engine marked the run failed; it is not: the next attempt resumes it.
            let store = ctx.store.clone();
            let run_id = request.run_id.clone();
            let _ =
                tokio::task::spawn_blocking(move || store.set_status(&run_id, RunStatus::Running))
                    .await;
            Attempt::Retry(format!("cannot save the run's checkpoint: {e}"))
        }
        Err(e @ RunError::Paused { .. }) => Attempt::Done(Some(result(
            "interrupted",
            report.state,
            Some(e.to_string()),
            trace_id,
            resumed_from,
        ))),
        Err(e) => Attempt::Done(Some(result(
            "failed",
            report.state,
            Some(e.to_string()),
            trace_id,
            resumed_from,
        ))),
    };
    if let Attempt::Done(Some(result)) = &mut attempt {
        result.usage = Some(usage);
        result.traceparent = traceparent;
    }
    attempt
}

/// Node events, published on `kettle.events.<run>` (core NATS: whoever listens gets them).
fn events(jet: &Jet, run_id: &str) -> EventSink {
    let client = jet.client.clone();
    let io = jet.io.handle().clone();
    let subject = events_subject(run_id);
    EventSink::new(move |line| {
        let (client, subject) = (client.clone(), subject.clone());
        let payload = Bytes::from(line.to_string());
        io.spawn(async move {
            let _ = client.publish(subject, payload).await;
        });
    })
}

/// Publishes `result` in the outcomes stream, once per run id (a second publish within the
/// stream's duplicate window is dropped by JetStream).
async fn publish_result(jet: &Jet, result: &RunResult) -> Result<(), WorkerError> {
    let payload = serde_json::to_vec(result).map_err(|e| nats_error(&jet.url, e))?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("result-{}", result.run_id).as_str());
    jet.js
        .publish_with_headers(result_subject(&result.run_id), headers, payload.into())
        .await
        .map_err(|e| nats_error(&jet.url, e))?
        .await
        .map_err(|e| nats_error(&jet.url, e))?;
    Ok(())
}

/// Gives up on a request: its last error on `kettle.dead.<agent>`, and no more deliveries.
async fn dead(
    ctx: &Ctx,
    message: &Message,
    agent: &str,
    run_id: &str,
    deliveries: u64,
    error: String,
) {
    let letter = DeadLetter {
        run_id: run_id.to_string(),
        agent: agent.to_string(),
        deliveries,
        error,
        request: String::from_utf8_lossy(&message.payload).into_owned(),
    };
    match publish_dead(ctx, &letter).await {
        Ok(()) => {
            let _ = message.ack_with(AckKind::Term).await;
        }
        Err(e) => {
            tracing::warn!("cannot publish the dead letter of run {run_id}: {e}");
            let _ = message
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
        }
    }
}

async fn publish_dead(ctx: &Ctx, letter: &DeadLetter) -> Result<(), String> {
    tracing::warn!(
        "run {} given up after {} deliveries: {}",
        letter.run_id,
        letter.deliveries,
        letter.error
    );
    let payload = serde_json::to_vec(letter).map_err(|e| e.to_string())?;
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("dead-{}", letter.run_id).as_str());
    ctx.jet
        .js
        .publish_with_headers(dead_subject(&letter.agent), headers, payload.into())
        .await
        .map_err(|e| e.to_string())?
        .await
        .map_err(|e| e.to_string())?;
    ctx.counts.dead.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// The advisory JetStream publishes when a request was delivered `max_deliver` times and
/// never acknowledged.
#[derive(serde::Deserialize)]
struct MaxDeliveries {
    stream_seq: u64,
    deliveries: u64,
}

/// Requests whose last delivery died with its worker (killed, out of memory, cut off): no
/// worker saw the attempt fail, so JetStream's advisory says it; one worker of the queue
/// group moves each such request, with the last error an attempt recorded, to
/// `kettle.dead.<agent>`, and removes it from the queue.
async fn dead_deliveries(ctx: Arc<Ctx>, agent: String) {
    let subject = format!(
        "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{RUNS_STREAM}.{}",
        consumer_name(&agent)
    );
    let mut advisories = match ctx
        .jet
        .client
        .queue_subscribe(subject, "kettle-workers".into())
        .await
    {
        Ok(sub) => sub,
        Err(e) => {
            tracing::warn!("cannot listen for requests given up on, for agent {agent}: {e}");
            return;
        }
    };
    let mut stop = ctx.stop.clone();
    loop {
        let advisory = tokio::select! {
            advisory = advisories.next() => match advisory {
                Some(advisory) => advisory,
                None => return,
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        let Ok(advisory) = serde_json::from_slice::<MaxDeliveries>(&advisory.payload) else {
            continue;
        };
        // Gone already: acknowledged late, or handled by another worker.
        let Ok(stored) = ctx.jet.runs.get_raw_message(advisory.stream_seq).await else {
            continue;
        };
        let run_id = serde_json::from_slice::<RunRequest>(&stored.payload)
            .map(|r| r.run_id)
            .unwrap_or_default();
        let recorded = match ctx.jet.state.get(error_key(&run_id)).await {
            Ok(Some(error)) => Some(String::from_utf8_lossy(&error).into_owned()),
            _ => None,
        };
        let error = match recorded {
            Some(error) => format!("its last attempt's worker stopped without a word; the attempt before failed: {error}"),
            None => "every attempt's worker stopped without a word (killed, out of memory, or cut off from NATS); see the workers' logs".to_string(),
        };
        let letter = DeadLetter {
            run_id,
            agent: agent.clone(),
            deliveries: advisory.deliveries,
            error,
            request: String::from_utf8_lossy(&stored.payload).into_owned(),
        };
        match publish_dead(&ctx, &letter).await {
            Ok(()) => {
                let _ = ctx.jet.runs.delete_message(advisory.stream_seq).await;
            }
            Err(e) => tracing::warn!(
                "cannot publish the dead letter of run {}: {e}",
                letter.run_id
            ),
        }
    }
}

/// Where the last failed attempt of a run left its error.
fn error_key(run_id: &str) -> String {
    format!("errors.{run_id}")
}
