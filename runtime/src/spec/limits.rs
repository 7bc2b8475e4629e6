//! The limits in force for one node execution, resolved from the CLI's `--limit`, the node's
//! `limits:` and `settings.limits` (first given wins), with the defaults the README's limits
//! table names. Pure data: the sandbox and the capabilities enforce them.

use super::{BudgetSpec, LimitsSpec};
use std::time::Duration;

/// Memory of all the node's linear memories and tables together.
pub const DEFAULT_MEMORY_MB: u64 = 256;
pub const DEFAULT_TIMEOUT_MS: u64 = 60_000;
pub const DEFAULT_MAX_LLM_CALLS: u64 = 100;
pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 8 << 20;
pub const DEFAULT_MAX_LOG_LINES: u64 = 1000;
pub const DEFAULT_MAX_LOG_BYTES: u64 = 1 << 20;
pub const DEFAULT_MAX_ERROR_BYTES: u64 = 16 << 10;
/// LLM calls of a whole run (`settings.budget.max_llm_calls`).
pub const DEFAULT_BUDGET_MAX_LLM_CALLS: u64 = 1000;
/// Bytes one log line (or stdout/stderr line) keeps; the rest is cut, with a marker.
pub const MAX_LOG_LINE_BYTES: usize = 16 << 10;

/// The limits in force for one node.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLimits {
    pub memory_mb: u64,
    pub timeout_ms: u64,
    pub fuel: Option<u64>,
    pub max_llm_calls: Option<u64>,
    pub max_llm_tokens: Option<u64>,
    pub max_output_bytes: u64,
    pub max_log_lines: u64,
    pub max_log_bytes: u64,
    pub max_error_bytes: u64,
}

/// The run-wide LLM budget in force (`settings.budget`, with its defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunLimits {
    pub max_llm_calls: u64,
    pub max_llm_tokens: Option<u64>,
}

impl RunLimits {
    pub fn resolve(budget: Option<&BudgetSpec>) -> Self {
        Self {
            max_llm_calls: budget
                .and_then(|b| b.max_llm_calls)
                .unwrap_or(DEFAULT_BUDGET_MAX_LLM_CALLS),
            max_llm_tokens: budget.and_then(|b| b.max_llm_tokens),
        }
    }
}

impl Default for NodeLimits {
    fn default() -> Self {
        Self::resolve(&[])
    }
}

impl NodeLimits {
    /// The first value given wins: pass the most specific layer first (CLI overrides, the
    /// node's `limits:`, `settings.limits`).
    pub fn resolve(layers: &[Option<&LimitsSpec>]) -> Self {
        let pick =
            |get: fn(&LimitsSpec) -> Option<u64>| layers.iter().flatten().find_map(|l| get(l));
        Self {
            memory_mb: pick(|l| l.memory_mb).unwrap_or(DEFAULT_MEMORY_MB),
            timeout_ms: pick(|l| l.timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS),
            fuel: pick(|l| l.fuel),
            max_llm_calls: Some(pick(|l| l.max_llm_calls).unwrap_or(DEFAULT_MAX_LLM_CALLS)),
            max_llm_tokens: pick(|l| l.max_llm_tokens),
            max_output_bytes: pick(|l| l.max_output_bytes).unwrap_or(DEFAULT_MAX_OUTPUT_BYTES),
            max_log_lines: pick(|l| l.max_log_lines).unwrap_or(DEFAULT_MAX_LOG_LINES),
            max_log_bytes: pick(|l| l.max_log_bytes).unwrap_or(DEFAULT_MAX_LOG_BYTES),
            max_error_bytes: pick(|l| l.max_error_bytes).unwrap_or(DEFAULT_MAX_ERROR_BYTES),
        }
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    pub fn memory_bytes(&self) -> usize {
        usize::try_from(self.memory_mb.saturating_mul(1 << 20)).unwrap_or(usize::MAX)
    }
}

/// How to raise limit `name`, for error messages.
pub fn raise_hint(name: &str) -> String {
    format!(
        "raise it with `limits: {{{name}: …}}` on the node, in settings.limits, or with `--limit {name}=…`"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_layer_with_a_value_wins_and_defaults_fill_the_rest() {
        let cli = LimitsSpec {
            timeout_ms: Some(5),
            ..LimitsSpec::default()
        };
        let node = LimitsSpec {
            timeout_ms: Some(10),
            memory_mb: Some(64),
            ..LimitsSpec::default()
        };
        let settings = LimitsSpec {
            memory_mb: Some(128),
            fuel: Some(9),
            ..LimitsSpec::default()
        };
        let limits = NodeLimits::resolve(&[Some(&cli), Some(&node), Some(&settings)]);
        assert_eq!(limits.timeout_ms, 5);
        assert_eq!(limits.memory_mb, 64);
        assert_eq!(limits.fuel, Some(9));
        assert_eq!(limits.max_output_bytes, DEFAULT_MAX_OUTPUT_BYTES);
        assert_eq!(NodeLimits::default().memory_mb, DEFAULT_MEMORY_MB);
    }

    #[test]
    fn llm_calls_are_bounded_by_default() {
        assert_eq!(
            NodeLimits::default().max_llm_calls,
            Some(DEFAULT_MAX_LLM_CALLS)
        );
        assert_eq!(
            RunLimits::resolve(None).max_llm_calls,
            DEFAULT_BUDGET_MAX_LLM_CALLS
        );
        let budget = BudgetSpec {
            max_llm_calls: Some(3),
            ..BudgetSpec::default()
        };
        assert_eq!(RunLimits::resolve(Some(&budget)).max_llm_calls, 3);
    }
}
