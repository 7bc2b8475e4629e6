//! The bridge between the WIT `run` export and a plain Rust function, and the export macro.

use crate::bindings::kettle::node::types::{NodeContext, NodeError as WitNodeError};
use crate::{Context, NodeError};
use serde_json::Value;

/// Decodes the host's arguments, calls the node function and encodes its answer.
pub fn run_node(
    node: fn(Context, Value) -> Result<Value, NodeError>,
    ctx: NodeContext,
    state: String,
) -> Result<String, WitNodeError> {
    let config = if ctx.config.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(&ctx.config)
            .map_err(|e| NodeError::invalid_input(format!("node config is not JSON: {e}")))?
    };
    let state: Value = serde_json::from_str(&state)
        .map_err(|e| NodeError::invalid_input(format!("state is not JSON: {e}")))?;
    let context = Context {
        run_id: ctx.run_id,
        node_name: ctx.node_name,
        attempt: ctx.attempt,
        config,
    };
    let update = node(context, state)?;
    serde_json::to_string(&update)
        .map_err(|e| NodeError::failed(format!("cannot encode the state update: {e}")).into())
}

/// Exports a function `fn(Context, Value) -> Result<Value, NodeError>` as the node's `run`.
#[macro_export]
macro_rules! export_node {
    ($run:path) => {
        struct __KettleNode;

        impl $crate::bindings::Guest for __KettleNode {
            fn run(
                ctx: $crate::bindings::kettle::node::types::NodeContext,
                state: ::std::string::String,
            ) -> ::std::result::Result<
                ::std::string::String,
                $crate::bindings::kettle::node::types::NodeError,
            > {
                $crate::__run_node($run, ctx, state)
            }
        }

        $crate::bindings::__export_world_node!(__KettleNode);
    };
}
