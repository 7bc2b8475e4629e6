//! Opens a span, calls the LLM inside it, and returns without closing it: the host must parent
//! the LLM span under the guest span, then close the guest span and mark it leaked.

use kettle_guest::llm::{self, Request};
use kettle_guest::{Context, NodeError, Value, json, log, trace};

fn run(_ctx: Context, _state: Value) -> Result<Value, NodeError> {
    let outer = trace::span("outer");
    outer.set_attribute("test.depth", 1i64);
    let inner = trace::span("inner");
    let answer = llm::call(Request::user("inside the inner span"))?;
    log::info("answered inside the inner span");
    // A closed span in between, so the host must track which ones are still open.
    trace::span("closed").end();
    inner.leak();
    outer.leak();
    Ok(json!({ "answer": answer.content }))
}

kettle_guest::export_node!(run);
