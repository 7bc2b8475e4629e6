//! Asking a person: the run stops (checkpointed) until `kettle resume RUN_ID --input
//! '{"answer": ...}'`; then the node runs again from its start and [`interrupt`] returns the
//! answer. LLM calls made before asking are answered from the checkpoint the second time.

use crate::bindings::kettle::node::interrupt as wit;
use serde_json::Value;

/// Asks a person `payload` (shown to them as JSON) and returns their answer. In a run with no
/// answer yet, it does not return: the host stops the node here.
pub fn interrupt(payload: &Value) -> Value {
    let answer = wit::interrupt(&payload.to_string());
    serde_json::from_str(&answer).unwrap_or(Value::String(answer))
}
