//! The Lua interpreter component: a Kettle node that runs the inline Lua of a TEA agent
//! (`language: lua`, or a `run: |` whose first line is `-- lua`).
//!
//! Its config is `{"code": "<Lua source>", "node": "<name shown in errors>"}` (`node` defaults to
//! the Kettle node's name; `"context": "inline"` when the engine runs it for inline code, its
//! state argument then being `{state, variables, extras}`). The code runs as TEA-Rust runs it: `state` is the run's state as a Lua
//! table, and the table the code returns is the node's state update (`nil` or `{}` change
//! nothing). See README.md for the environment and how it differs from TEA's mlua.

mod convert;
mod environment;
mod interpreter;

pub use interpreter::{LuaFailure, run_lua};

use kettle_guest::{Context, NodeError, Value};

fn run(ctx: Context, state: Value) -> Result<Value, NodeError> {
    let code = ctx.config["code"].as_str().ok_or_else(|| {
        NodeError::invalid_input(format!(
            "node `{}`: the Lua interpreter needs the Lua source as a string in `config.code`",
            ctx.node_name
        ))
    })?;
    let node = ctx.config["node"].as_str().unwrap_or(&ctx.node_name);
    // As TEA's inline code (`context: inline`), the argument is the engine's inline context and
    // the run's state is its `state`; as a plain component node, the argument is the state.
    let state = match ctx.config["context"].as_str() {
        Some("inline") => state.get("state").cloned().unwrap_or(Value::Null),
        _ => state,
    };
    run_lua(code, &state, node).map_err(|failure| match failure {
        LuaFailure::Code(message) => NodeError::failed(message),
        LuaFailure::Input(message) => NodeError::invalid_input(message),
    })
}

kettle_guest::export_node!(run);
