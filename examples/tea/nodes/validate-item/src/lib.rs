//! TEA's batch-validator `check_value` step: accepts an item with a non-negative `value`,
//! fails the item otherwise (the failure `fail_fast` reacts to).

use kettle_guest::{Context, NodeError, Value, json};

fn run(_ctx: Context, state: Value) -> Result<Value, NodeError> {
    let item = state
        .get("item")
        .ok_or_else(|| NodeError::invalid_input("the state has no `item`"))?;
    let id = item.get("id").cloned().unwrap_or(Value::Null);
    let value = item.get("value").and_then(Value::as_i64).unwrap_or(0);
    if value < 0 {
        return Err(NodeError::failed(format!(
            "Invalid value {value} for item {id}"
        )));
    }
    Ok(json!({
        "validated_item": {"id": id, "value": value, "validation_status": "passed"}
    }))
}

kettle_guest::export_node!(run);
