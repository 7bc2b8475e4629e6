//! `inline_node`: chains of 2 and 202 nodes of TEA inline Python (`run: |`), each adding one
//! to a counter, run whole through the engine. With one interpreter instance per run (the
//! default), the 202-node chain minus the 2-node one is 200 inline nodes; the 2-node chain is
//! dominated by the first node's instantiation. `isolation: node` chains (a fresh instance per
//! execution) are measured beside them.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{Telemetry, TelemetryConfig};
use serde_json::{Map, Value, json};
use std::sync::Arc;
use std::time::Duration;

/// An agent of `nodes` inline Python nodes in a chain.
fn chain(nodes: usize, isolation: &str) -> String {
    let mut yaml = String::from("name: chain\nnodes:\n");
    for i in 0..nodes {
        yaml.push_str(&format!(
            "  - name: n{i}\n{isolation}    run: |\n      return {{\"n\": state[\"n\"] + 1}}\n"
        ));
    }
    yaml
}

fn inline_node(c: &mut Criterion) {
    support::use_shared_toolchains();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let sandbox = support::sandbox(cache.path());
    let telemetry =
        Arc::new(Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry"));
    let engine = Runtime::new(sandbox.clone(), telemetry);

    let mut group = c.benchmark_group("inline_node");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    for (label, isolation, lengths) in [
        ("per_run", "", [2usize, 202]),
        ("isolation_node", "    isolation: node\n", [2, 22]),
    ] {
        for nodes in lengths {
            let (agent, _dir) = runtime.block_on(support::agent(
                &chain(nodes, isolation),
                &sandbox,
                cache.path(),
            ));
            let mut input = Map::new();
            input.insert("n".into(), json!(0));
            group.bench_with_input(BenchmarkId::new(label, nodes), &nodes, |b, &nodes| {
                b.iter(|| {
                    let report = support::run_ok(
                        &runtime,
                        &engine,
                        &agent,
                        input.clone(),
                        &RunOptions::default(),
                    );
                    assert_eq!(report.state["n"], Value::from(nodes));
                });
            });
        }
    }
    group.finish();
}

criterion_group!(benches, inline_node);
criterion_main!(benches);
