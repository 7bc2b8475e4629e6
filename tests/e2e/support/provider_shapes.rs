//! Answers shaped exactly like each provider's (field for field, as their API references
//! show them), for the test servers to send.
#![allow(dead_code)]

use super::llm_server::Reply;
use serde_json::{Value, json};

/// OpenAI `chat.completion`; `calls` are (id, name, arguments JSON text).
pub fn openai_completion(
    id: &str,
    model: &str,
    content: Option<&str>,
    calls: &[(&str, &str, &str)],
    finish: &str,
    usage: (u32, u32),
) -> Value {
    let tool_calls: Vec<Value> = calls
        .iter()
        .map(|(id, name, args)| json!({"id": id, "type": "function", "function": {"name": name, "arguments": args}}))
        .collect();
    let mut message = json!({"role": "assistant", "content": content, "refusal": null});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    json!({
        "id": id,
        "object": "chat.completion",
        "created": 1_741_569_952,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1, "total_tokens": usage.0 + usage.1,
                  "prompt_tokens_details": {"cached_tokens": 0}},
        "system_fingerprint": "fp_test"
    })
}

/// OpenAI `chat.completion.chunk` events: a role chunk, one per delta, the finish chunk, the
/// usage chunk (`stream_options.include_usage`), then `[DONE]`.
pub fn openai_stream(id: &str, model: &str, deltas: &[&str], usage: (u32, u32)) -> Reply {
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_741_569_952, "model": model,
               "system_fingerprint": "fp_test",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        .to_string()
    };
    let mut events = vec![(
        None,
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    )];
    for d in deltas {
        events.push((None, chunk(json!({"content": d}), Value::Null)));
    }
    events.push((None, chunk(json!({}), json!("stop"))));
    events.push((
        None,
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_741_569_952, "model": model,
               "choices": [], "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
               "total_tokens": usage.0 + usage.1}})
        .to_string(),
    ));
    events.push((None, "[DONE]".to_string()));
    Reply::sse(&events)
}

/// Anthropic `message`; `calls` are (id, name, input).
pub fn anthropic_message(
    id: &str,
    model: &str,
    text: Option<&str>,
    calls: &[(&str, &str, Value)],
    stop_reason: &str,
    usage: (u32, u32),
) -> Value {
    let mut content = Vec::new();
    if let Some(text) = text {
        content.push(json!({"type": "text", "text": text}));
    }
    for (id, name, input) in calls {
        content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    json!({
        "id": id, "type": "message", "role": "assistant", "model": model, "content": content,
        "stop_reason": stop_reason, "stop_sequence": null,
        "usage": {"input_tokens": usage.0, "output_tokens": usage.1,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    })
}

/// Anthropic's stream: message_start, a text block in deltas, message_delta, message_stop.
pub fn anthropic_stream(id: &str, model: &str, deltas: &[&str], usage: (u32, u32)) -> Reply {
    let mut events: Vec<(Option<&str>, String)> = vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": usage.0, "output_tokens": 1}}})
            .to_string(),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})
            .to_string(),
        ),
        (Some("ping"), json!({"type": "ping"}).to_string()),
    ];
    for d in deltas {
        events.push((
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": d}})
            .to_string(),
        ));
    }
    events.push((
        Some("content_block_stop"),
        json!({"type": "content_block_stop", "index": 0}).to_string(),
    ));
    events.push((
        Some("message_delta"),
        json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": usage.1}})
        .to_string(),
    ));
    events.push((
        Some("message_stop"),
        json!({"type": "message_stop"}).to_string(),
    ));
    Reply::sse(&events)
}

/// Ollama `/api/chat` final answer.
pub fn ollama_answer(
    model: &str,
    content: &str,
    calls: &[(&str, Value)],
    usage: (u32, u32),
) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if !calls.is_empty() {
        message["tool_calls"] = calls
            .iter()
            .map(|(name, args)| json!({"function": {"name": name, "arguments": args}}))
            .collect();
    }
    json!({
        "model": model, "created_at": "2025-01-01T00:00:00.000000Z", "message": message,
        "done_reason": "stop", "done": true, "total_duration": 4_883_583_458u64,
        "load_duration": 1_334_875, "prompt_eval_count": usage.0, "prompt_eval_duration": 342_546_000,
        "eval_count": usage.1, "eval_duration": 4_535_599_000u64
    })
}

/// Ollama's streamed answer: one line per delta, then the `done` line with the counts.
pub fn ollama_stream(model: &str, deltas: &[&str], usage: (u32, u32)) -> Reply {
    let mut lines: Vec<Value> = deltas
        .iter()
        .map(|d| {
            json!({"model": model, "created_at": "2025-01-01T00:00:00.000000Z",
                        "message": {"role": "assistant", "content": d}, "done": false})
        })
        .collect();
    lines.push(ollama_answer(model, "", &[], usage));
    Reply::ndjson(&lines)
}

/// Anthropic's stream as LiteLLM's proxy sends it: `message_start` with no input count, the
/// counts (input and output) in `message_delta.usage`.
pub fn anthropic_stream_usage_in_delta(
    id: &str,
    model: &str,
    deltas: &[&str],
    usage: (u32, u32),
) -> Reply {
    let mut events: Vec<(Option<&str>, String)> = vec![
        (
            Some("message_start"),
            json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}})
            .to_string(),
        ),
        (
            Some("content_block_start"),
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}})
            .to_string(),
        ),
    ];
    for d in deltas {
        events.push((
            Some("content_block_delta"),
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": d}})
            .to_string(),
        ));
    }
    events.push((
        Some("content_block_stop"),
        json!({"type": "content_block_stop", "index": 0}).to_string(),
    ));
    events.push((
        Some("message_delta"),
        json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"input_tokens": usage.0, "output_tokens": usage.1}})
        .to_string(),
    ));
    events.push((
        Some("message_stop"),
        json!({"type": "message_stop"}).to_string(),
    ));
    Reply::sse(&events)
}

/// An `error` event as the first event of a stream: Anthropic's form (`overloaded_error`).
pub fn anthropic_error_event(kind: &str, message: &str) -> Reply {
    Reply::sse(&[(
        Some("error"),
        json!({"type": "error", "error": {"type": kind, "message": message}}).to_string(),
    )])
}

/// An error object as the first event of a stream: OpenAI's form.
pub fn openai_error_event(kind: &str, message: &str) -> Reply {
    Reply::sse(&[(
        None,
        json!({"error": {"message": message, "type": kind, "param": null, "code": null}})
            .to_string(),
    )])
}
