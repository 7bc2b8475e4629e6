//! The hostile node's attempts to get out: leave a link pointing outside its granted folder,
//! forge Kettle's own lines on the terminal, and hand the LLM host keys it owns or a model
//! name that is a path. `run` answers `None` for a mode it does not know.

use kettle_guest::bindings::kettle::node::types::NodeError;
use kettle_guest::llm::{self, Request};
use kettle_guest::log;
use serde_json::{Value, json};
use wasip2::filesystem::preopens::get_directories;

pub fn run(mode: &str, config: &Value) -> Option<Result<String, NodeError>> {
    let text = |key: &str| {
        config
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let outcome = match mode {
        // A link named `link` in the granted folder `dir`, pointing at `target`.
        "symlink-out" => symlink(&text("dir"), &text("target"), &text("link")),
        // `message` logged as is, then returned as the node's error.
        "forge-lines" => {
            log::info(&text("message"));
            Err(NodeError::Failed(text("message")))
        }
        // One LLM call with the given model and `extra`; its error, word for word as the
        // node saw it, is the node's error.
        "llm-call" => {
            let mut request = Request::user("hello");
            if let Some(model) = config.get("model").and_then(Value::as_str) {
                request = request.model(model);
            }
            request.extra = config.get("extra").cloned();
            llm::call(request)
                .map(|answer| json!({ "answer": answer.content }).to_string())
                .map_err(|error| NodeError::Llm(error.to_string()))
        }
        _ => return None,
    };
    Some(outcome)
}

fn symlink(dir: &str, target: &str, link: &str) -> Result<String, NodeError> {
    let (folder, _) = get_directories()
        .into_iter()
        .find(|(_, path)| path == dir)
        .ok_or_else(|| NodeError::Failed(format!("{dir} is not granted")))?;
    folder
        .symlink_at(target, link)
        .map(|()| json!({ "linked": link }).to_string())
        .map_err(|code| NodeError::Failed(format!("cannot link {link} -> {target}: {code:?}")))
}
