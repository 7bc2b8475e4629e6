//! Host bindings generated from the `kettle:node` WIT package (`wit/` at the workspace root).

wasmtime::component::bindgen!({
    world: "node",
    path: "../wit",
    imports: {
        "kettle:node/llm.call": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "kettle:node/trace.span": crate::capabilities::trace::GuestSpan,
    },
});

pub use self::kettle::node::{llm, log, trace, types};
