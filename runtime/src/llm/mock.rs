//! The offline provider: deterministic answers, so that agents run with no network and tests
//! can assert exact states.

use super::types::{ChatRequest, ChatResponse, LlmError, Role, Usage};

/// Answers every request from the request alone: the same request always gets the same answer.
#[derive(Debug, Clone, Default)]
pub struct MockProvider;

const DEFAULT_MODEL: &str = "mock-1";
const ECHO_CHARS: usize = 160;

impl MockProvider {
    pub fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let Some(last) = request.messages.iter().rev().find(|m| m.role == Role::User) else {
            return Err(LlmError::InvalidRequest(
                "the request has no user message".into(),
            ));
        };
        let echoed: String = last
            .content
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let mut content = String::from("[mock] ");
        if echoed.chars().count() > ECHO_CHARS {
            content.extend(echoed.chars().take(ECHO_CHARS));
            content.push('…');
        } else {
            content.push_str(&echoed);
        }
        let mut finish_reason = "stop";
        if let Some(max) = request.max_tokens {
            let words: Vec<&str> = content.split_whitespace().collect();
            if words.len() > max as usize {
                content = words[..max as usize].join(" ");
                finish_reason = "length";
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
            finish_reason: finish_reason.into(),
        })
    }

    pub fn default_model() -> &'static str {
        DEFAULT_MODEL
    }
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

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage {
                role: Role::User,
                content: text.into(),
            }],
            ..ChatRequest::default()
        }
    }

    #[test]
    fn same_request_same_answer() {
        let a = MockProvider
            .complete(&request("tell me  about\nkettles"))
            .unwrap();
        let b = MockProvider
            .complete(&request("tell me  about\nkettles"))
            .unwrap();
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
        let answer = MockProvider.complete(&r).unwrap();
        assert_eq!(answer.content, "[mock] one");
        assert_eq!(answer.finish_reason, "length");
    }

    #[test]
    fn no_user_message_is_invalid() {
        let r = ChatRequest::default();
        assert!(matches!(
            MockProvider.complete(&r),
            Err(LlmError::InvalidRequest(_))
        ));
    }
}
