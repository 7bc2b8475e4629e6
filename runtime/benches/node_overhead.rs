//! `node_overhead`: what one node execution costs Kettle — a fresh instance of a trivial
//! component (the echo node, in Rust, Python and JS), the call with a 1 KB or 100 KB JSON
//! state, and its span — measured on the same path the engine takes. `bare_wasmtime` measures
//! the same components with plain wasmtime: the floor.

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig};

fn node_overhead(c: &mut Criterion) {
    support::use_shared_toolchains();
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let sandbox =
        Sandbox::new(&SandboxConfig::default(), CompileCache::new(cache.path())).expect("sandbox");
    let run = support::NodeRun::new();

    let mut group = c.benchmark_group("node_overhead");
    for (language, folder) in support::ECHO_NODES {
        let echo = support::echo_component(&runtime, cache.path(), folder);
        let component = sandbox.prepare(&echo).expect("the echo node compiles");
        for bytes in support::ECHO_STATE_BYTES {
            let state = support::state_of(bytes);
            group.throughput(Throughput::Elements(1));
            group.bench_with_input(
                BenchmarkId::new(format!("{language}_echo"), format!("{}KB", bytes / 1024)),
                &state,
                |b, state| {
                    b.iter(|| run.echo(&runtime, &sandbox, &component, state));
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, node_overhead);
criterion_main!(benches);
