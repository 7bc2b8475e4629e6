//! Twenty runs at once in one process, through the library: every run gets its own trace, no
//! span of one run lands in another's trace or file, on the file and the OTLP exporter alike.

use crate::support::otlp_receiver::{Mode, OtlpReceiver};
use crate::support::{Scratch, assert_whole_trace, children, names, repo};
use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{ExporterKind, OtlpTarget, Telemetry, TelemetryConfig, read_trace_file};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

const RUNS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_runs_keep_their_traces_apart() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let shapes = repo().join("tests/nodes/trace-shapes");
    let agent_file = scratch.agent(
        "agent.yaml",
        &format!(
            "name: many\nnodes:\n  - name: first\n    component: {0}\n    config: {{depth: 1, calls: 2}}\n  - name: second\n    component: {0}\n    config: {{calls: 1}}\nedges:\n  - {{from: __start__, to: first}}\n  - {{from: first, to: second}}\n",
            shapes.display()
        ),
    );
    let (sandbox, agent) = scratch.load(&agent_file).await;
    let mut config = TelemetryConfig::with_exporters(vec![
        ExporterKind::File(scratch.traces()),
        ExporterKind::Otlp(OtlpTarget {
            label: "otlp".into(),
            endpoint: receiver.endpoint(),
            headers: Default::default(),
            timeout: Duration::from_secs(10),
        }),
    ]);
    config.spool.dir = scratch.path().join("spool");
    let telemetry = Arc::new(Telemetry::new(&config).expect("telemetry"));
    let runtime = Runtime::new(sandbox, telemetry.clone());

    let options = RunOptions::default();
    let runs = (0..RUNS).map(|i| {
        let mut input = serde_json::Map::new();
        input.insert("i".into(), i.into());
        runtime.run(&agent, input, &options, std::future::pending::<String>())
    });
    let reports = futures::future::join_all(runs).await;
    let warnings = tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .expect("shutdown");
    assert!(warnings.is_empty(), "{warnings:?}");

    let otlp = receiver.spans();
    assert_eq!(
        otlp.len(),
        RUNS * 7,
        "every span of every run reached OTLP once"
    );
    let mut by_trace: HashMap<String, Vec<_>> = HashMap::new();
    for span in otlp {
        by_trace
            .entry(span.trace_id.clone())
            .or_default()
            .push(span);
    }
    assert_eq!(by_trace.len(), RUNS, "one trace per run");

    let mut trace_ids = BTreeSet::new();
    for report in &reports {
        assert!(report.outcome.is_ok(), "{:?}", report.outcome);
        assert!(
            trace_ids.insert(report.trace_id.clone()),
            "trace ids are unique"
        );
        let file = read_trace_file(report.trace_file.as_ref().expect("a trace file"))
            .expect("readable trace");
        for spans in [&file, &by_trace[&report.trace_id]] {
            let root = assert_whole_trace(spans);
            assert_eq!(spans.len(), 7);
            assert!(
                spans.iter().all(|s| s.trace_id == report.trace_id
                    && s.attributes["kettle.run.id"] == report.run_id.as_str()),
                "no span of another run"
            );
            assert_eq!(names(&children(spans, root)), ["node first", "node second"]);
            let ids: BTreeSet<&str> = spans.iter().map(|s| s.span_id.as_str()).collect();
            assert_eq!(ids.len(), 7);
        }
        let i = report.state["i"].as_u64().expect("input kept");
        assert!(file.iter().any(|s| s.attributes.get("input.value")
            == Some(&serde_json::Value::String(format!("{{\"i\":{i}}}")))));
    }
}

/// With the collector hanging, runs are not held up by it (the OTLP lane spools what it cannot
/// deliver), the file copies stay whole, and each run learns that all its spans still wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn runs_finish_while_the_collector_hangs_and_what_waits_is_counted() {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Hang);
    let shapes = repo().join("tests/nodes/trace-shapes");
    let agent_file = scratch.agent(
        "agent.yaml",
        &format!(
            "name: flood\nnodes:\n  - name: shapes\n    component: {}\n    config: {{flood: 200, calls: 1}}\n",
            shapes.display()
        ),
    );
    let (sandbox, agent) = scratch.load(&agent_file).await;
    let mut config = TelemetryConfig::with_exporters(vec![
        ExporterKind::File(scratch.traces()),
        ExporterKind::Otlp(OtlpTarget {
            label: "otlp".into(),
            endpoint: receiver.endpoint(),
            headers: Default::default(),
            timeout: Duration::from_secs(2),
        }),
    ]);
    // Room for the file lane on a loaded machine; the hanging collector costs this at shutdown.
    config.flush_timeout = Duration::from_secs(2);
    config.spool.dir = scratch.path().join("spool");
    let telemetry = Arc::new(Telemetry::new(&config).expect("telemetry"));
    let runtime = Runtime::new(sandbox, telemetry.clone());
    let options = RunOptions::default();
    let runs = (0..RUNS).map(|_| {
        runtime.run(
            &agent,
            serde_json::Map::new(),
            &options,
            std::future::pending::<String>(),
        )
    });
    let reports = futures::future::join_all(runs).await;
    let per_run = 1 + 1 + 200 + 1;
    for report in &reports {
        assert!(report.outcome.is_ok(), "{:?}", report.outcome);
        assert_eq!(report.trace_error, None);
        let file = read_trace_file(report.trace_file.as_ref().expect("a trace file"))
            .expect("readable trace");
        assert_eq!(file.len(), per_run, "the file lane is not affected");
        assert_whole_trace(&file);
    }
    let stopping = telemetry.clone();
    let warnings = tokio::task::spawn_blocking(move || stopping.shutdown())
        .await
        .expect("shutdown");
    assert!(warnings.is_empty(), "{warnings:?}");
    for report in &reports {
        let delivery = telemetry.delivery(&report.run_id);
        assert_eq!(delivery.len(), 1);
        let spans = &delivery[0].spans;
        assert_eq!(
            (spans.spooled, spans.delivered, spans.waiting(), spans.lost),
            (per_run as u64, 0, per_run as u64, 0),
            "{delivery:?}"
        );
        let waiting: usize = std::fs::read_dir(&delivery[0].spool)
            .expect("the run's spool folder")
            .count();
        assert!(waiting > 0, "its batches are on disk");
    }
    assert!(receiver.spans().is_empty());
}
