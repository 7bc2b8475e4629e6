//! Host bindings generated from the `kettle:node` WIT package (`wit/` at the workspace root).

wasmtime::component::bindgen!({
    world: "node",
    path: "../wit",
    imports: {
        "kettle:node/llm.call": async | trappable,
        "kettle:node/llm.chat": async | trappable,
        "kettle:node/llm.stream": async | trappable,
        "kettle:node/llm.[method]chat-stream.next": async | trappable,
        default: trappable,
    },
    exports: { default: async },
    with: {
        "kettle:node/trace.span": crate::capabilities::trace::GuestSpan,
        "kettle:node/llm.chat-stream": crate::capabilities::llm::GuestStream,
    },
});

pub use self::kettle::node::{interrupt, llm, log, trace, types};
