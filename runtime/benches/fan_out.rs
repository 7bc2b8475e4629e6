//! `fan_out`: 1, 10, 100 and 1,000 parallel branches (`dynamic_parallel`), each a component
//! making one LLM call to a local server that answers in 50 ms. Wall time should stay near
//! 50 ms plus overhead, not grow with the number of branches.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{Telemetry, TelemetryConfig};
use std::sync::Arc;
use std::time::Duration;

fn fan_out(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let sandbox = support::sandbox(cache.path());
    let addr = runtime.block_on(support::serve(Duration::from_millis(50)));
    let telemetry =
        Arc::new(Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry"));
    let engine = Runtime::new(sandbox.clone(), telemetry);

    let mut group = c.benchmark_group("fan_out");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for branches in [1usize, 10, 100, 1000] {
        let yaml = format!(
            "name: fanout
settings:
  llm: {{provider: openai, model: bench, base_url: 'http://{addr}/v1', max_concurrency: 1000, max_retries: 0}}
nodes:
  - name: each
    type: dynamic_parallel
    items: \"{{{{ range({branches}) | list }}}}\"
    item_var: item
    max_concurrency: 1000
    component: '{ask}'
    config: {{prefix: 'branch ', from: item, to: answer}}
    output: results
",
            ask = support::ask_node().display()
        );
        let (agent, _dir) = runtime.block_on(support::agent(&yaml, &sandbox, cache.path()));
        group.bench_with_input(
            BenchmarkId::from_parameter(branches),
            &branches,
            |b, &branches| {
                b.iter(|| {
                    let report = support::run_ok(
                        &runtime,
                        &engine,
                        &agent,
                        Default::default(),
                        &RunOptions::default(),
                    );
                    assert_eq!(report.llm.calls, branches as u64);
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, fan_out);
criterion_main!(benches);
