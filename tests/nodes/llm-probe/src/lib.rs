//! Exercises the `llm` import the way a node author would, and reports what it saw in the
//! state (including the exact error variant), so tests can check it. `config.mode` picks:
//! `call` (one plain call), `tools` (a tool loop: ask, run the tool, answer) or `stream`
//! (read a stream to its end, keeping every delta) or `stream_first` (read one delta, drop the
//! stream). The result goes under `config.key`.

use kettle_guest::llm::{self, ChatMessage, ChatRequest, LlmError, StreamEvent, Tool};
use kettle_guest::{Context, NodeError, Value, json};

fn run(ctx: Context, state: Value) -> Result<Value, NodeError> {
    let prompt = state["prompt"].as_str().unwrap_or("hello").to_string();
    let provider = ctx.config["provider"].as_str().map(str::to_string);
    let key = ctx.config["key"].as_str().unwrap_or("probe").to_string();
    let mut request = ChatRequest::user(prompt);
    request.provider = provider;
    let result = match ctx.config["mode"].as_str().unwrap_or("call") {
        "call" => match llm::call(llm::Request::user(request.messages[0].content.clone())) {
            Ok(r) => json!({"answer": r.content, "finish_reason": r.finish_reason}),
            Err(e) => failure(&e, json!([])),
        },
        "tools" => tools(request)?,
        "stream" => stream(request),
        "stream_first" => stream_first(request),
        other => return Err(NodeError::invalid_input(format!("unknown mode `{other}`"))),
    };
    Ok(json!({ key: result }))
}

fn tools(mut request: ChatRequest) -> Result<Value, NodeError> {
    request = request.tool(Tool::new(
        "weather",
        "Current weather in a city",
        json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}),
    ));
    let mut asked = Vec::new();
    for _ in 0..4 {
        let answer = match llm::chat(request.clone()) {
            Ok(answer) => answer,
            Err(e) => return Ok(failure(&e, json!(asked))),
        };
        if answer.tool_calls.is_empty() {
            return Ok(json!({
                "answer": answer.content,
                "finish_reason": answer.finish_reason,
                "tool_calls": asked,
                "usage": [answer.usage.input_tokens, answer.usage.output_tokens],
            }));
        }
        request.messages.push(ChatMessage::assistant_calls(
            answer.content.clone(),
            answer.tool_calls.clone(),
        ));
        for call in answer.tool_calls {
            let city = call.arguments_json()["city"]
                .as_str()
                .unwrap_or("nowhere")
                .to_string();
            asked.push(json!({"id": call.id, "name": call.name, "city": city}));
            request
                .messages
                .push(ChatMessage::tool_result(call.id, format!("rain in {city}")));
        }
    }
    Err(NodeError::failed("the model kept asking for tools"))
}

fn stream(request: ChatRequest) -> Value {
    let mut deltas = Vec::new();
    let mut stream = match llm::stream(request) {
        Ok(stream) => stream,
        Err(e) => return failure(&e, json!(deltas)),
    };
    loop {
        match stream.next_event() {
            Ok(Some(StreamEvent::Delta(text))) => deltas.push(text),
            Ok(Some(StreamEvent::End(r))) => {
                return json!({
                    "deltas": deltas,
                    "answer": r.content,
                    "finish_reason": r.finish_reason,
                    "usage": [r.usage.input_tokens, r.usage.output_tokens],
                    "after_end": format!("{:?}", stream.next_event()),
                });
            }
            Ok(None) => return json!({"deltas": deltas, "error_kind": "none"}),
            Err(e) => return failure(&e, json!(deltas)),
        }
    }
}

/// Reads the first delta, then drops the stream: the call is abandoned.
fn stream_first(request: ChatRequest) -> Value {
    let first = llm::stream(request).map(|mut s| s.next_event());
    json!({"first": format!("{first:?}")})
}

fn failure(error: &LlmError, seen: Value) -> Value {
    let kind = match error {
        LlmError::Denied(_) => "denied",
        LlmError::InvalidRequest(_) => "invalid_request",
        LlmError::RateLimited(_) => "rate_limited",
        LlmError::Timeout(_) => "timeout",
        LlmError::Provider(_) => "provider",
    };
    json!({"error_kind": kind, "error": error.to_string(), "seen": seen})
}

kettle_guest::export_node!(run);
