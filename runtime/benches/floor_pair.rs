//! `floor_pair`: Kettle's node path and the bare wasmtime floor, measured alternately in one
//! process. Separate benchmarks run minutes apart, and on a shared machine the speed of the
//! same code drifts between them by more than the gap being measured; here every round times
//! a batch of each, back to back, in alternating order, and the ratio is the median of the
//! rounds' ratios. Prints one JSON object per lane; an unfiltered run also writes them all to
//! `target/tmp/kettle-bench-floor-pair.json` for `bench/runtime_report.py`.

mod support;
// Not in `support`: kettle-cli's benchmarks share that module and do not depend on wasmtime.
#[path = "support/bare.rs"]
mod bare;

use bare::{bare_node, call_echo};
use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig, new_engine};
use serde_json::json;
use std::time::Duration;
use support::alternate::{alternate, time_batch};

const ROUNDS: usize = 21;
const BATCH_TIME: Duration = Duration::from_millis(60);

/// The lanes of one language, as criterion names them: `rust_echo/1KB`, `rust_echo/100KB`.
fn lane_names(language: &str) -> [String; 2] {
    support::ECHO_STATE_BYTES.map(|bytes| format!("{language}_echo/{}KB", bytes / 1024))
}

fn main() {
    support::use_shared_toolchains();
    let filter = support::alternate::filter("floor_pair");
    let wanted = |lane: &str| filter.as_deref().is_none_or(|f| lane.contains(f));
    if !support::ECHO_NODES
        .iter()
        .flat_map(|(language, _)| lane_names(language))
        .any(|lane| wanted(&lane))
    {
        return;
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let sandbox =
        Sandbox::new(&SandboxConfig::default(), CompileCache::new(cache.path())).expect("sandbox");
    let run = support::NodeRun::new();
    let floor_engine = new_engine(&SandboxConfig::default()).expect("engine");
    let mut lanes = Vec::new();
    for (language, folder) in support::ECHO_NODES {
        if !lane_names(language).iter().any(|lane| wanted(lane)) {
            continue;
        }
        let echo = support::echo_component(&runtime, cache.path(), folder);
        let component = sandbox.prepare(&echo).expect("the echo node compiles");
        let floor = bare_node(&floor_engine, &echo);
        for (bytes, lane_name) in support::ECHO_STATE_BYTES
            .into_iter()
            .zip(lane_names(language))
        {
            if !wanted(&lane_name) {
                continue;
            }
            let state = support::state_of(bytes);
            let mut kettle = || {
                run.echo(&runtime, &sandbox, &component, &state);
            };
            let mut bare = || {
                let update = runtime.block_on(call_echo(&floor_engine, &floor, &state, true));
                assert!(update.starts_with('{'));
            };
            // Warm both and size a batch to about BATCH_TIME.
            let one = time_batch(3, &mut kettle).max(time_batch(3, &mut bare));
            let n = ((BATCH_TIME.as_secs_f64() / one) as usize).max(3);
            let pair = alternate(ROUNDS, n, &mut kettle, &mut bare);
            let lane = json!({
                "lane": lane_name,
                "batch": n,
                "rounds": ROUNDS,
                "kettle_s": pair.a_s,
                "floor_s": pair.b_s,
                "ratio": pair.ratio,
                "ratio_min": pair.ratio_min,
                "ratio_max": pair.ratio_max,
            });
            println!("{lane}");
            lanes.push(lane);
        }
    }
    // A filtered run (one lane, as `bench/compare/engine_cost.py` makes every round) only prints.
    if filter.is_none() {
        let out =
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("kettle-bench-floor-pair.json");
        std::fs::write(&out, serde_json::to_string_pretty(&lanes).expect("JSON"))
            .expect("write kettle-bench-floor-pair.json");
    }
}
