//! `bare_wasmtime`: the floor Kettle's `node_overhead` is measured against — the same echo
//! components (Rust, Python, JS) instantiated and called with plain wasmtime (WASI with nothing
//! granted, Kettle's imports left as traps) and nothing else: no limits, no trace, no LLM
//! capability. Three engine configurations:
//! - `bare_wasmtime`: Kettle's own (`kettle::sandbox::engine_config`: pooling allocator, page
//!   reset, fuel and epoch interruption) — the floor;
//! - `bare_wasmtime_no_interrupts`: the same without fuel and epoch interruption;
//! - `bare_wasmtime_default`: `Config::new()` (on-demand allocation), for reference.

mod support;
// Not in `support`: kettle-cli's benchmarks share that module and do not depend on wasmtime.
#[path = "support/bare.rs"]
mod bare;

use bare::{bare_node, call_echo};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kettle::sandbox::{SandboxConfig, engine_config};
use wasmtime::{Config, Engine};

/// The engine configurations measured, by criterion group.
fn configurations() -> [(&'static str, Config, bool); 3] {
    let kettle = engine_config(&SandboxConfig::default());
    let mut no_interrupts = engine_config(&SandboxConfig::default());
    no_interrupts.consume_fuel(false).epoch_interruption(false);
    let mut default = Config::new();
    default.wasm_component_model(true);
    [
        ("bare_wasmtime", kettle, true),
        ("bare_wasmtime_no_interrupts", no_interrupts, false),
        ("bare_wasmtime_default", default, false),
    ]
}

fn bare_wasmtime(c: &mut Criterion) {
    support::use_shared_toolchains();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    for (group_name, config, interrupts) in configurations() {
        let engine = Engine::new(&config).expect("engine");
        let mut group = c.benchmark_group(group_name);
        for (language, folder) in support::ECHO_NODES {
            let echo = support::echo_component(&runtime, cache.path(), folder);
            let pre = bare_node(&engine, &echo);
            for bytes in support::ECHO_STATE_BYTES {
                let state = support::state_of(bytes);
                group.throughput(Throughput::Elements(1));
                group.bench_with_input(
                    BenchmarkId::new(format!("{language}_echo"), format!("{}KB", bytes / 1024)),
                    &state,
                    |b, state| {
                        b.iter(|| runtime.block_on(call_echo(&engine, &pre, state, interrupts)));
                    },
                );
            }
        }
        group.finish();
    }
}

criterion_group!(benches, bare_wasmtime);
criterion_main!(benches);
