//! The offline provider: deterministic answers, so that agents run with no network and tests
//! can assert exact states. By default it echoes the last user message; `responses:` scripts
//! its answers (texts or tool calls), given in turn.

use super::client::LlmConfigError;
use super::types::{ChatRequest, ChatResponse, LlmError, Role, StreamItem, ToolCall, Usage};
use crate::spec::ProviderSettings;
use serde_json::Value;
use std::sync::atomic::{AtomicUsize, Ordering};

const DEFAULT_MODEL: &str = "mock-1";
const ECHO_CHARS: usize = 160;

/// One scripted answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Scripted {
    pub content: String,
    pub tool_calls: Vec<ToolCall>,
    pub finish_reason: Option<String>,
}

#[derive(Debug, Default)]
pub struct MockProvider {
    /// Empty: echo.
    script: Vec<Scripted>,
    next: AtomicUsize,
}

impl MockProvider {
    /// The echo rule.
    pub fn echo() -> Self {
        Self::default()
    }

    /// `type: mock`, settings at `at`: scripted when they give `responses`, else the echo.
    pub fn from_settings(p: &ProviderSettings, at: &str) -> Result<Self, LlmConfigError> {
        let Some(responses) = &p.responses else {
            return Ok(Self::echo());
        };
        let script = script_from(responses)
            .map_err(|e| LlmConfigError::new(format!("{at}.responses"), format!("{at}.{e}")))?;
        Ok(Self::scripted(script))
    }

    /// Answers `script` in turn, starting over after the last.
    pub fn scripted(script: Vec<Scripted>) -> Self {
        Self {
            script,
            next: AtomicUsize::new(0),
        }
    }

    pub fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let Some(last) = request.messages.iter().rev().find(|m| m.role == Role::User) else {
            return Err(LlmError::InvalidRequest(
                "the request has no user message".into(),
            ));
        };
        let (mut content, tool_calls, scripted_reason) = if self.script.is_empty() {
            (echo(&last.content), Vec::new(), None)
        } else {
            let n = self.next.fetch_add(1, Ordering::Relaxed) % self.script.len();
            let s = self.script[n].clone();
            (s.content, s.tool_calls, s.finish_reason)
        };
        let mut finish_reason = if tool_calls.is_empty() {
            "stop"
        } else {
            "tool_calls"
        }
        .to_string();
        if let Some(max) = request.max_tokens {
            let words: Vec<&str> = content.split_whitespace().collect();
            if words.len() > max as usize {
                content = words[..max as usize].join(" ");
                finish_reason = "length".into();
            }
        }
        let input_tokens = request
            .messages
            .iter()
            .map(|m| count_tokens(&m.content))
            .sum();
        Ok(ChatResponse {
            id: Some(response_id(request, &content)),
            usage: Usage {
                input_tokens,
                output_tokens: count_tokens(&content),
            },
            content,
            model: request
                .model
                .clone()
                .unwrap_or_else(|| DEFAULT_MODEL.into()),
            finish_reason: scripted_reason.unwrap_or(finish_reason),
            tool_calls,
        })
    }

    /// The same answer as [`Self::complete`], one word per delta.
    pub fn stream(&self, request: &ChatRequest) -> Result<Vec<StreamItem>, LlmError> {
        let response = self.complete(request)?;
        let mut items: Vec<StreamItem> = Vec::new();
        let mut rest = response.content.as_str();
        while !rest.is_empty() {
            let word_end = rest
                .char_indices()
                .skip_while(|(_, c)| c.is_whitespace())
                .find(|(_, c)| c.is_whitespace())
                .map_or(rest.len(), |(i, _)| i);
            items.push(StreamItem::Delta(rest[..word_end].to_string()));
            rest = &rest[word_end..];
        }
        items.push(StreamItem::End(response));
        Ok(items)
    }

    pub fn default_model() -> &'static str {
        DEFAULT_MODEL
    }
}

/// Reads `responses:` from the YAML: texts, or `{content, tool_calls, finish_reason}`.
pub fn script_from(values: &[Value]) -> Result<Vec<Scripted>, String> {
    values
        .iter()
        .enumerate()
        .map(|(i, value)| match value {
            Value::String(text) => Ok(Scripted {
                content: text.clone(),
                tool_calls: Vec::new(),
                finish_reason: None,
            }),
            Value::Object(map) => {
                for key in map.keys() {
                    if !["content", "tool_calls", "finish_reason"].contains(&key.as_str()) {
                        return Err(format!("responses[{i}]: unknown key `{key}` (use content, tool_calls, finish_reason)"));
                    }
                }
                let text = |key: &str| map.get(key).and_then(Value::as_str).map(str::to_string);
                let calls = match map.get("tool_calls") {
                    None => Vec::new(),
                    Some(Value::Array(calls)) => calls
                        .iter()
                        .enumerate()
                        .map(|(j, call)| {
                            let name = call.get("name").and_then(Value::as_str).ok_or_else(|| {
                                format!("responses[{i}].tool_calls[{j}] needs a `name`")
                            })?;
                            let arguments = match call.get("arguments") {
                                None => "{}".to_string(),
                                Some(Value::String(s)) => s.clone(),
                                Some(other) => other.to_string(),
                            };
                            Ok(ToolCall {
                                id: call
                                    .get("id")
                                    .and_then(Value::as_str)
                                    .map_or_else(|| format!("call_{i}_{j}"), str::to_string),
                                name: name.to_string(),
                                arguments,
                            })
                        })
                        .collect::<Result<_, String>>()?,
                    Some(_) => return Err(format!("responses[{i}].tool_calls must be a list")),
                };
                Ok(Scripted {
                    content: text("content").unwrap_or_default(),
                    tool_calls: calls,
                    finish_reason: text("finish_reason"),
                })
            }
            _ => Err(format!(
                "responses[{i}] must be a text or a mapping with `content` / `tool_calls`"
            )),
        })
        .collect()
}

fn echo(text: &str) -> String {
    let echoed: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut content = String::from("[mock] ");
    if echoed.chars().count() > ECHO_CHARS {
        content.extend(echoed.chars().take(ECHO_CHARS));
        content.push('…');
    } else {
        content.push_str(&echoed);
    }
    content
}

/// A stable id derived from the request and answer (FNV-1a), like a provider's `chatcmpl-…`.
fn response_id(request: &ChatRequest, content: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let texts = request.messages.iter().map(|m| m.content.as_str());
    for byte in texts.chain([content]).flat_map(str::bytes) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("mock-{hash:016x}")
}

/// One token per whitespace-separated word: crude, but stable and easy to check by hand.
fn count_tokens(text: &str) -> u32 {
    u32::try_from(text.split_whitespace().count()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::ChatMessage;
    use serde_json::json;

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage::new(Role::User, text)],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn same_request_same_answer() {
        let mock = MockProvider::echo();
        let a = mock.complete(&request("tell me  about\nkettles")).unwrap();
        let b = mock.complete(&request("tell me  about\nkettles")).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.content, "[mock] tell me about kettles");
        assert_eq!(
            a.usage,
            Usage {
                input_tokens: 4,
                output_tokens: 5
            }
        );
        assert_eq!(a.model, "mock-1");
    }

    #[test]
    fn max_tokens_truncates_and_says_length() {
        let mut r = request("one two three four");
        r.max_tokens = Some(2);
        let answer = MockProvider::echo().complete(&r).unwrap();
        assert_eq!(answer.content, "[mock] one");
        assert_eq!(answer.finish_reason, "length");
    }

    #[test]
    fn no_user_message_is_invalid() {
        let r = ChatRequest::default();
        assert!(matches!(
            MockProvider::echo().complete(&r),
            Err(LlmError::InvalidRequest(_))
        ));
    }

    #[test]
    fn scripted_answers_in_turn_and_streamed_by_word() {
        let script = script_from(&[
            json!({"tool_calls": [{"name": "weather", "arguments": {"city": "Oslo"}}]}),
            json!("It rains in Oslo."),
        ])
        .unwrap();
        let mock = MockProvider::scripted(script);
        let first = mock.complete(&request("weather?")).unwrap();
        assert_eq!(first.finish_reason, "tool_calls");
        assert_eq!(
            first.tool_calls,
            vec![ToolCall {
                id: "call_0_0".into(),
                name: "weather".into(),
                arguments: "{\"city\":\"Oslo\"}".into()
            }]
        );
        let items = mock.stream(&request("and?")).unwrap();
        let deltas: Vec<&str> = items
            .iter()
            .filter_map(|i| match i {
                StreamItem::Delta(d) => Some(d.as_str()),
                StreamItem::End(_) => None,
            })
            .collect();
        assert_eq!(deltas, ["It", " rains", " in", " Oslo."]);
        assert!(
            matches!(items.last(), Some(StreamItem::End(r)) if r.content == "It rains in Oslo.")
        );
        assert!(script_from(&[json!(3)]).is_err());
    }
}
