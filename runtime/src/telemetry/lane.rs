//! One exporter behind its own batch processor, with the counts that say what it delivered:
//! spans handed to it, spans exported, and the last export error.

use opentelemetry::Context;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, Span, SpanData, SpanExporter, SpanProcessor,
};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// Queue of the file and console lanes; remote lanes keep the SDK's (2048, `OTEL_BSP_MAX_QUEUE_SIZE`).
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

/// The processor registered with the provider; the telemetry keeps a clone to flush or stop
/// this exporter alone.
#[derive(Debug, Clone)]
pub struct Lane {
    pub name: String,
    /// Flushed when each run ends (local exporters), rather than only at exit.
    pub per_run: bool,
    pub counts: Arc<LaneCounts>,
    processor: Arc<BatchSpanProcessor>,
    stopped: Arc<AtomicBool>,
}

impl Lane {
    /// `per_run` lanes are local (a file, the console): they get a deeper queue, since they
    /// are drained at disk speed and a burst of guest spans must not be dropped from them.
    pub fn new<E: SpanExporter + 'static>(name: String, per_run: bool, exporter: E) -> Self {
        let counts = Arc::new(LaneCounts::default());
        let mut config = BatchConfigBuilder::default();
        if per_run {
            config = config.with_max_queue_size(LOCAL_QUEUE_SIZE);
        }
        let processor = BatchSpanProcessor::builder(Counted::new(exporter, counts.clone()))
            .with_batch_config(config.build())
            .build();
        Self {
            name,
            per_run,
            counts,
            processor: Arc::new(processor),
            stopped: Arc::default(),
        }
    }

    pub fn flush(&self) -> OTelSdkResult {
        self.processor.force_flush()
    }

    /// Stops the lane, waiting at most `timeout`; later calls do nothing.
    pub fn stop(&self, timeout: Duration) -> OTelSdkResult {
        if self.stopped.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        self.processor.shutdown_with_timeout(timeout)
    }
}

impl SpanProcessor for Lane {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        self.processor.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        self.counts.ended.fetch_add(1, Ordering::Relaxed);
        self.processor.on_end(super::redacted::span(span));
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.stop(timeout)
    }
}
