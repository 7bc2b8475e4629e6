//! Helpers shared by the end-to-end tests: running the `kettle` binary in a scratch folder,
//! and reading back the trace it wrote.
#![allow(dead_code)]

pub mod debian;
pub mod keep_alive;
pub mod llm_server;
pub mod openai_server;
pub mod otlp_receiver;
pub mod postgres;
pub mod provider_shapes;
pub mod tiny_server;

use kettle::telemetry::{SpanRecord, read_trace_file};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Environment variables that change where traces go.
const TRACE_ENV: &[&str] = &[
    "TRACEPARENT",
    "KETTLE_SPOOL_DIR",
    "KETTLE_SPOOL_MAX_BYTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    "OTEL_SERVICE_NAME",
    "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
    "OPIK_API_KEY",
    "OPIK_PROJECT_NAME",
    "OPIK_WORKSPACE",
    "OPIK_URL",
    "LANGFUSE_HOST",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
];

/// The repository's root folder.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("repository root")
}

/// A scratch folder with its own compile cache and trace folder.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cache(&self) -> PathBuf {
        self.path().join("cache")
    }

    pub fn traces(&self) -> PathBuf {
        self.path().join("traces")
    }

    /// Writes an agent file and returns its path.
    pub fn agent(&self, name: &str, yaml: &str) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, yaml).expect("write agent");
        path
    }

    /// Loads `agent` through the library, with a sandbox caching into this folder.
    pub async fn load(
        &self,
        agent: &Path,
    ) -> (
        std::sync::Arc<kettle::sandbox::Sandbox>,
        kettle::engine::Agent,
    ) {
        use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig};
        let sandbox = std::sync::Arc::new(
            Sandbox::new(&SandboxConfig::default(), CompileCache::new(self.cache()))
                .expect("sandbox"),
        );
        let agent = kettle::engine::load_agent(agent, &sandbox, &self.cache(), &|_| {})
            .await
            .expect("the agent loads");
        (sandbox, agent)
    }

    /// `kettle ARGS` with this folder's cache and traces.
    pub fn kettle(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_kettle"));
        command
            .current_dir(self.path())
            .env("KETTLE_CACHE_DIR", self.cache())
            // Installed once per target folder (through Kettle's own installer), not per test.
            .env("KETTLE_TOOLCHAINS_DIR", toolchains_dir())
            .env_remove("OTEL_SDK_DISABLED")
            .env_remove("OPENAI_API_KEY");
        // The trace configuration of the machine running the tests must not leak into them.
        for var in TRACE_ENV {
            command.env_remove(var);
        }
        command
    }

    /// Runs `kettle run AGENT --trace-dir traces EXTRA…`.
    pub fn run(&self, agent: &Path, extra: &[&str]) -> Output {
        self.run_command(agent)
            .args(extra)
            .output()
            .expect("kettle runs")
    }

    /// `kettle run AGENT --trace-dir traces`, for a caller that adds arguments or variables.
    pub fn run_command(&self, agent: &Path) -> Command {
        let mut command = self.kettle();
        command
            .arg("run")
            .arg(agent)
            .arg("--trace-dir")
            .arg(self.traces());
        command
    }

    /// The only trace file written so far.
    pub fn only_trace(&self) -> Vec<SpanRecord> {
        let files: Vec<PathBuf> = std::fs::read_dir(self.traces())
            .expect("trace folder exists")
            .map(|e| e.expect("entry").path())
            .collect();
        assert_eq!(files.len(), 1, "expected one trace file, found {files:?}");
        read_trace_file(&files[0]).expect("readable trace")
    }
}

/// The node toolchains (componentize-py, componentize-js) shared by every test.
pub fn toolchains_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kettle-toolchains")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts the run succeeded and returns its final state.
pub fn final_state(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "kettle failed ({}):\n{}",
        output.status,
        stderr(output)
    );
    serde_json::from_slice(&output.stdout).expect("stdout is the final state as JSON")
}

/// Asserts one trace id, one root, and no span whose parent is missing; returns the root.
pub fn assert_whole_trace(spans: &[SpanRecord]) -> &SpanRecord {
    let trace_ids: HashSet<&str> = spans.iter().map(|s| s.trace_id.as_str()).collect();
    assert_eq!(
        trace_ids.len(),
        1,
        "spans belong to several traces: {trace_ids:?}"
    );
    let ids: HashSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
    assert_eq!(ids.len(), spans.len(), "span ids repeat");
    for span in spans {
        if let Some(parent) = &span.parent_span_id {
            assert!(
                ids.contains(parent.as_str()),
                "span `{}` has a missing parent {parent}",
                span.name
            );
        }
    }
    let roots: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.parent_span_id.is_none())
        .collect();
    assert_eq!(
        roots.len(),
        1,
        "expected one root, found {:?}",
        roots.iter().map(|s| &s.name).collect::<Vec<_>>()
    );
    roots[0]
}

/// The one span named `name`.
pub fn span<'a>(spans: &'a [SpanRecord], name: &str) -> &'a SpanRecord {
    let found: Vec<&SpanRecord> = spans.iter().filter(|s| s.name == name).collect();
    assert_eq!(
        found.len(),
        1,
        "expected one span named `{name}`, found {}",
        found.len()
    );
    found[0]
}

/// The children of `parent`, in start order.
pub fn children<'a>(spans: &'a [SpanRecord], parent: &SpanRecord) -> Vec<&'a SpanRecord> {
    let mut kids: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| s.parent_span_id.as_deref() == Some(parent.span_id.as_str()))
        .collect();
    kids.sort_by_key(|s| s.start_time_unix_nano);
    kids
}

pub fn names(spans: &[&SpanRecord]) -> Vec<String> {
    spans.iter().map(|s| s.name.clone()).collect()
}
