//! A node's policy: its limits, what its sandbox grants, and what happens when it fails
//! (retries with backoff, routing to an error handler).

use crate::capabilities::LlmGrant;
use crate::sandbox::{FsGrant, Grants, HostPattern};
use crate::spec::{FsAccess, LimitsSpec, LoadedSpec, NodeSpec, RetrySpec};
use std::sync::Arc;
use std::time::Duration;

const DEFAULT_BACKOFF_MS: u64 = 500;
const DEFAULT_MAX_BACKOFF_MS: u64 = 30_000;
/// Where a folder grant appears in the guest when `as:` is not given.
pub const DEFAULT_GUEST_PATH: &str = "/data";

#[derive(Debug, Clone, Default)]
pub struct NodePolicy {
    /// The node's own `limits:` (resolved against settings and CLI when it runs).
    pub limits: Option<LimitsSpec>,
    pub grants: Arc<Grants>,
    /// The node's `permissions.llm`.
    pub llm: LlmGrant,
    pub retry: Option<RetrySpec>,
    pub idempotent: bool,
    /// The node to route to when this one fails.
    pub on_error: Option<String>,
}

impl NodePolicy {
    /// The node's policy, or `None` when the node sets none of what a policy holds: it has
    /// the default policy, which [`crate::engine::Agent::policy`] shares among such nodes.
    pub fn of(loaded: &LoadedSpec, node: &NodeSpec) -> Option<Self> {
        let own = node.permissions.is_some()
            || node.limits.is_some()
            || node.retry.is_some()
            || node.idempotent
            || node.on_error.is_some();
        own.then(|| Self::from_spec(loaded, node))
    }

    pub fn from_spec(loaded: &LoadedSpec, node: &NodeSpec) -> Self {
        let permissions = node.permissions.as_deref().cloned().unwrap_or_default();
        let grants = Grants {
            fs: permissions
                .fs
                .iter()
                .map(|g| FsGrant {
                    host_path: loaded.resolve(&g.path),
                    guest_path: g
                        .guest_path
                        .clone()
                        .unwrap_or_else(|| DEFAULT_GUEST_PATH.into()),
                    writable: g.access == FsAccess::ReadWrite,
                })
                .collect(),
            env: permissions
                .env
                .iter()
                .filter_map(|name| std::env::var(name).ok().map(|value| (name.clone(), value)))
                .collect(),
            // Patterns were checked by validation; one that does not parse grants nothing.
            http: Arc::new(
                permissions
                    .http
                    .iter()
                    .filter_map(|p| HostPattern::parse(p).ok())
                    .collect(),
            ),
        };
        let llm = permissions
            .llm
            .as_ref()
            .map(|l| LlmGrant {
                models: l.models.clone(),
                providers: l.providers.clone(),
            })
            .unwrap_or_default();
        Self {
            limits: node.limits.as_deref().cloned(),
            grants: Arc::new(grants),
            llm,
            retry: node.retry.as_deref().cloned(),
            idempotent: node.idempotent,
            on_error: node.on_error.clone(),
        }
    }

    /// Attempts in all (1 without `retry:`).
    pub fn max_attempts(&self) -> u32 {
        self.retry.as_ref().map_or(1, |r| r.max_attempts.max(1))
    }

    /// The wait before attempt `next` (2, 3, ...): doubling from `backoff_ms`, capped.
    pub fn backoff(&self, next: u32) -> Duration {
        let Some(retry) = &self.retry else {
            return Duration::ZERO;
        };
        let base = retry.backoff_ms.unwrap_or(DEFAULT_BACKOFF_MS);
        let cap = retry.max_backoff_ms.unwrap_or(DEFAULT_MAX_BACKOFF_MS);
        let factor = 1u64 << next.saturating_sub(2).min(20);
        Duration::from_millis(base.saturating_mul(factor).min(cap))
    }

    /// Whether a failure of kind `kind` is worth another attempt.
    pub fn retries(&self, kind: &str) -> bool {
        let provider_busy = matches!(
            kind,
            "rate_limited" | "timeout" | "llm.rate_limited" | "llm.timeout"
        );
        let crash = matches!(kind, "trap" | "stack_overflow");
        provider_busy || (crash && self.idempotent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_sets_no_policy_has_the_default_one() {
        let yaml = "nodes:\n  - name: plain\n    run: 'return {}'\n  - name: retried\n    run: 'return {}'\n    retry: {max_attempts: 3}\n  - name: granted\n    run: 'return {}'\n    permissions: {env: [HOME]}\n";
        let loaded =
            crate::spec::parse_str(yaml, std::path::Path::new("agent.yaml")).expect("parses");
        let [plain, retried, granted] = &loaded.spec.nodes[..] else {
            panic!("three nodes: {:?}", loaded.type_errors)
        };
        assert!(NodePolicy::of(&loaded, plain).is_none());
        // What `of` leaves out is exactly what the default policy holds.
        let own = NodePolicy::from_spec(&loaded, plain);
        let default = NodePolicy::default();
        assert_eq!(*own.grants, *default.grants);
        assert_eq!(own.llm, default.llm);
        assert_eq!(own.limits, default.limits);
        assert_eq!(own.retry, default.retry);
        assert_eq!(
            (own.idempotent, &own.on_error),
            (default.idempotent, &default.on_error)
        );
        assert_eq!(
            NodePolicy::of(&loaded, retried).map(|p| p.max_attempts()),
            Some(3)
        );
        assert!(NodePolicy::of(&loaded, granted).is_some());
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = NodePolicy {
            retry: Some(RetrySpec {
                max_attempts: 5,
                backoff_ms: Some(100),
                max_backoff_ms: Some(350),
            }),
            ..NodePolicy::default()
        };
        assert_eq!(policy.max_attempts(), 5);
        let waits: Vec<u64> = (2..=5)
            .map(|n| policy.backoff(n).as_millis() as u64)
            .collect();
        assert_eq!(waits, [100, 200, 350, 350]);
    }

    #[test]
    fn crashes_are_retried_only_for_idempotent_nodes() {
        let mut policy = NodePolicy::default();
        assert!(policy.retries("llm.rate_limited"));
        assert!(!policy.retries("trap"));
        assert!(!policy.retries("limit.timeout_ms"));
        policy.idempotent = true;
        assert!(policy.retries("trap"));
    }
}
