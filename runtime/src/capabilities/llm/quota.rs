//! What a node may ask of the LLM: granted models and providers, calls and tokens per
//! execution, and the run's budget. A refused call gets `llm-error::denied`; a refusal caused by
//! a limit is remembered so that the execution fails with that limit named.

use super::usage::LlmUsage;
use crate::llm::{ChatRequest, ChatResponse, LlmClient, LlmError};
use std::sync::atomic::Ordering;

/// The run-wide LLM budget (`settings.budget`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunBudget {
    pub max_llm_calls: Option<u64>,
    pub max_llm_tokens: Option<u64>,
}

/// The node's `permissions.llm`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LlmGrant {
    /// Granted models (empty: any).
    pub models: Vec<String>,
    /// Granted providers (empty: any).
    pub providers: Vec<String>,
}

/// A limit the node ran into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitBreach {
    /// `max_llm_calls`, `max_llm_tokens`, `budget.max_llm_calls`, `budget.max_llm_tokens`.
    pub limit: &'static str,
    pub value: u64,
}

/// Per-execution LLM allowance.
#[derive(Debug, Clone, Default)]
pub struct LlmQuota {
    max_calls: Option<u64>,
    max_tokens: Option<u64>,
    /// Granted models (empty: any).
    models: Vec<String>,
    /// Granted providers (empty: any).
    providers: Vec<String>,
    budget: RunBudget,
    calls: u64,
    tokens: u64,
    breach: Option<LimitBreach>,
    last_error: Option<&'static str>,
}

impl LlmQuota {
    pub fn new(
        max_calls: Option<u64>,
        max_tokens: Option<u64>,
        models: Vec<String>,
        providers: Vec<String>,
        budget: RunBudget,
    ) -> Self {
        Self {
            max_calls,
            max_tokens,
            models,
            providers,
            budget,
            ..Self::default()
        }
    }

    /// Admits one call, or says why not.
    pub fn admit(
        &mut self,
        client: &LlmClient,
        request: &ChatRequest,
        run: &LlmUsage,
    ) -> Result<(), LlmError> {
        // A request that does not resolve fails on its own, with the client's message.
        if let Ok((provider, model)) = client.target(request) {
            let model = model.as_str();
            if !self.models.is_empty() && !self.models.iter().any(|m| m == model) {
                return Err(LlmError::Denied(format!(
                    "model `{model}` is not granted to this node (permissions.llm.models: {})",
                    self.models.join(", ")
                )));
            }
            if !self.providers.is_empty()
                && !self
                    .providers
                    .iter()
                    .any(|p| *p == provider.name || p == provider.system)
            {
                return Err(LlmError::Denied(format!(
                    "provider `{}` is not granted to this node (permissions.llm.providers: {})",
                    provider.name,
                    self.providers.join(", ")
                )));
            }
        }
        let run_calls = run.calls.load(Ordering::Relaxed);
        let run_tokens =
            run.input_tokens.load(Ordering::Relaxed) + run.output_tokens.load(Ordering::Relaxed);
        let checks = [
            ("max_llm_calls", self.max_calls, self.calls),
            ("max_llm_tokens", self.max_tokens, self.tokens),
            ("budget.max_llm_calls", self.budget.max_llm_calls, run_calls),
            (
                "budget.max_llm_tokens",
                self.budget.max_llm_tokens,
                run_tokens,
            ),
        ];
        for (limit, max, used) in checks {
            if let Some(max) = max
                && used >= max
            {
                self.breach.get_or_insert(LimitBreach { limit, value: max });
                self.last_error = Some("denied");
                return Err(LlmError::Denied(format!(
                    "{limit}={max} is used up ({used} used)"
                )));
            }
        }
        Ok(())
    }

    /// Counts a call that was made.
    pub fn record(&mut self, outcome: &Result<ChatResponse, LlmError>) {
        self.record_call(outcome.as_ref().err());
        if let Ok(response) = outcome {
            self.tokens +=
                u64::from(response.usage.input_tokens) + u64::from(response.usage.output_tokens);
        }
    }

    /// Counts a call, with its error if it failed.
    pub fn record_call(&mut self, error: Option<&LlmError>) {
        self.calls += 1;
        self.last_error = error.map(LlmError::kind);
    }

    /// The kind of the last call's error, when the last call failed.
    pub fn last_error(&self) -> Option<&'static str> {
        self.last_error
    }

    /// The first limit this execution ran into, if any.
    pub fn breach(&self) -> Option<&LimitBreach> {
        self.breach.as_ref()
    }
}
