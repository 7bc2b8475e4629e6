//! LLM use of a whole run, summed over its nodes: calls are counted when admitted (see
//! `quota`), tokens when known, and, per provider, the calls that reached it (a call refused
//! before it was sent is in none).

use crate::llm::{ChatResponse, LlmError};
use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// LLM use of a whole run, summed over its nodes.
#[derive(Debug, Default)]
pub struct LlmUsage {
    pub calls: AtomicU64,
    pub failed_calls: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
    /// Calls sent before the checkpoint a resumed run continues from (not in `sent`).
    pub restored_calls: AtomicU64,
    /// Per provider name: its `gen_ai.provider.name` and the calls sent to it.
    sent: Mutex<BTreeMap<String, (&'static str, u64)>>,
}

/// The calls sent to one provider in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCalls {
    /// The provider's name in `settings.llm`.
    pub name: String,
    /// Its type, as `gen_ai.provider.name` (`openai`, `anthropic`, `mock`, …).
    pub system: &'static str,
    pub calls: u64,
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

    /// Counts one call that was sent to (or answered by) provider `name`.
    pub(crate) fn record_sent(&self, name: &str, system: &'static str) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.entry(name.to_string()).or_insert((system, 0)).1 += 1;
        }
    }

    /// The calls sent, per provider, by name.
    pub fn sent_by_provider(&self) -> Vec<ProviderCalls> {
        self.sent.lock().map_or_else(
            |_| Vec::new(),
            |sent| {
                sent.iter()
                    .map(|(name, (system, calls))| ProviderCalls {
                        name: name.clone(),
                        system,
                        calls: *calls,
                    })
                    .collect()
            },
        )
    }

    /// Counts tokens of the run.
    pub(crate) fn add_tokens(&self, input: u64, output: u64) {
        self.input_tokens.fetch_add(input, Ordering::AcqRel);
        self.output_tokens.fetch_add(output, Ordering::AcqRel);
    }
}
