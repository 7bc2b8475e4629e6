//! `cpu_fan_out`: 16 parallel branches, each the Python echo node over a 100 KB state — work
//! that is all CPU (instantiating the interpreter, decoding and encoding the state), no I/O.
//! The same agent runs on a one-thread runtime (how every run executed its branches before
//! node executions became tasks) and on a runtime with one worker per core, timed alternately
//! (`support::alternate`: two criterion benchmarks minutes apart measured this machine's drift
//! as much as the cores); the speed-up is the median of the rounds' ratios. Prints a JSON
//! object and writes it to `target/tmp/kettle-bench-cpu-fan-out.json` for
//! `bench/runtime_report.py`.

mod support;

use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{Telemetry, TelemetryConfig};
use serde_json::{Map, Value};
use std::sync::Arc;
use std::time::Duration;
use support::alternate::{alternate, time_batch};

const BRANCHES: usize = 16;
const STATE_BYTES: usize = 100 * 1024;
const ROUNDS: usize = 21;
const BATCH_TIME: Duration = Duration::from_millis(400);

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

fn main() {
    if support::alternate::filter("cpu_fan_out")
        .is_some_and(|f| !"cpu_fan_out/threads".contains(&f))
    {
        return;
    }
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

    let one_thread = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let every_core = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let run_on = |runtime: &tokio::runtime::Runtime| {
        let report = support::run_ok(
            runtime,
            &engine,
            &agent,
            input.clone(),
            &RunOptions::default(),
        );
        assert_eq!(report.state["answered"], Value::from(BRANCHES));
    };
    let mut one = || run_on(&one_thread);
    let mut many = || run_on(&every_core);
    // Warm both (the first runs fill the pool's slots), then size a batch to about BATCH_TIME.
    one();
    many();
    let slowest = time_batch(2, &mut one).max(time_batch(2, &mut many));
    let n = ((BATCH_TIME.as_secs_f64() / slowest) as usize).max(2);
    let pair = alternate(ROUNDS, n, &mut one, &mut many);
    let result = serde_json::json!({
        "branches": BRANCHES,
        "state_bytes": STATE_BYTES,
        "cores": cores,
        "batch": n,
        "rounds": ROUNDS,
        "one_thread_s": pair.a_s,
        "every_core_s": pair.b_s,
        "speedup": pair.ratio,
        "speedup_min": pair.ratio_min,
        "speedup_max": pair.ratio_max,
    });
    println!("{result}");
    let out =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kettle-bench-cpu-fan-out.json");
    std::fs::write(&out, serde_json::to_string_pretty(&result).expect("JSON"))
        .expect("write kettle-bench-cpu-fan-out.json");
}
