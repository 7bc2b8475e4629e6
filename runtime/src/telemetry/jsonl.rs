//! The embedded default exporter: each run's spans appended as JSON lines to its own file.

use super::record::SpanRecord;
use opentelemetry::Value;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Writes spans to `{dir}/{run-id}.jsonl`, one file per registered run.
///
/// Several runs share one exporter, and several runs can share one trace id (each joined the
/// same caller's trace with `--traceparent`), so spans are routed by the `kettle.run.id`
/// attribute every span of a run carries, not by trace id. A run registers before its first
/// span ends and closes its file after the final flush.
#[derive(Debug, Clone)]
pub struct JsonlExporter {
    dir: PathBuf,
    routes: Arc<Mutex<HashMap<String, Sink>>>,
}

#[derive(Debug)]
struct Sink {
    path: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl JsonlExporter {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            routes: Arc::default(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Sends the spans of `run_id` to `{dir}/{run_id}.jsonl` and returns that path.
    pub fn register(&self, run_id: &str) -> PathBuf {
        let path = self.dir.join(format!("{run_id}.jsonl"));
        self.lock().insert(
            run_id.to_string(),
            Sink {
                path: path.clone(),
                writer: None,
            },
        );
        path
    }

    /// Flushes and forgets the file of `run_id`.
    pub fn close(&self, run_id: &str) -> std::io::Result<()> {
        match self.lock().remove(run_id) {
            Some(Sink {
                writer: Some(mut w),
                ..
            }) => w.flush(),
            _ => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sink>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, batch: &[SpanData]) -> std::io::Result<()> {
        let mut routes = self.lock();
        for span in batch {
            let key = match run_of(span) {
                Some(run) => run.to_string(),
                None => span.span_context.trace_id().to_string(),
            };
            let sink = routes.entry(key).or_insert_with_key(|key| {
                // A span of a run nobody registered (or of none): keep it rather than lose it.
                tracing::warn!(key, "span of an unregistered run written to its own file");
                Sink {
                    path: self.dir.join(format!("{key}.jsonl")),
                    writer: None,
                }
            });
            let writer = match &mut sink.writer {
                Some(w) => w,
                None => {
                    std::fs::create_dir_all(&self.dir)?;
                    let file = OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&sink.path)?;
                    sink.writer.insert(BufWriter::new(file))
                }
            };
            serde_json::to_writer(&mut *writer, &SpanRecord::from_span_data(span))?;
            writer.write_all(b"\n")?;
        }
        // Whole batches reach the disk, so a crash loses at most what was never exported.
        for sink in routes.values_mut() {
            if let Some(w) = &mut sink.writer {
                w.flush()?;
            }
        }
        Ok(())
    }
}

impl SpanExporter for JsonlExporter {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        let result = self
            .write(&batch)
            .map_err(|e| OTelSdkError::InternalFailure(format!("cannot write trace file: {e}")));
        std::future::ready(result)
    }
}

/// The run a span belongs to: its `kettle.run.id` attribute.
pub(crate) fn run_of(span: &SpanData) -> Option<&str> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == super::span::RUN_ID_KEY)
        .and_then(|kv| match &kv.value {
            Value::String(s) => Some(s.as_str()),
            _ => None,
        })
}
