//! Adds one to the state's counter `n`: the trivial component node of bench/compare/engine_cost.py's
//! chains, doing what the other frameworks' nodes in those chains do.

use kettle_guest::{Context, NodeError, Value, json};

fn run(_ctx: Context, state: Value) -> Result<Value, NodeError> {
    let n = state
        .get("n")
        .and_then(Value::as_i64)
        .ok_or_else(|| NodeError::invalid_input("state.n must be an integer"))?;
    Ok(json!({ "n": n + 1 }))
}

kettle_guest::export_node!(run);
