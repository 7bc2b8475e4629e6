//! Returns its input state under `echo`: the smallest node, for overhead measurements.

use kettle_guest::{Context, NodeError, Value, json};

fn run(_ctx: Context, state: Value) -> Result<Value, NodeError> {
    Ok(json!({ "echo": state }))
}

kettle_guest::export_node!(run);
