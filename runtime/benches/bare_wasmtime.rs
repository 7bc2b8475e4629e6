//! `bare_wasmtime`: the floor Kettle's `node_overhead` is measured against — the same echo
//! components (Rust, Python, JS) instantiated and called with plain wasmtime (WASI with nothing
//! granted, Kettle's imports left as traps) and nothing else: no limits, no trace, no LLM
//! capability. Three engine configurations:
//! - `bare_wasmtime`: Kettle's own (`kettle::sandbox::engine_config`: pooling allocator, page
//!   reset, fuel and epoch interruption) — the floor;
//! - `bare_wasmtime_no_interrupts`: the same without fuel and epoch interruption;
//! - `bare_wasmtime_default`: `Config::new()` (on-demand allocation), for reference.

mod support;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kettle::capabilities::bindings::NodePre;
use kettle::capabilities::bindings::types::NodeContext;
use kettle::sandbox::{SandboxConfig, engine_config};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable, ResourceType};
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

/// Links Kettle's own imports as traps (the echo node never calls them). Only those:
/// wasmtime's `define_unknown_imports_as_traps` would also shadow WASI imports of a newer
/// minor version (Python's `wasi:cli/environment@0.2.9`) that the linker otherwise satisfies.
fn stub_kettle_imports(linker: &mut Linker<Bare>, engine: &Engine, component: &Component) {
    for (name, item) in component.component_type().imports(engine) {
        let ComponentItem::ComponentInstance(interface) = item.ty else {
            continue;
        };
        if !name.starts_with("kettle:") {
            continue;
        }
        let mut instance = linker.instance(name).expect("a new instance");
        for (export, item) in interface.exports(engine) {
            match item.ty {
                ComponentItem::ComponentFunc(_) => instance
                    .func_new(export, |_, _, _, _| {
                        Err(wasmtime::Error::msg("a Kettle import in bare wasmtime"))
                    })
                    .expect("trap function"),
                ComponentItem::Resource(_) => instance
                    .resource(export, ResourceType::host::<()>(), |_, _| Ok(()))
                    .expect("resource"),
                _ => {}
            }
        }
    }
}

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
            let component = Component::from_file(&engine, &echo).expect("the echo node compiles");
            let mut linker: Linker<Bare> = Linker::new(&engine);
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI");
            stub_kettle_imports(&mut linker, &engine, &component);
            let pre = NodePre::new(linker.instantiate_pre(&component).expect("links"))
                .expect("node world");
            for bytes in [1024usize, 100 * 1024] {
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

/// One fresh instance and one call, as Kettle makes per node execution; with interruption on,
/// the store gets fuel and a deadline that never fire, as a node without `limits` does.
async fn call_echo(engine: &Engine, pre: &NodePre<Bare>, state: &str, interrupts: bool) -> String {
    let mut store = Store::new(
        engine,
        Bare {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        },
    );
    if interrupts {
        store.set_fuel(u64::MAX).expect("fuel is on");
        store.set_epoch_deadline(u64::MAX);
    }
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
}

criterion_group!(benches, bare_wasmtime);
criterion_main!(benches);
