//! `trace_cost`: the same agent (five component nodes in a row, each one LLM call to a local
//! server answering at once) with tracing off, to the JSON-lines file, and to an OTLP/HTTP
//! receiver on 127.0.0.1.

mod support;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{ExporterKind, OtlpTarget, Telemetry, TelemetryConfig};
use std::sync::Arc;
use std::time::Duration;

fn trace_cost(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let traces = tempfile::tempdir().expect("trace dir");
    let sandbox = support::sandbox(cache.path());
    let addr = runtime.block_on(support::serve(Duration::ZERO));
    let ask = support::ask_node();
    let mut yaml = format!(
        "name: five\nsettings:\n  llm: {{provider: openai, model: bench, base_url: 'http://{addr}/v1', max_retries: 0}}\nnodes:\n"
    );
    for n in 1..=5 {
        let from = if n == 1 {
            "topic".to_string()
        } else {
            format!("s{}", n - 1)
        };
        yaml.push_str(&format!(
            "  - {{name: s{n}, component: '{}', config: {{prefix: 'step {n}: ', from: {from}, to: s{n}}}}}\n",
            ask.display()
        ));
    }
    let (agent, _dir) = runtime.block_on(support::agent(&yaml, &sandbox, cache.path()));

    let exporters = [
        ("off", Vec::new()),
        (
            "file",
            vec![ExporterKind::File(traces.path().to_path_buf())],
        ),
        (
            "otlp",
            vec![ExporterKind::Otlp(OtlpTarget {
                label: "otlp".into(),
                endpoint: format!("http://{addr}/v1/traces"),
                headers: Default::default(),
                timeout: Duration::from_secs(5),
            })],
        ),
    ];
    let mut group = c.benchmark_group("trace_cost");
    group.sample_size(30);
    for (name, exporters) in exporters {
        let mut config = TelemetryConfig::with_exporters(exporters);
        // The OTLP lane spools what it sends: in the scratch folder, not the working one.
        config.spool.dir = traces.path().join("spool");
        let telemetry = Arc::new(Telemetry::new(&config).expect("telemetry"));
        let engine = Runtime::new(sandbox.clone(), telemetry);
        let input: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"topic": "tea"}"#).expect("input");
        group.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                support::run_ok(
                    &runtime,
                    &engine,
                    &agent,
                    input.clone(),
                    &RunOptions::default(),
                );
            });
        });
    }
    group.finish();
}

criterion_group!(benches, trace_cost);
criterion_main!(benches);
