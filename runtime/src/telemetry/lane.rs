//! One exporter behind its own processor (a spool delivered with retries for a remote
//! exporter, a queue that never drops for a local one), with the counts that say what it
//! delivered: spans handed to it, spans exported, and the last export error.

use super::config::Conventions;
use super::delivery::{RunDelivery, SpoolLane};
use super::local_queue::{LocalQueue, Loss, QueueError};
use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Queue of the file and console lanes, past which ending a span waits for the exporter.
const LOCAL_QUEUE_SIZE: usize = 16 * 1024;

#[derive(Debug, Default)]
pub struct LaneCounts {
    pub ended: AtomicU64,
    pub exported: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

impl LaneCounts {
    pub fn not_delivered(&self) -> u64 {
        self.ended
            .load(Ordering::Relaxed)
            .saturating_sub(self.exported.load(Ordering::Relaxed))
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// An exporter that counts what it exported.
#[derive(Debug)]
pub struct Counted<E> {
    inner: E,
    counts: Arc<LaneCounts>,
}

impl<E: SpanExporter> Counted<E> {
    pub fn new(inner: E, counts: Arc<LaneCounts>) -> Self {
        Self { inner, counts }
    }
}

impl<E: SpanExporter> SpanExporter for Counted<E> {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let n = batch.len() as u64;
        let export = self.inner.export(batch);
        let counts = self.counts.clone();
        async move {
            let result = export.await;
            match &result {
                Ok(()) => {
                    counts.exported.fetch_add(n, Ordering::Relaxed);
                }
                Err(e) => {
                    *counts
                        .last_error
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner) = Some(e.to_string());
                }
            }
            result
        }
    }

    fn shutdown_with_timeout(&mut self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&mut self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// How a lane hands spans to its exporter.
#[derive(Debug)]
enum Processor {
    /// Remote exporters: spans are spooled on disk and delivered from there with retries, so
    /// a slow or dead collector never slows a run, nor loses its spans (see `delivery.rs`).
    Spool(SpoolLane),
    /// Local exporters: a queue that never drops (see `local_queue.rs`).
    Local(LocalQueue),
}

/// The processor registered with the provider; the telemetry keeps a clone to flush or stop
/// this exporter alone.
#[derive(Debug, Clone)]
pub struct Lane {
    pub name: String,
    /// Flushed when each run ends (local exporters), rather than only at exit.
    pub per_run: bool,
    pub counts: Arc<LaneCounts>,
    processor: Arc<Processor>,
    stopped: Arc<AtomicBool>,
    conventions: Conventions,
}

impl Lane {
    /// A local lane (a file, the console): it never drops a span; a burst of guest spans
    /// waits for the exporter instead (see `local_queue.rs`).
    pub fn local<E: SpanExporter + 'static>(name: String, exporter: E) -> std::io::Result<Self> {
        let counts = Arc::new(LaneCounts::default());
        let exporter = Counted::new(exporter, counts.clone());
        let processor = Processor::Local(LocalQueue::new(&name, exporter, LOCAL_QUEUE_SIZE)?);
        Ok(Self {
            name,
            per_run: true,
            counts,
            processor: Arc::new(processor),
            stopped: Arc::default(),
            conventions: Conventions::default(),
        })
    }

    /// A remote lane delivering from its spool.
    pub fn spooled(name: String, lane: SpoolLane) -> Self {
        Self {
            name,
            per_run: false,
            counts: Arc::default(),
            processor: Arc::new(Processor::Spool(lane)),
            stopped: Arc::default(),
            conventions: Conventions::default(),
        }
    }

    /// Spans go out with the attributes of `conventions` added.
    pub fn with_conventions(mut self, conventions: Conventions) -> Self {
        self.conventions = conventions;
        self
    }

    /// What became of run `run_id`'s spans, with the folder where the rest wait (remote lanes).
    pub fn delivery(&self, run_id: &str) -> Option<(RunDelivery, std::path::PathBuf)> {
        match self.processor.as_ref() {
            Processor::Local(_) => None,
            Processor::Spool(lane) => {
                let mut delivery = lane.shared.run(run_id);
                // Spans that never reached the spool writer (ended after the lane stopped).
                if let Some(loss) = lane.queue.loss(run_id) {
                    delivery.lost += loss.spans;
                    delivery.lost_why = Some(loss.why);
                }
                Some((delivery, lane.run_dir(run_id)))
            }
        }
    }

    /// The last error of a remote lane's collector.
    pub fn delivery_error(&self) -> Option<String> {
        match self.processor.as_ref() {
            Processor::Local(_) => None,
            Processor::Spool(lane) => lane.shared.last_error(),
        }
    }

    /// Exports what has ended so far; a local lane waits at most `timeout`.
    pub fn flush(&self, timeout: Duration) -> OTelSdkResult {
        match self.processor.as_ref() {
            Processor::Spool(lane) => lane
                .queue
                .flush(timeout)
                .map_err(|e| OTelSdkError::InternalFailure(e.to_string())),
            Processor::Local(q) => q
                .flush(timeout)
                .map_err(|e| OTelSdkError::InternalFailure(e.to_string())),
        }
    }

    /// Spans of run `run_id` this lane could not deliver so far (local lanes only); forgets them.
    pub fn take_loss(&self, run_id: &str) -> Option<Loss> {
        match self.processor.as_ref() {
            Processor::Spool(_) => None,
            Processor::Local(q) => q.take_loss(run_id),
        }
    }

    /// Stops the lane, waiting at most `timeout`; later calls do nothing.
    pub fn stop(&self, timeout: Duration) -> OTelSdkResult {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        match self.processor.as_ref() {
            Processor::Spool(lane) => lane.stop(timeout).map_err(OTelSdkError::Timeout),
            Processor::Local(q) => q.stop(timeout).map_err(|e| match e {
                QueueError::Timeout(t) => OTelSdkError::Timeout(t),
                e => OTelSdkError::InternalFailure(e.to_string()),
            }),
        }
    }
}

impl SpanProcessor for Lane {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        self.counts.ended.fetch_add(1, Ordering::Relaxed);
        let mut span = super::redacted::span(span);
        super::openinference::enrich(&mut span, self.conventions);
        match self.processor.as_ref() {
            Processor::Spool(lane) => {
                lane.shared.hand(&span);
                lane.queue.push(span);
            }
            Processor::Local(q) => q.push(span),
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush(super::config::DEFAULT_FLUSH_TIMEOUT)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop(timeout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::config::OtlpTarget;
    use crate::telemetry::local_queue::tests::span;
    use crate::telemetry::otlp::OtlpClient;
    use crate::telemetry::spool::Spool;

    /// A remote lane spooling under `root`, whose collector refuses connections.
    fn spooled_lane(root: &std::path::Path) -> Lane {
        let target = OtlpTarget {
            label: "otlp".into(),
            endpoint: "http://127.0.0.1:1/v1/traces".into(),
            headers: Default::default(),
            timeout: Duration::from_secs(1),
        };
        let spool = Spool::open(root, &target, 1 << 20).unwrap();
        let client = OtlpClient::new(&target).unwrap();
        let resource = opentelemetry_sdk::Resource::builder().build();
        Lane::spooled(
            "otlp".into(),
            SpoolLane::start("otlp", spool, client, resource).unwrap(),
        )
    }

    #[test]
    fn a_span_ended_after_a_remote_lane_stopped_is_counted_lost_for_its_run() {
        let root = tempfile::tempdir().unwrap();
        let lane = spooled_lane(root.path());
        lane.stop(Duration::from_millis(200)).unwrap();
        lane.on_end(span("r1", 1));
        let (delivery, _) = lane.delivery("r1").unwrap();
        assert_eq!(delivery.lost, 1, "{delivery:?}");
        assert_eq!(delivery.ended, 1, "{delivery:?}");
        assert_eq!(delivery.unspooled(), 0, "counted as lost, not as unspooled");
        assert_eq!(
            delivery.lost_why.as_deref(),
            Some("the span ended after the exporter was stopped")
        );
        assert_eq!(lane.delivery("r2").unwrap().0, RunDelivery::default());
    }

    #[test]
    fn each_span_handed_to_a_remote_lane_is_spooled_or_accounted_for() {
        let root = tempfile::tempdir().unwrap();
        let lane = spooled_lane(root.path());
        for id in 1..=3 {
            lane.on_end(span("r1", id));
        }
        // The collector is unreachable: the spans wait in the spool.
        let _ = lane.stop(Duration::from_millis(200));
        let (delivery, _) = lane.delivery("r1").unwrap();
        assert_eq!(
            (delivery.ended, delivery.spooled, delivery.unspooled()),
            (3, 3, 0),
            "{delivery:?}"
        );
        assert_eq!(delivery.waiting(), 3);
    }
}
