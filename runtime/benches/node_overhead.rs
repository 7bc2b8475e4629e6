//! `node_overhead`: what one node execution costs Kettle — a fresh instance of a trivial
//! component (the echo node, in Rust, Python and JS), the call with a 1 KB or 100 KB JSON
//! state, and its span — measured on the same path the engine takes. `bare_wasmtime` measures
//! the same components with plain wasmtime: the floor.

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kettle::capabilities::{LlmQuota, LlmUsage, NodeLlm, NodeTrace};
use kettle::llm::LlmClient;
use kettle::sandbox::{CompileCache, NodeInvocation, NodeLimits, Sandbox, SandboxConfig};
use kettle::telemetry::{ContentPolicy, SpanHandle, Telemetry, TelemetryConfig};
use opentelemetry::trace::SpanKind;
use serde_json::Value;
use std::sync::Arc;

fn node_overhead(c: &mut Criterion) {
    support::use_shared_toolchains();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let sandbox =
        Sandbox::new(&SandboxConfig::default(), CompileCache::new(cache.path())).expect("sandbox");
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
    let client = Arc::new(LlmClient::mock());
    let usage = Arc::new(LlmUsage::default());

    let mut group = c.benchmark_group("node_overhead");
    for (language, folder) in support::ECHO_NODES {
        let echo = support::echo_component(&runtime, cache.path(), folder);
        let component = sandbox.prepare(&echo).expect("the echo node compiles");
        for bytes in [1024usize, 100 * 1024] {
            let state = support::state_of(bytes);
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(
                BenchmarkId::new(format!("{language}_echo"), format!("{}KB", bytes / 1024)),
                &state,
                |b, state| {
                    b.iter(|| {
                        let span =
                            root.child(&tracer, "node echo".into(), SpanKind::Internal, Vec::new());
                        let invocation = NodeInvocation {
                            run_id: "bench".into(),
                            node_name: "echo".into(),
                            attempt: 1,
                            config: "{}".into(),
                            state: state.clone(),
                            trace: NodeTrace::new(tracer.clone(), span.clone()),
                            llm: NodeLlm {
                                client: client.clone(),
                                usage: usage.clone(),
                                quota: LlmQuota::default(),
                                content: ContentPolicy::default(),
                            },
                            limits: NodeLimits::default(),
                            grants: Arc::default(),
                        };
                        let output = runtime
                            .block_on(sandbox.execute(&component, invocation))
                            .expect("the node runs");
                        span.end();
                        let update: Value =
                            serde_json::from_str(&output.update).expect("JSON update");
                        assert!(update.get("echo").is_some());
                        update
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, node_overhead);
criterion_main!(benches);
