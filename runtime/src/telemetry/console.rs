//! The `console` exporter: keeps each run's finished spans and prints the run's tree on stderr
//! when the run ends.

use super::jsonl::run_of;
use super::record::SpanRecord;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug, Clone, Default)]
pub struct ConsoleExporter {
    runs: Arc<Mutex<HashMap<String, Vec<SpanRecord>>>>,
}

impl ConsoleExporter {
    pub fn register(&self, run_id: &str) {
        self.lock().insert(run_id.to_string(), Vec::new());
    }

    /// The spans of `run_id` collected so far; forgets the run.
    pub fn take(&self, run_id: &str) -> Vec<SpanRecord> {
        self.lock().remove(run_id).unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<SpanRecord>>> {
        self.runs.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SpanExporter for ConsoleExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let mut runs = self.lock();
        for span in &batch {
            // Spans of runs that are not registered (already finished) are not printed.
            if let Some(spans) = run_of(span).and_then(|run| runs.get_mut(run)) {
                spans.push(SpanRecord::from_span_data(span));
            }
        }
        std::future::ready(Ok(()))
    }
}
