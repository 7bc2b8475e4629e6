//! What the capabilities' unit tests share: a tracer whose ended spans are kept in memory.

use crate::telemetry::SpanHandle;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, SpanData, SpanExporter};
use std::sync::{Arc, Mutex, PoisonError};

/// The run id of the test spans.
pub const RUN_ID: &str = "run-1";

/// Keeps every span it is handed.
#[derive(Debug, Clone, Default)]
struct Kept(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Kept {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch);
        std::future::ready(Ok(()))
    }
}

/// A tracer exporting synchronously into memory.
pub struct TestTrace {
    _provider: SdkTracerProvider,
    pub tracer: SdkTracer,
    kept: Kept,
}

impl TestTrace {
    pub fn new() -> Self {
        let kept = Kept::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(kept.clone())
            .build();
        let tracer = provider.tracer("kettle-test");
        Self {
            _provider: provider,
            tracer,
            kept,
        }
    }

    /// A started span standing for a node execution's own span.
    pub fn node_span(&self) -> SpanHandle {
        SpanHandle::root(&self.tracer, "node test".into(), RUN_ID, Vec::new(), None)
    }

    /// The spans ended so far, in the order they ended.
    pub fn ended(&self) -> Vec<SpanData> {
        self.kept
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The ended span named `name`.
    pub fn span(&self, name: &str) -> SpanData {
        self.ended()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no ended span named {name}"))
    }
}

/// The value of attribute `key` on `span`, if set.
pub fn attribute(span: &SpanData, key: &str) -> Option<opentelemetry::Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}
