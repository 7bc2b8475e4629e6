//! The embedded default exporter: each run's spans appended as JSON lines to its own file.

use super::record::SpanRecord;
use opentelemetry::trace::TraceId;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

/// Writes spans to `{dir}/{file}.jsonl`, one file per registered trace.
///
/// Several runs share one exporter; a run registers its trace id and the file it wants before
/// its first span ends, and closes it after the final flush.
#[derive(Debug, Clone)]
pub struct JsonlExporter {
    dir: PathBuf,
    routes: Arc<Mutex<HashMap<TraceId, Sink>>>,
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

    /// Sends the spans of `trace_id` to `{dir}/{name}.jsonl` and returns that path.
    pub fn register(&self, trace_id: TraceId, name: &str) -> PathBuf {
        let path = self.dir.join(format!("{name}.jsonl"));
        self.lock().insert(
            trace_id,
            Sink {
                path: path.clone(),
                writer: None,
            },
        );
        path
    }

    /// Flushes and forgets the file of `trace_id`.
    pub fn close(&self, trace_id: TraceId) -> std::io::Result<()> {
        match self.lock().remove(&trace_id) {
            Some(Sink {
                writer: Some(mut w),
                ..
            }) => w.flush(),
            _ => Ok(()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TraceId, Sink>> {
        self.routes.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self, batch: &[SpanData]) -> std::io::Result<()> {
        let mut routes = self.lock();
        for span in batch {
            let trace_id = span.span_context.trace_id();
            let sink = routes.entry(trace_id).or_insert_with(|| {
                // A span of a trace nobody registered: keep it rather than lose it.
                tracing::warn!(%trace_id, "span of an unregistered trace written to its own file");
                Sink {
                    path: self.dir.join(format!("{trace_id}.jsonl")),
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
