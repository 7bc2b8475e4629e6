//! The Prolog interpreter component: a Kettle node that runs the inline Prolog of a TEA agent
//! (`language: prolog`, or a `run: |` whose first line is `% prolog`).
//!
//! Its config is `{"code": "<Prolog source>", "node": "<name shown in errors>"}` (`node`
//! defaults to the Kettle node's name; `"context": "inline"` when the engine runs it for inline
//! code, its state argument then being `{state, variables, extras}`). The code runs as TEA's
//! Python runtime runs it: `state(Key, Value)` reads the state, `return(Key, Value)` sets a key
//! of the update. The Prolog system is Trealla (README.md says why and how it differs).

mod clauses;
mod interpreter;
mod machine;
mod terms;

pub use interpreter::{PrologFailure, run_prolog};

use kettle_guest::{Context, NodeError, Value};

fn run(ctx: Context, state: Value) -> Result<Value, NodeError> {
    let code = ctx.config["code"].as_str().ok_or_else(|| {
        NodeError::invalid_input(format!(
            "node `{}`: the Prolog interpreter needs the Prolog source as a string in `config.code`",
            ctx.node_name
        ))
    })?;
    let node = ctx.config["node"].as_str().unwrap_or(&ctx.node_name);
    let state = match ctx.config["context"].as_str() {
        Some("inline") => state.get("state").cloned().unwrap_or(Value::Null),
        _ => state,
    };
    run_prolog(code, &state, node).map_err(|failure| match failure {
        PrologFailure::Code(message) | PrologFailure::Engine(message) => NodeError::failed(message),
        PrologFailure::Input(message) => NodeError::invalid_input(message),
    })
}

kettle_guest::export_node!(run);
