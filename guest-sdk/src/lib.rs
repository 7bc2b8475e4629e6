//! `kettle-guest`: write a Kettle node in Rust as a plain function.
//!
//! ```ignore
//! use kettle_guest::{llm, trace, Context, NodeError, Value, json};
//!
//! fn run(ctx: Context, state: Value) -> Result<Value, NodeError> {
//!     let _span = trace::span("draft");
//!     let answer = llm::call(llm::Request::user(state["question"].as_str().unwrap_or("")))?;
//!     Ok(json!({ "answer": answer.content }))
//! }
//!
//! kettle_guest::export_node!(run);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2` (or let `kettle run` do it: it
//! also links the node with a 256 KiB shadow stack instead of Rust's 1 MiB default).

#[doc(hidden)]
#[allow(clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        world: "node",
        path: "../wit",
        pub_export_macro: true,
        export_macro_name: "__export_world_node",
        default_bindings_module: "kettle_guest::bindings",
        additional_derives: [PartialEq],
    });
}

mod context;
mod error;
pub mod interrupt;
pub mod llm;
pub mod log;
mod node;
pub mod trace;

pub use context::Context;
pub use error::NodeError;
pub use interrupt::interrupt;
pub use serde_json::{Value, json};

#[doc(hidden)]
pub use node::run_node as __run_node;
