//! A remote exporter's delivery from its spool: ended spans are encoded and written to the
//! spool by a writer thread (behind the same never-dropping queue as the local exporters, so
//! a span waits for the disk, never for the network), and a sender thread posts the spooled
//! batches oldest first, retrying with exponential backoff while the collector is down or
//! busy. A batch leaves the spool only when the collector accepted it; whatever is left at
//! exit waits for `kettle trace push` or the next start. Counts are kept per run, so that
//! each run's summary says how many of its spans were delivered and where the rest wait.

use super::jsonl::run_of;
use super::local_queue::LocalQueue;
use super::otlp::{self, OtlpClient, SendError};
use super::spool::{Batch, Spool};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Spans the writer queue holds before ending a span waits for the disk.
const QUEUE_SIZE: usize = 16 * 1024;
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A `Retry-After` longer than this is shortened to it.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

/// What became of one run's spans at one destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunDelivery {
    /// Ended and handed to this destination's spool writer.
    pub ended: u64,
    /// Written to the spool.
    pub spooled: u64,
    /// Accepted by the collector (or by another process delivering the same spool).
    pub delivered: u64,
    /// Never reached the spool (it was full, or could not be written), and why.
    pub lost: u64,
    pub lost_why: Option<String>,
}

impl RunDelivery {
    pub fn waiting(&self) -> u64 {
        self.spooled.saturating_sub(self.delivered)
    }

    /// Handed to the spool writer but neither written nor counted lost: still in its queue
    /// when Kettle stopped waiting for it (the flush timeout), so gone with the process.
    pub fn unspooled(&self) -> u64 {
        self.ended.saturating_sub(self.spooled + self.lost)
    }
}

#[derive(Debug, Default)]
struct State {
    batches: VecDeque<Batch>,
    runs: HashMap<String, RunDelivery>,
    last_error: Option<String>,
    /// The collector refused a batch: sending stops, the batches stay.
    refused: bool,
    /// Set by `stop`: deliver what is queued until then, and end.
    deadline: Option<Instant>,
}

/// The state a writer, a sender and the provider share.
#[derive(Debug, Default)]
pub struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn queue(&self, batch: Batch) {
        let mut state = self.lock();
        state.runs.entry(batch.run.clone()).or_default().spooled += batch.spans;
        state.batches.push_back(batch);
        self.wake.notify_all();
    }

    /// `span` was handed to the spool writer: counted against its run (the writer's key).
    pub fn hand(&self, span: &SpanData) {
        let mut state = self.lock();
        let runs = &mut state.runs;
        let Some(run) = run_of(span) else {
            let trace = span.span_context.trace_id().to_string();
            runs.entry(trace).or_default().ended += 1;
            return;
        };
        // Once per span: no new key unless the run is new.
        if let Some(delivery) = runs.get_mut(run) {
            delivery.ended += 1;
        } else {
            runs.entry(run.to_string()).or_default().ended += 1;
        }
    }

    fn lose(&self, run: String, spans: u64, why: String) {
        let mut state = self.lock();
        let entry = state.runs.entry(run).or_default();
        entry.lost += spans;
        entry.lost_why = Some(why);
    }

    pub fn run(&self, run: &str) -> RunDelivery {
        self.lock().runs.get(run).cloned().unwrap_or_default()
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    /// Spans of every run delivered so far.
    pub fn delivered(&self) -> u64 {
        self.lock().runs.values().map(|r| r.delivered).sum()
    }
}

/// Encodes each run's spans of a batch and writes them to the spool.
#[derive(Debug)]
struct SpoolWriter {
    spool: Arc<Spool>,
    resource: Resource,
    shared: Arc<Shared>,
}

impl SpanExporter for SpoolWriter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let mut runs: HashMap<String, Vec<SpanData>> = HashMap::new();
        for span in batch {
            let run = run_of(&span)
                .map_or_else(|| span.span_context.trace_id().to_string(), str::to_string);
            runs.entry(run).or_default().push(span);
        }
        for (run, spans) in runs {
            let n = spans.len() as u64;
            let body = otlp::encode(spans, &self.resource);
            match self.spool.write(&run, n, &body) {
                Ok(batch) => self.shared.queue(batch),
                Err(e) => self.shared.lose(run, n, e.to_string()),
            }
        }
        std::future::ready(Ok(()))
    }
}

/// A remote exporter: its spool, writer queue and sender thread.
#[derive(Debug)]
pub struct SpoolLane {
    pub queue: LocalQueue,
    pub shared: Arc<Shared>,
    pub spool: Arc<Spool>,
    done: Mutex<Option<mpsc::Receiver<()>>>,
}

impl SpoolLane {
    /// Starts the writer and the sender; the sender first takes up the batches earlier
    /// processes left in the spool.
    pub fn start(
        name: &str,
        spool: Spool,
        client: OtlpClient,
        resource: Resource,
    ) -> std::io::Result<Self> {
        let spool = Arc::new(spool);
        let shared = Arc::new(Shared::default());
        shared.lock().batches.extend(spool.pending(&[]));
        let writer = SpoolWriter {
            spool: spool.clone(),
            resource,
            shared: shared.clone(),
        };
        let queue = LocalQueue::new(&format!("{name} (spool)"), writer, QUEUE_SIZE)?;
        let (done_tx, done_rx) = mpsc::channel();
        let sender = Sender {
            spool: spool.clone(),
            client,
            shared: shared.clone(),
        };
        std::thread::Builder::new()
            .name(format!("kettle-trace {name} (send)"))
            .spawn(move || {
                sender.run();
                let _ = done_tx.send(());
            })?;
        Ok(Self {
            queue,
            shared,
            spool,
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// Writes what is queued to the spool, then lets the sender deliver until `timeout` has
    /// passed or nothing is left. What is not delivered by then stays in the spool.
    pub fn stop(&self, timeout: Duration) -> Result<(), Duration> {
        let deadline = Instant::now() + timeout;
        let _ = self.queue.stop(timeout);
        {
            let mut state = self.shared.lock();
            state.deadline = Some(deadline);
            self.shared.wake.notify_all();
        }
        let done = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let left = deadline.saturating_duration_since(Instant::now());
        match done.map(|d| d.recv_timeout(left)) {
            Some(Err(mpsc::RecvTimeoutError::Timeout)) => Err(timeout),
            _ => Ok(()),
        }
    }

    /// Where the batches of `run` wait.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.spool.run_dir(run)
    }
}

/// Posts spooled batches, oldest first.
#[derive(Debug)]
pub struct Sender {
    pub spool: Arc<Spool>,
    pub client: OtlpClient,
    pub shared: Arc<Shared>,
}

impl Sender {
    /// A sender for `batches` that stops at `deadline` (for `kettle trace push`).
    pub fn once(spool: Spool, client: OtlpClient, batches: Vec<Batch>, deadline: Instant) -> Self {
        let shared = Arc::new(Shared::default());
        {
            let mut state = shared.lock();
            for batch in &batches {
                state.runs.entry(batch.run.clone()).or_default().spooled += batch.spans;
            }
            state.batches.extend(batches);
            state.deadline = Some(deadline);
        }
        Self {
            spool: Arc::new(spool),
            client,
            shared,
        }
    }

    /// Delivers until the queue is empty after a stop, the deadline passes, or the collector
    /// refuses a batch.
    pub fn run(&self) {
        let mut attempt: u32 = 0;
        loop {
            let batch = {
                let mut state = self.shared.lock();
                loop {
                    let past = state.deadline.is_some_and(|d| Instant::now() >= d);
                    if state.refused || past {
                        return;
                    }
                    if let Some(batch) = state.batches.front() {
                        break batch.clone();
                    }
                    if state.deadline.is_some() {
                        return;
                    }
                    state = self
                        .shared
                        .wake
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            let deadline = self.shared.lock().deadline;
            match self.send(&batch, deadline) {
                Some(Ok(())) => {
                    attempt = 0;
                    let mut state = self.shared.lock();
                    state.batches.pop_front();
                    state.runs.entry(batch.run.clone()).or_default().delivered += batch.spans;
                }
                Some(Err(SendError::Refused(why))) => {
                    let mut state = self.shared.lock();
                    state.last_error = Some(why);
                    state.refused = true;
                    return;
                }
                Some(Err(SendError::Retry { why, after })) => {
                    let backoff = FIRST_BACKOFF
                        .saturating_mul(1 << attempt.min(16))
                        .min(MAX_BACKOFF)
                        .max(after.unwrap_or_default().min(MAX_RETRY_AFTER));
                    attempt += 1;
                    tracing::debug!(why, ?backoff, "trace export failed; retrying");
                    let mut state = self.shared.lock();
                    state.last_error = Some(why);
                    let until = Instant::now() + backoff;
                    // Sleep the backoff, but wake for a stop so its deadline is kept.
                    while Instant::now() < until {
                        let wait = until.saturating_duration_since(Instant::now());
                        let wait = match state.deadline {
                            Some(d) => wait.min(d.saturating_duration_since(Instant::now())),
                            None => wait,
                        };
                        if wait.is_zero() {
                            break;
                        }
                        state = self
                            .shared
                            .wake
                            .wait_timeout(state, wait)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
                // The lock was not had before the deadline: stop here.
                None => return,
            }
        }
    }

    /// Sends one batch under the spool's lock; `None` when the lock was not had in time.
    /// A batch already gone was delivered by another process: it counts as delivered.
    fn send(&self, batch: &Batch, deadline: Option<Instant>) -> Option<Result<(), SendError>> {
        let Some(_lock) = self.spool.lock(deadline) else {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            return Some(Err(SendError::Retry {
                why: format!("cannot lock the spool {}", self.spool.dir().display()),
                after: None,
            }));
        };
        let body = match std::fs::read(&batch.path) {
            Ok(body) => body,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Some(Ok(())),
            Err(e) => {
                return Some(Err(SendError::Refused(format!(
                    "cannot read the spooled batch {}: {e}",
                    batch.path.display()
                ))));
            }
        };
        let result = self.client.send(body);
        if result.is_ok() {
            self.spool.remove(batch);
        }
        Some(result)
    }
}
