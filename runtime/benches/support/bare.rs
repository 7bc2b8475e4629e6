//! Plain wasmtime around a node component: WASI with nothing granted, Kettle's own imports
//! linked as traps, one fresh instance and one call — the floor Kettle's node path is
//! measured against (`bare_wasmtime`, `floor_pair`).

use kettle::capabilities::bindings::NodePre;
use kettle::capabilities::bindings::types::NodeContext;
use std::path::Path;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, ResourceTable, ResourceType};
use wasmtime::{Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

pub struct Bare {
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

/// The component at `wasm`, compiled for `engine` and linked to bare WASI.
pub fn bare_node(engine: &Engine, wasm: &Path) -> NodePre<Bare> {
    let component = Component::from_file(engine, wasm).expect("the echo node compiles");
    let mut linker: Linker<Bare> = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).expect("WASI");
    stub_kettle_imports(&mut linker, engine, &component);
    NodePre::new(linker.instantiate_pre(&component).expect("links")).expect("node world")
}

/// One fresh instance and one call, as Kettle makes per node execution; with interruption on,
/// the store gets fuel and a deadline that never fire, as a node without `limits` does.
pub async fn call_echo(
    engine: &Engine,
    pre: &NodePre<Bare>,
    state: &str,
    interrupts: bool,
) -> String {
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
