//! LLM use of a whole run, summed over its nodes: calls are counted when admitted (see
//! `quota`), tokens when known.

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
    /// Counts one call about to be made, unless `max` calls were already made (then the
    /// calls made so far). Atomic: racing callers never overshoot `max`.
    pub(crate) fn reserve_call(&self, max: Option<u64>) -> Result<(), u64> {
        self.calls
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| match max {
                Some(max) if used >= max => None,
                _ => Some(used + 1),
            })
            .map(drop)
    }

    /// Records the outcome of a call counted by [`Self::reserve_call`].
    pub(crate) fn record(&self, outcome: Result<&ChatResponse, &LlmError>) {
        match outcome {
            Ok(r) => self.add_tokens(
                u64::from(r.usage.input_tokens),
                u64::from(r.usage.output_tokens),
            ),
            Err(_) => {
                self.failed_calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts tokens of the run.
    pub(crate) fn add_tokens(&self, input: u64, output: u64) {
        self.input_tokens.fetch_add(input, Ordering::AcqRel);
        self.output_tokens.fetch_add(output, Ordering::AcqRel);
    }
}
