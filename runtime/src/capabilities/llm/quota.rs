//! What a node may ask of the LLM: granted models and providers, calls and tokens per
//! execution, and the run's budget. A call is reserved, atomically against the run's budget,
//! before it is made, so that parallel nodes cannot overshoot it; its tokens count when they
//! are known. A refused call gets `llm-error::denied`; a refusal caused by a limit is
//! remembered so that the execution fails with that limit named.

use super::usage::LlmUsage;
use crate::llm::{ChatRequest, ChatResponse, LlmClient, LlmError};
use crate::spec::RunLimits;
use std::sync::atomic::Ordering;

/// The run-wide LLM budget (`settings.budget`); `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunBudget {
    pub max_llm_calls: Option<u64>,
    pub max_llm_tokens: Option<u64>,
}

impl From<RunLimits> for RunBudget {
    fn from(limits: RunLimits) -> Self {
        Self {
            max_llm_calls: Some(limits.max_llm_calls),
            max_llm_tokens: limits.max_llm_tokens,
        }
    }
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

    /// Admits one call and counts it (in this execution and in the run), or says why not.
    /// The run's count is reserved atomically: of parallel nodes racing for the last call
    /// of the budget, one gets it.
    pub fn admit(
        &mut self,
        client: &LlmClient,
        request: &ChatRequest,
        run: &LlmUsage,
    ) -> Result<(), LlmError> {
        self.check_grants(client, request)?;
        let run_tokens =
            run.input_tokens.load(Ordering::Acquire) + run.output_tokens.load(Ordering::Acquire);
        let checks = [
            ("max_llm_calls", self.max_calls, self.calls),
            ("max_llm_tokens", self.max_tokens, self.tokens),
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
                return Err(self.deny(limit, max, used));
            }
        }
        if let Err(used) = run.reserve_call(self.budget.max_llm_calls) {
            let max = self.budget.max_llm_calls.unwrap_or(u64::MAX);
            return Err(self.deny("budget.max_llm_calls", max, used));
        }
        self.calls += 1;
        Ok(())
    }

    fn check_grants(&self, client: &LlmClient, request: &ChatRequest) -> Result<(), LlmError> {
        // A request that does not resolve fails on its own, with the client's message.
        let Ok((provider, model)) = client.target(request) else {
            return Ok(());
        };
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
        Ok(())
    }

    fn deny(&mut self, limit: &'static str, max: u64, used: u64) -> LlmError {
        self.breach.get_or_insert(LimitBreach { limit, value: max });
        self.last_error = Some("denied");
        LlmError::Denied(format!("{limit}={max} is used up ({used} used)"))
    }

    /// Records the outcome of an admitted call: its tokens, and its error if it failed.
    pub fn record(&mut self, outcome: &Result<ChatResponse, LlmError>) {
        self.record_error(outcome.as_ref().err());
        if let Ok(response) = outcome {
            self.add_tokens(
                u64::from(response.usage.input_tokens) + u64::from(response.usage.output_tokens),
            );
        }
    }

    /// Records whether an admitted call (or the opening of a stream) failed.
    pub fn record_error(&mut self, error: Option<&LlmError>) {
        self.last_error = error.map(LlmError::kind);
    }

    /// Counts tokens used by this execution (a stream's, when they become known).
    pub fn add_tokens(&mut self, tokens: u64) {
        self.tokens = self.tokens.saturating_add(tokens);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatMessage, Role, Usage};

    fn request(model: Option<&str>) -> ChatRequest {
        ChatRequest {
            messages: vec![ChatMessage::new(Role::User, "hi")],
            model: model.map(str::to_string),
            ..ChatRequest::default()
        }
    }

    fn answer(input_tokens: u32, output_tokens: u32) -> Result<ChatResponse, LlmError> {
        Ok(ChatResponse {
            id: None,
            content: "ok".into(),
            model: "mock-1".into(),
            finish_reason: "stop".into(),
            usage: Usage {
                input_tokens,
                output_tokens,
            },
            tool_calls: Vec::new(),
        })
    }

    fn quota(max_calls: Option<u64>, max_tokens: Option<u64>, budget: RunBudget) -> LlmQuota {
        LlmQuota::new(max_calls, max_tokens, Vec::new(), Vec::new(), budget)
    }

    fn denial(outcome: Result<(), LlmError>) -> String {
        match outcome {
            Err(LlmError::Denied(message)) => message,
            other => panic!("expected a denial, got {other:?}"),
        }
    }

    #[test]
    fn calls_past_max_llm_calls_are_denied_and_remembered() {
        let (client, run) = (LlmClient::mock(), LlmUsage::default());
        let mut quota = quota(Some(2), None, RunBudget::default());
        for _ in 0..2 {
            assert!(quota.admit(&client, &request(None), &run).is_ok());
            quota.record(&answer(1, 1));
        }
        assert_eq!(quota.breach(), None);
        let message = denial(quota.admit(&client, &request(None), &run));
        assert_eq!(message, "max_llm_calls=2 is used up (2 used)");
        assert_eq!(
            quota.breach(),
            Some(&LimitBreach {
                limit: "max_llm_calls",
                value: 2
            })
        );
        assert_eq!(quota.last_error(), Some("denied"));
    }

    #[test]
    fn tokens_count_input_and_output() {
        let (client, run) = (LlmClient::mock(), LlmUsage::default());
        let mut quota = quota(None, Some(10), RunBudget::default());
        assert!(quota.admit(&client, &request(None), &run).is_ok());
        quota.record(&answer(6, 5));
        let message = denial(quota.admit(&client, &request(None), &run));
        assert_eq!(message, "max_llm_tokens=10 is used up (11 used)");
        assert_eq!(quota.breach().map(|b| b.limit), Some("max_llm_tokens"));
    }

    #[test]
    fn the_run_budget_counts_every_node_of_the_run() {
        let client = LlmClient::mock();
        let run = LlmUsage::default();
        let budget = RunBudget {
            max_llm_calls: Some(3),
            max_llm_tokens: Some(100),
        };
        // Other nodes already made three calls: this node's first call is over the budget.
        run.calls.store(3, Ordering::Relaxed);
        let mut fresh = quota(None, None, budget);
        let message = denial(fresh.admit(&client, &request(None), &run));
        assert_eq!(message, "budget.max_llm_calls=3 is used up (3 used)");

        run.calls.store(0, Ordering::Relaxed);
        run.input_tokens.store(60, Ordering::Relaxed);
        run.output_tokens.store(40, Ordering::Relaxed);
        let mut fresh = quota(None, None, budget);
        let message = denial(fresh.admit(&client, &request(None), &run));
        assert_eq!(message, "budget.max_llm_tokens=100 is used up (100 used)");
        assert_eq!(
            fresh.breach(),
            Some(&LimitBreach {
                limit: "budget.max_llm_tokens",
                value: 100
            })
        );
    }

    #[test]
    fn parallel_nodes_cannot_overshoot_the_runs_call_budget() {
        let client = LlmClient::mock();
        let run = LlmUsage::default();
        let budget = RunBudget {
            max_llm_calls: Some(3),
            max_llm_tokens: None,
        };
        let admitted = std::thread::scope(|scope| {
            let nodes: Vec<_> = (0..20)
                .map(|_| {
                    scope.spawn(|| {
                        let mut node = quota(None, None, budget);
                        node.admit(&client, &request(None), &run).is_ok()
                    })
                })
                .collect();
            nodes
                .into_iter()
                .map(|n| n.join().expect("no panic"))
                .filter(|admitted| *admitted)
                .count()
        });
        assert_eq!(admitted, 3);
        assert_eq!(
            run.calls.load(Ordering::Relaxed),
            3,
            "denied calls are not counted"
        );
    }

    #[test]
    fn the_first_breach_is_the_one_reported() {
        let (client, run) = (LlmClient::mock(), LlmUsage::default());
        let mut quota = quota(Some(0), Some(0), RunBudget::default());
        denial(quota.admit(&client, &request(None), &run));
        quota.record(&answer(5, 5));
        denial(quota.admit(&client, &request(None), &run));
        assert_eq!(quota.breach().map(|b| b.limit), Some("max_llm_calls"));
    }

    #[test]
    fn models_and_providers_not_granted_are_denied_without_a_breach() {
        let (client, run) = (LlmClient::mock(), LlmUsage::default());
        let mut models = LlmQuota::new(
            None,
            None,
            vec!["mock-1".into()],
            Vec::new(),
            RunBudget::default(),
        );
        assert!(models.admit(&client, &request(None), &run).is_ok());
        let message = denial(models.admit(&client, &request(Some("big-1")), &run));
        assert_eq!(
            message,
            "model `big-1` is not granted to this node (permissions.llm.models: mock-1)"
        );
        assert_eq!(models.breach(), None);

        let mut providers = LlmQuota::new(
            None,
            None,
            Vec::new(),
            vec!["openai".into()],
            RunBudget::default(),
        );
        let message = denial(providers.admit(&client, &request(None), &run));
        assert_eq!(
            message,
            "provider `mock` is not granted to this node (permissions.llm.providers: openai)"
        );
        // A provider may be granted by its system as well as by its name.
        let mut by_system = LlmQuota::new(
            None,
            None,
            Vec::new(),
            vec!["mock".into()],
            RunBudget::default(),
        );
        assert!(by_system.admit(&client, &request(None), &run).is_ok());
    }

    #[test]
    fn the_last_error_is_the_last_calls() {
        let mut quota = LlmQuota::default();
        quota.record(&Err(LlmError::RateLimited("slow down".into())));
        assert_eq!(quota.last_error(), Some("rate_limited"));
        quota.record(&answer(1, 1));
        assert_eq!(quota.last_error(), None);
    }
}
