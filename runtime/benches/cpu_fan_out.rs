//! `cpu_fan_out`: 16 parallel branches, each the Python echo node over a 100 KB state — work
//! that is all CPU (instantiating the interpreter, decoding and encoding the state), no I/O.
//! The same agent runs on a one-thread runtime (how every run executed its branches before
//! node executions became tasks) and on a runtime with one worker per core; the ratio is the
//! speed-up the cores give.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{Telemetry, TelemetryConfig};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

const BRANCHES: usize = 16;
const STATE_BYTES: usize = 100 * 1024;

/// `fork` → 16 echo branches → `join`, which keeps only how many branches answered.
fn agent_yaml(echo: &std::path::Path) -> String {
    let mut yaml = String::from(
        "name: cpu_fan_out\nnodes:\n  - name: fork\n    run: {type: expression, value: \"1\", output_key: forked}\n",
    );
    for i in 0..BRANCHES {
        yaml.push_str(&format!(
            "  - name: b{i}\n    component: '{}'\n    limits: {{memory_mb: 256}}\n",
            echo.display()
        ));
    }
    yaml.push_str(
        "  - name: join\n    fan_in: true\n    run: {type: expression, value: \"parallel_results | length\", output_key: answered}\nedges:\n  - {from: __start__, to: fork}\n",
    );
    for i in 0..BRANCHES {
        yaml.push_str(&format!(
            "  - {{from: fork, to: b{i}, type: parallel, fan_in: join}}\n  - {{from: b{i}, to: join}}\n"
        ));
    }
    yaml.push_str("  - {from: join, to: __end__}\n");
    yaml
}

fn cpu_fan_out(c: &mut Criterion) {
    support::use_shared_toolchains();
    let cache = tempfile::tempdir().expect("cache dir");
    let build = tokio::runtime::Runtime::new().expect("tokio runtime");
    let echo = support::echo_component(&build, cache.path(), "tests/polyglot-nodes/echo-py");
    let sandbox = support::sandbox(cache.path());
    let telemetry =
        Arc::new(Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry"));
    let engine = Runtime::new(sandbox.clone(), telemetry);
    let (agent, _dir) = build.block_on(support::agent(&agent_yaml(&echo), &sandbox, cache.path()));
    let input: Map<String, Value> =
        serde_json::from_str(&support::state_of(STATE_BYTES)).expect("a JSON object");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());

    let mut group = c.benchmark_group("cpu_fan_out");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for threads in [1usize, cores] {
        let runtime = if threads == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            tokio::runtime::Builder::new_multi_thread()
        }
        .enable_all()
        .build()
        .expect("tokio runtime");
        group.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| {
                let report = runtime.block_on(engine.run(
                    &agent,
                    input.clone(),
                    &RunOptions::default(),
                    std::future::pending(),
                ));
                assert!(report.outcome.is_ok(), "{:?}", report.outcome);
                assert_eq!(report.state["answered"], Value::from(BRANCHES));
            });
        });
    }
    group.finish();
}

criterion_group!(benches, cpu_fan_out);
criterion_main!(benches);
