//! The queue of a local exporter (the file, the console), which never drops a span: finished
//! spans go to the exporter's own writer thread through a bounded channel, and a span that
//! finds it full waits for room (backpressure on whoever ended it, at disk speed) instead of
//! being dropped. What the exporter fails to write is counted against the runs the spans
//! belong to, so each run learns whether its trace is whole.

use super::jsonl::run_of;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

/// Spans exported at once by the writer thread.
const MAX_BATCH: usize = 512;

/// Spans of one run that did not reach the exporter, and the last reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loss {
    pub spans: u64,
    pub why: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QueueError {
    #[error("the exporter is stopped")]
    Stopped,
    #[error("it did not write its queue within {:.1} s", .0.as_secs_f64())]
    Timeout(Duration),
}

enum Message {
    Span(Box<SpanData>),
    /// Export what came before, then answer.
    Flush(mpsc::Sender<()>),
}

#[derive(Debug, Default)]
struct Losses(Mutex<HashMap<String, Loss>>);

impl Losses {
    fn add(&self, run: String, spans: u64, why: &str) {
        let mut losses = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let loss = losses.entry(run).or_default();
        loss.spans += spans;
        loss.why = why.to_string();
    }

    fn get(&self, run: &str) -> Option<Loss> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(run)
            .cloned()
    }

    fn take(&self, run: &str) -> Option<Loss> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(run)
    }
}

/// A local exporter behind its writer thread.
#[derive(Debug)]
pub struct LocalQueue {
    /// `None` once stopped.
    sender: RwLock<Option<SyncSender<Message>>>,
    losses: Arc<Losses>,
    /// Receives once when the writer thread has exported everything and stopped.
    done: Mutex<Option<Receiver<()>>>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Message::Span(_) => "Span",
            Message::Flush(_) => "Flush",
        })
    }
}

impl LocalQueue {
    /// Starts the writer thread of `exporter`, behind a queue of `capacity` spans.
    pub fn new<E: SpanExporter + 'static>(
        name: &str,
        exporter: E,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(capacity.max(1));
        let (done_tx, done_rx) = mpsc::channel();
        let losses = Arc::new(Losses::default());
        let thread_losses = losses.clone();
        std::thread::Builder::new()
            .name(format!("kettle-trace {name}"))
            .spawn(move || {
                write_all(exporter, &receiver, &thread_losses);
                let _ = done_tx.send(());
            })?;
        Ok(Self {
            sender: RwLock::new(Some(sender)),
            losses,
            done: Mutex::new(Some(done_rx)),
        })
    }

    /// Queues a finished span, waiting for room if the queue is full.
    pub fn push(&self, span: SpanData) {
        let sender = self.sender.read().unwrap_or_else(PoisonError::into_inner);
        let refused =
            match sender.as_ref() {
                Some(sender) => sender
                    .send(Message::Span(Box::new(span)))
                    .err()
                    .and_then(|e| match e.0 {
                        Message::Span(span) => Some(span),
                        Message::Flush(_) => None,
                    }),
                None => Some(Box::new(span)),
            };
        if let Some(span) = refused {
            self.losses.add(
                run_key(&span),
                1,
                "the span ended after the exporter was stopped",
            );
        }
    }

    /// Waits until every span queued before this call is exported (or failed to be).
    pub fn flush(&self, timeout: Duration) -> Result<(), QueueError> {
        let (reply, answer) = mpsc::channel();
        {
            let sender = self.sender.read().unwrap_or_else(PoisonError::into_inner);
            let sender = sender.as_ref().ok_or(QueueError::Stopped)?;
            sender
                .send(Message::Flush(reply))
                .map_err(|_| QueueError::Stopped)?;
        }
        answer.recv_timeout(timeout).map_err(|e| match e {
            RecvTimeoutError::Timeout => QueueError::Timeout(timeout),
            RecvTimeoutError::Disconnected => QueueError::Stopped,
        })
    }

    /// What was lost of run `run_id`'s spans so far.
    pub fn loss(&self, run_id: &str) -> Option<Loss> {
        self.losses.get(run_id)
    }

    /// What was lost of run `run_id`'s spans so far; forgets it.
    pub fn take_loss(&self, run_id: &str) -> Option<Loss> {
        self.losses.take(run_id)
    }

    /// Closes the queue and waits at most `timeout` for the writer to export what is in it.
    /// Later calls return at once.
    pub fn stop(&self, timeout: Duration) -> Result<(), QueueError> {
        self.sender
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let done = self
            .done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match done.map(|done| done.recv_timeout(timeout)) {
            Some(Err(RecvTimeoutError::Timeout)) => Err(QueueError::Timeout(timeout)),
            _ => Ok(()),
        }
    }
}

/// The writer thread: exports what arrives, in batches, until the queue is closed.
fn write_all<E: SpanExporter>(mut exporter: E, receiver: &Receiver<Message>, losses: &Losses) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Ok(first) = receiver.recv() {
        let mut next = Some(first);
        while let Some(message) = next {
            match message {
                Message::Span(span) => {
                    batch.push(*span);
                    if batch.len() >= MAX_BATCH {
                        export(&exporter, &mut batch, losses);
                    }
                }
                Message::Flush(reply) => {
                    export(&exporter, &mut batch, losses);
                    let _ = reply.send(());
                }
            }
            next = receiver.try_recv().ok();
        }
        export(&exporter, &mut batch, losses);
    }
    let _ = exporter.shutdown();
}

fn export<E: SpanExporter>(exporter: &E, batch: &mut Vec<SpanData>, losses: &Losses) {
    if batch.is_empty() {
        return;
    }
    let mut runs: HashMap<String, u64> = HashMap::new();
    for span in batch.iter() {
        *runs.entry(run_key(span)).or_default() += 1;
    }
    let spans = std::mem::replace(batch, Vec::with_capacity(MAX_BATCH));
    if let Err(e) = futures::executor::block_on(exporter.export(spans)) {
        let why = e.to_string();
        for (run, spans) in runs {
            losses.add(run, spans, &why);
        }
    }
}

/// The run a span is counted against: its `kettle.run.id`, else its trace id.
fn run_key(span: &SpanData) -> String {
    run_of(span).map_or_else(|| span.span_context.trace_id().to_string(), str::to_string)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::telemetry::span::RUN_ID_KEY;
    use opentelemetry::KeyValue;
    use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId};
    use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::time::SystemTime;

    /// Counts what it exports; fails while `fail` is set; slow, so the queue fills.
    #[derive(Debug, Clone, Default)]
    struct Slow {
        exported: Arc<AtomicUsize>,
        fail: Arc<AtomicBool>,
    }

    impl SpanExporter for Slow {
        fn export(
            &self,
            batch: Vec<SpanData>,
        ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
            std::thread::sleep(Duration::from_millis(1));
            let result = if self.fail.load(Ordering::SeqCst) {
                Err(OTelSdkError::InternalFailure("disk full".into()))
            } else {
                self.exported.fetch_add(batch.len(), Ordering::SeqCst);
                Ok(())
            };
            std::future::ready(result)
        }
    }

    /// A span of run `run`.
    pub(in crate::telemetry) fn span(run: &str, id: u64) -> SpanData {
        SpanData {
            span_context: SpanContext::new(
                TraceId::from(1),
                SpanId::from(id),
                TraceFlags::SAMPLED,
                false,
                Default::default(),
            ),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "s".into(),
            start_time: SystemTime::now(),
            end_time: SystemTime::now(),
            attributes: vec![KeyValue::new(RUN_ID_KEY, run.to_string())],
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    #[test]
    fn a_full_queue_makes_the_producer_wait_and_loses_nothing() {
        let exporter = Slow::default();
        let queue = LocalQueue::new("test", exporter.clone(), 4).unwrap();
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let queue = &queue;
                s.spawn(move || {
                    for i in 0..500 {
                        queue.push(span("run", t * 1000 + i + 1));
                    }
                });
            }
        });
        queue.flush(Duration::from_secs(30)).unwrap();
        assert_eq!(exporter.exported.load(Ordering::SeqCst), 2000);
        assert_eq!(queue.take_loss("run"), None);
        queue.stop(Duration::from_secs(5)).unwrap();
    }

    #[test]
    fn spans_the_exporter_fails_to_write_are_counted_against_their_run() {
        let exporter = Slow::default();
        let queue = LocalQueue::new("test", exporter.clone(), 16).unwrap();
        exporter.fail.store(true, Ordering::SeqCst);
        for i in 0..3 {
            queue.push(span("a", i + 1));
        }
        queue.push(span("b", 10));
        queue.flush(Duration::from_secs(30)).unwrap();
        assert_eq!(
            queue.take_loss("a"),
            Some(Loss {
                spans: 3,
                why: "Operation failed: disk full".into()
            })
        );
        assert_eq!(queue.take_loss("a"), None, "taken once");
        assert_eq!(queue.take_loss("b").map(|l| l.spans), Some(1));
        queue.stop(Duration::from_secs(5)).unwrap();
        queue.push(span("c", 11));
        assert_eq!(queue.take_loss("c").map(|l| l.spans), Some(1));
        assert_eq!(
            queue.flush(Duration::from_secs(1)),
            Err(QueueError::Stopped)
        );
    }
}
