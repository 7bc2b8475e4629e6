//! `memory`: peak resident memory of one process running 1,000 runs of a small agent at once
//! (one component node making one LLM call to a local server that answers in 50 ms). Not a
//! criterion benchmark: it prints the peak (VmHWM) before and after, and leaves them in
//! `target/tmp/kettle-bench-memory.json` for bench/RESULTS.md.

mod support;

use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{ExporterKind, Telemetry, TelemetryConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 1000;

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn main() {
    // `cargo bench` passes `--bench`; this benchmark has no options.
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let traces = tempfile::tempdir().expect("trace dir");
    let sandbox = support::sandbox(cache.path());
    let addr = runtime.block_on(support::serve(Duration::from_millis(50)));
    let yaml = format!(
        "name: small\nsettings:\n  llm: {{provider: openai, model: bench, base_url: 'http://{addr}/v1', max_concurrency: 1000, max_retries: 0}}\nnodes:\n  - {{name: ask, component: '{}', config: {{prefix: 'q: ', from: topic, to: answer}}}}\n",
        support::ask_node().display()
    );
    let (agent, _dir) = runtime.block_on(support::agent(&yaml, &sandbox, cache.path()));
    let telemetry = Arc::new(
        Telemetry::new(&TelemetryConfig::with_exporters(vec![ExporterKind::File(
            traces.path().to_path_buf(),
        )]))
        .expect("telemetry"),
    );
    let engine = Runtime::new(sandbox, telemetry);
    let options = RunOptions::default();
    let before = peak_rss_mib();
    let started = Instant::now();
    let reports = runtime.block_on(futures::future::join_all((0..RUNS).map(|_| {
        let input = serde_json::from_str(r#"{"topic": "tea"}"#).expect("input");
        engine.run(&agent, input, &options, std::future::pending())
    })));
    let took = started.elapsed();
    let ok = reports.iter().filter(|r| r.outcome.is_ok()).count();
    let after = peak_rss_mib();
    println!(
        "memory: {RUNS} concurrent runs ({ok} ok) in {:.2} s; peak RSS {before:.1} MiB after loading, {after:.1} MiB after the runs ({:.1} KiB per run)",
        took.as_secs_f64(),
        (after - before) * 1024.0 / RUNS as f64
    );
    assert_eq!(ok, RUNS, "every run succeeds");
    // For bench/runtime_report.py, which puts it into bench/RESULTS.md.
    let summary = serde_json::json!({
        "runs": RUNS,
        "ok": ok,
        "seconds": took.as_secs_f64(),
        "before_mib": before,
        "after_mib": after,
        "kib_per_run": (after - before) * 1024.0 / RUNS as f64,
    });
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kettle-bench-memory.json");
    std::fs::write(&path, summary.to_string()).expect("write the memory summary");
}
