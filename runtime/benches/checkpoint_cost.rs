//! `checkpoint_cost`: what durability costs. `save/…`: one checkpoint saved to the SQLite store
//! (a run's position with a 1 KB or 100 KB state), as the engine saves one after every node
//! (goal: ≤ 200 µs for 1 KB); Postgres too when `KETTLE_BENCH_POSTGRES_URL` names an empty
//! database. `run/…`: five component nodes in a row, each one LLM call to a local server
//! answering in 50 ms, with and without checkpoints (goal: ≤ 10% over).

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kettle::checkpoint::{
    Checkpoint, CheckpointStore, PathPos, RunRecord, RunStatus, SqliteStore, UsageUsed, now_ms,
    open_store,
};
use kettle::engine::{Durability, RunOptions, Runtime};
use kettle::telemetry::{Telemetry, TelemetryConfig};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;

const SIZES: [usize; 2] = [1024, 100 * 1024];

/// A state of about `bytes` bytes of JSON.
fn state(bytes: usize) -> Map<String, Value> {
    serde_json::from_str(&support::state_of(bytes)).expect("a JSON object")
}

fn record(run_id: &str) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        agent: "bench".into(),
        agent_file: "/bench/agent.yaml".into(),
        status: RunStatus::Running,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        root_span_id: "b7ad6b7169203331".into(),
        created_ms: now_ms(),
        updated_ms: now_ms(),
        checkpoints: 0,
    }
}

fn checkpoint(run_id: &str, bytes: usize) -> Checkpoint {
    Checkpoint {
        run_id: run_id.into(),
        seq: 0,
        reason: "after node ask".into(),
        position: PathPos {
            done: 3,
            ..PathPos::new(state(bytes), Some("next".into()))
        },
        steps: 3,
        usage: UsageUsed {
            calls: 3,
            input_tokens: 9,
            output_tokens: 6,
        },
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        root_span_id: "b7ad6b7169203331".into(),
        status: RunStatus::Running,
        interrupt: None,
        parent_seq: None,
    }
}

fn saves(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("scratch folder");
    let mut stores: Vec<(&str, Arc<dyn CheckpointStore>)> = vec![(
        "sqlite",
        Arc::new(SqliteStore::open(&dir.path().join("state.db")).expect("the SQLite store")),
    )];
    if let Ok(url) = std::env::var("KETTLE_BENCH_POSTGRES_URL") {
        stores.push((
            "postgres",
            open_store("postgres", Some(&url)).expect("the Postgres store"),
        ));
    }
    let mut group = c.benchmark_group("checkpoint_cost");
    for (name, store) in stores {
        for bytes in SIZES {
            // A run of its own per lane; every iteration adds one checkpoint to it, as a run does.
            let run_id = format!("bench-{name}-{bytes}-{}", now_ms());
            store
                .put_run(&record(&run_id))
                .expect("the run is recorded");
            let checkpoint = checkpoint(&run_id, bytes);
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(
                BenchmarkId::new(format!("save/{name}"), format!("{}KB", bytes / 1024)),
                &checkpoint,
                |b, checkpoint| b.iter(|| store.save(checkpoint).expect("saved")),
            );
        }
    }
    group.finish();
}

fn runs(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let scratch = tempfile::tempdir().expect("scratch folder");
    let sandbox = support::sandbox(cache.path());
    let addr = runtime.block_on(support::serve(Duration::from_millis(50)));
    let telemetry =
        Arc::new(Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry"));
    let engine = Runtime::new(sandbox.clone(), telemetry);
    let ask = support::ask_node();
    let mut yaml = format!(
        "name: five\nsettings:\n  llm: {{provider: openai, model: bench, base_url: 'http://{addr}/v1', max_retries: 0}}\nnodes:\n"
    );
    for n in 1..=5 {
        let from = if n == 1 {
            "question".to_string()
        } else {
            format!("s{}", n - 1)
        };
        yaml.push_str(&format!(
            "  - {{name: s{n}, component: '{}', config: {{prefix: 'step {n}: ', from: {from}, to: s{n}}}}}\n",
            ask.display()
        ));
    }
    let (agent, _dir) = runtime.block_on(support::agent(&yaml, &sandbox, cache.path()));
    let store: Arc<dyn CheckpointStore> =
        Arc::new(SqliteStore::open(&scratch.path().join("state.db")).expect("the SQLite store"));
    let lanes = [
        ("plain", RunOptions::default()),
        (
            "checkpointed",
            RunOptions {
                durable: Some(Durability {
                    store,
                    agent_file: "/bench/five.yaml".into(),
                    resume: None,
                    answer: None,
                }),
                ..RunOptions::default()
            },
        ),
    ];

    let mut group = c.benchmark_group("checkpoint_cost");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(6));
    for bytes in SIZES {
        let input = state(bytes);
        for (name, options) in &lanes {
            group.bench_with_input(
                BenchmarkId::new(format!("run/{name}"), format!("{}KB", bytes / 1024)),
                &input,
                |b, input| {
                    b.iter(|| {
                        let report =
                            support::run_ok(&runtime, &engine, &agent, input.clone(), options);
                        assert_eq!(report.llm.calls, 5);
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, saves, runs);
criterion_main!(benches);
