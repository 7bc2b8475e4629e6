//! What the runtime benchmarks share: a local OpenAI-compatible server with a fixed latency, a
//! sink for OTLP exports, and agents written to a scratch folder and loaded once.
#![allow(dead_code)]

pub mod alternate;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use kettle::capabilities::{LlmGrant, NodeSetup, RunBudget, RunCapabilities, RunSetup};
use kettle::engine::{Agent, RunOptions, RunReport, Runtime, load_agent};
use kettle::llm::LlmClient;
use kettle::sandbox::{
    CompileCache, NodeInvocation, NodeLimits, PreparedComponent, Sandbox, SandboxConfig,
};
use kettle::telemetry::{ContentPolicy, SpanCaps, SpanHandle, Telemetry, TelemetryConfig};
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SdkTracer;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

// The allocator of the `kettle` binary, so that benchmarks measure what users run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The comparison agent's node: one LLM call on a prompt built from the state.
pub fn ask_node() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/compare/kettle/ask")
}

/// Serves on 127.0.0.1: chat completions answered after `latency` (an echo of the last
/// message), and anything else (OTLP exports) accepted at once.
pub async fn serve(latency: Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service =
                    service_fn(move |request: Request<Incoming>| answer(request, latency));
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

async fn answer(
    request: Request<Incoming>,
    latency: Duration,
) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let chat = request.uri().path().ends_with("/chat/completions");
    let body = request.into_body().collect().await?.to_bytes();
    if !chat {
        return Ok(Response::new(Full::new(Bytes::new())));
    }
    tokio::time::sleep(latency).await;
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let last = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("");
    let answer = json!({
        "id": "chatcmpl-bench",
        "model": request["model"],
        "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("re: {last}")}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2}
    });
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(answer.to_string())))
        .expect("response"))
}

/// Writes `yaml` to a scratch folder and loads it; the folder lives as long as the returned guard.
pub async fn agent(yaml: &str, sandbox: &Sandbox, cache: &Path) -> (Agent, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("scratch folder");
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, yaml).expect("write agent");
    let agent = load_agent(&path, sandbox, cache, &|_| {})
        .await
        .expect("the agent loads");
    (agent, dir)
}

/// One run of `agent` from `input`, never interrupted; panics when it fails.
pub fn run_ok(
    runtime: &tokio::runtime::Runtime,
    engine: &Runtime,
    agent: &Agent,
    input: serde_json::Map<String, Value>,
    options: &RunOptions,
) -> RunReport {
    let report = runtime.block_on(engine.run(agent, input, options, std::future::pending()));
    assert!(report.outcome.is_ok(), "{:?}", report.outcome);
    report
}

pub fn sandbox(cache: &Path) -> Arc<Sandbox> {
    Arc::new(Sandbox::new(&SandboxConfig::default(), CompileCache::new(cache)).expect("sandbox"))
}

/// A JSON object of about `bytes` bytes: the state handed to the echo node.
pub fn state_of(bytes: usize) -> String {
    let text = "x".repeat(bytes.saturating_sub(32));
    json!({ "question": "how much does a node cost?", "padding": text }).to_string()
}

/// The states every echo node is called with (`1KB`, `100KB` in the lanes' names).
pub const ECHO_STATE_BYTES: [usize; 2] = [1024, 100 * 1024];

/// The echo node's languages, each with its folder: the same logic in Rust, Python and JS.
pub const ECHO_NODES: [(&str, &str); 3] = [
    ("rust", "tests/nodes/echo"),
    ("python", "tests/polyglot-nodes/echo-py"),
    ("js", "tests/polyglot-nodes/echo-js"),
];

/// Where the Python and JS toolchains are installed (once per target folder, as the tests do).
pub fn toolchains_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("kettle-toolchains")
}

/// Call before any thread starts: sets `KETTLE_TOOLCHAINS_DIR` for this process.
pub fn use_shared_toolchains() {
    // SAFETY: called first thing in the benchmark, before any other thread exists.
    unsafe { std::env::set_var("KETTLE_TOOLCHAINS_DIR", toolchains_dir()) };
}

/// What one node execution gets from its run, as the engine hands it over: a node span under
/// a run's root, the capabilities of a run with the mock LLM client and no budget.
pub struct NodeRun {
    _telemetry: Telemetry,
    tracer: SdkTracer,
    root: SpanHandle,
    capabilities: RunCapabilities,
}

impl NodeRun {
    pub fn new() -> Self {
        let telemetry =
            Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry");
        let tracer = telemetry.tracer().clone();
        let root = SpanHandle::root(
            &tracer,
            "invoke_agent bench".into(),
            "bench",
            Vec::new(),
            None,
        );
        let capabilities = RunCapabilities::configure(&RunSetup {
            run_id: "bench",
            llm: &Arc::new(LlmClient::mock()),
            budget: RunBudget::default(),
            tracer: &tracer,
            span_caps: SpanCaps::default(),
            // One benchmark "run" lasts for every iteration criterion makes: a run's span
            // budget would be spent long before it ends (and the node's LLM calls refused).
            max_spans: u64::MAX,
            content: ContentPolicy::default(),
            answer: None,
            llm_watcher: None,
        });
        Self {
            _telemetry: telemetry,
            tracer,
            root,
            capabilities,
        }
    }

    /// One execution of `component` in a fresh instance, under its own node span, on the
    /// engine's path; returns the state update.
    pub fn execute(
        &self,
        runtime: &tokio::runtime::Runtime,
        sandbox: &Sandbox,
        component: &PreparedComponent,
        node: &str,
        state: String,
    ) -> String {
        let span = self.root.child(
            &self.tracer,
            format!("node {node}"),
            SpanKind::Internal,
            Vec::new(),
        );
        let limits = NodeLimits::default();
        let invocation = NodeInvocation {
            run_id: "bench".into(),
            node_name: node.into(),
            attempt: 1,
            config: "{}".into(),
            state,
            capabilities: Box::new(self.capabilities.prepare(&NodeSetup {
                node,
                span: &span,
                limits: &limits,
                llm: &LlmGrant::default(),
                tape: None,
            })),
            limits,
            grants: Arc::default(),
        };
        let output = runtime
            .block_on(sandbox.execute(component, invocation))
            .expect("the node runs");
        span.end();
        output.update
    }

    /// One execution of the echo node over `state`, its update decoded as the engine decodes
    /// it: Kettle's whole path for one node, as `node_overhead` and `floor_pair` time it.
    pub fn echo(
        &self,
        runtime: &tokio::runtime::Runtime,
        sandbox: &Sandbox,
        component: &PreparedComponent,
        state: &str,
    ) -> Value {
        let update = self.execute(runtime, sandbox, component, "echo", state.to_owned());
        let update: Value = serde_json::from_str(&update).expect("JSON update");
        assert!(update.get("echo").is_some());
        update
    }
}

/// The echo node in `language`, built into `cache`; returns its component.
pub fn echo_component(runtime: &tokio::runtime::Runtime, cache: &Path, folder: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(folder);
    runtime
        .block_on(kettle_build::build_node(
            &dir,
            cache,
            &kettle_build::BuildOptions::default(),
            &|line| eprintln!("{line}"),
        ))
        .unwrap_or_else(|error| panic!("the echo node in {folder} builds: {error}"))
        .wasm
}
