//! LLM use of a whole run, summed over its nodes.

use crate::llm::{ChatResponse, LlmError};
use std::sync::atomic::{AtomicU64, Ordering};

/// LLM use of a whole run, summed over its nodes.
#[derive(Debug, Default)]
pub struct LlmUsage {
    pub calls: AtomicU64,
    pub failed_calls: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
}

impl LlmUsage {
    pub(crate) fn record(&self, outcome: Result<&ChatResponse, &LlmError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(r) => {
                self.input_tokens
                    .fetch_add(u64::from(r.usage.input_tokens), Ordering::Relaxed);
                self.output_tokens
                    .fetch_add(u64::from(r.usage.output_tokens), Ordering::Relaxed);
            }
            Err(_) => {
                self.failed_calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
