//! State updates: a node returns a partial object whose top-level keys replace the state's.

use serde_json::{Map, Value};

/// Merges `update` into `state` shallowly. `update` must be a JSON object.
pub fn merge_update(state: &mut Map<String, Value>, update: Map<String, Value>) {
    for (key, value) in update {
        state.insert(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_keys_are_replaced_not_deep_merged() {
        let Value::Object(mut state) = json!({"a": {"x": 1}, "b": 2}) else {
            unreachable!()
        };
        let Value::Object(update) = json!({"a": {"y": 2}, "c": 3}) else {
            unreachable!()
        };
        merge_update(&mut state, update);
        assert_eq!(Value::Object(state), json!({"a": {"y": 2}, "b": 2, "c": 3}));
    }
}
