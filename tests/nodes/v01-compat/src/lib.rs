//! A node written against the `kettle:node@0.1.0` WIT as first released (a frozen copy in
//! `wit/`, where `llm` had only `call`), without the guest SDK. The host's `llm` interface has
//! grown since; this component must still link and run against it.
// The generated bindings have functions with many parameters.
#![allow(clippy::too_many_arguments)]

wit_bindgen::generate!({
    world: "node",
    path: "wit",
});

use kettle::node::llm;

struct Node;

impl Guest for Node {
    fn run(_ctx: NodeContext, _state: String) -> Result<String, NodeError> {
        let request = llm::Request {
            messages: vec![llm::Message {
                role: llm::Role::User,
                content: "still here".into(),
            }],
            model: None,
            temperature: None,
            max_tokens: None,
            stop: Vec::new(),
            extra: None,
        };
        let answer = llm::call(&request).map_err(|e| NodeError::Llm(format!("{e:?}")))?;
        Ok(format!(
            "{{\"old_node\": {:?}, \"tokens\": {}}}",
            answer.content, answer.usage.output_tokens
        ))
    }
}

export!(Node);
