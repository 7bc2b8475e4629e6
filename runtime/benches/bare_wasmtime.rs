//! `bare_wasmtime`: the floor Kettle's `node_overhead` is measured against — the same echo
//! component instantiated and called with plain wasmtime (default configuration, WASI with
//! nothing granted, Kettle's imports left as traps) and nothing else: no limits, no trace, no
//! LLM capability.

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kettle::bindings::NodePre;
use kettle::bindings::types::NodeContext;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn bare_wasmtime(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cache = tempfile::tempdir().expect("cache dir");
    let echo = support::echo_component(&runtime, cache.path());
    let mut config = Config::new();
    config.wasm_component_model(true);
    let engine = Engine::new(&config).expect("engine");
    let component = Component::from_file(&engine, &echo).expect("the echo node compiles");
    let mut linker: Linker<Bare> = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI");
    linker
        .define_unknown_imports_as_traps(&component)
        .expect("trap imports");
    let pre = NodePre::new(linker.instantiate_pre(&component).expect("links")).expect("node world");

    let mut group = c.benchmark_group("bare_wasmtime");
    for bytes in [1024usize, 100 * 1024] {
        let state = support::state_of(bytes);
        group.throughput(Throughput::Elements(1));
        group.bench_with_input(
            BenchmarkId::new("rust_echo", format!("{}KB", bytes / 1024)),
            &state,
            |b, state| {
                b.iter(|| {
                    runtime.block_on(async {
                        let mut store = Store::new(
                            &engine,
                            Bare {
                                wasi: WasiCtx::builder().build(),
                                table: ResourceTable::new(),
                            },
                        );
                        let node = pre
                            .instantiate_async(&mut store)
                            .await
                            .expect("instantiates");
                        let context = NodeContext {
                            run_id: "bench".into(),
                            node_name: "echo".into(),
                            attempt: 1,
                            config: "{}".into(),
                        };
                        node.call_run(&mut store, &context, state)
                            .await
                            .expect("no trap")
                            .expect("no error")
                    })
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bare_wasmtime);
criterion_main!(benches);
