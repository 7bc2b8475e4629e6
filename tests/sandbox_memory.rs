//! The host's memory returns to its baseline after hostile runs: runs in one process, through
//! the library, with resident memory read from /proc.

#[path = "e2e/support/mod.rs"]
mod support;

use kettle::engine::{RunOptions, Runtime};
use kettle::telemetry::{Telemetry, TelemetryConfig};
use std::sync::Arc;
use support::{Scratch, repo};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("resident pages");
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bombs_and_huge_outputs_leave_no_residue() {
    let scratch = Scratch::new();
    let hostile = repo().join("tests/nodes/hostile");
    let agent_path = scratch.agent(
        "bombs.yaml",
        &format!(
            "name: bombs\nnodes:\n  - name: vec\n    component: {h}\n    config: {{mode: vec-bomb}}\n    limits: {{memory_mb: 128}}\n    on_error: big\n  - name: big\n    component: {h}\n    config: {{mode: big-output, bytes: 50000000}}\n    on_error: done\n  - name: done\n    component: {h}\n    config: {{mode: non-object}}\n    on_error: end\n  - name: end\n    uses: llm.call\n    with: {{prompt: done}}\n",
            h = hostile.display()
        ),
    );
    let (sandbox, agent) = scratch.load(&agent_path).await;
    let telemetry =
        Arc::new(Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry"));
    let runtime = Runtime::new(sandbox, telemetry);
    let run = || async {
        let report = runtime
            .run(
                &agent,
                Default::default(),
                &RunOptions::default(),
                std::future::pending(),
            )
            .await;
        assert!(report.outcome.is_ok(), "{:?}", report.outcome);
        assert_eq!(report.state["error"]["kind"], "bad_output");
    };
    // Warm up: the first runs fault in the pool's slots and the allocator's arenas.
    for _ in 0..3 {
        run().await;
    }
    let baseline = resident_bytes();
    for _ in 0..10 {
        run().await;
    }
    let after = resident_bytes();
    let growth = after.saturating_sub(baseline);
    eprintln!(
        "resident memory: {} MiB after warm-up, {} MiB after 10 more runs",
        baseline >> 20,
        after >> 20
    );
    assert!(
        growth < 64 << 20,
        "resident memory grew by {} MiB over 10 runs that each allocated ~180 MiB in guests",
        growth >> 20
    );
}
