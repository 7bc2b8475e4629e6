//! Instances kept for the length of one run: the interpreter of an agent's inline code is
//! instantiated once per run (never shared between runs) and called for every inline node,
//! with that execution's limits, time limit and capability state (trace parent, LLM quota,
//! log budget) swapped into its store before each call. A failed execution discards the
//! instance; a call that finds the instance busy (a parallel branch) gets a fresh one.

use super::execute::{Forwarded, NodeFailure, NodeInvocation, NodeOutput, Outcome};
use super::execute::{arm, clean_up, new_store, verdict};
use super::host::NodeHost;
use super::limits::NodeLimiter;
use super::prepare::{PreparedComponent, Sandbox};
use crate::capabilities::bindings::Node;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::Store;

/// A live instance and its store.
struct Session {
    store: Store<NodeHost>,
    node: Node,
    forwarded: Forwarded,
    /// The pool slots the instance occupies while it lives.
    _slots: Option<OwnedSemaphorePermit>,
}

type Slot = Arc<tokio::sync::Mutex<Option<Session>>>;

/// One run's kept instances, by a key the caller chooses (the component's id). Dropped with
/// the run.
#[derive(Default)]
pub struct RunInstances {
    sessions: Mutex<HashMap<usize, Slot>>,
}

impl RunInstances {
    fn slot(&self, key: usize) -> Slot {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        sessions.entry(key).or_default().clone()
    }
}

impl Sandbox {
    /// Runs one execution of `component` in the run's instance kept under `key`, creating it
    /// on first use; in a fresh instance when that one is busy.
    pub async fn execute_in_run(
        &self,
        instances: &RunInstances,
        key: usize,
        component: &PreparedComponent,
        invocation: NodeInvocation,
    ) -> Result<NodeOutput, NodeFailure> {
        let Ok(mut slot) = instances.slot(key).try_lock_owned() else {
            return self.execute(component, invocation).await;
        };
        let session = slot.take();
        let (result, kept) = self.call_session(session, component, invocation).await;
        *slot = kept;
        result
    }

    async fn call_session(
        &self,
        session: Option<Session>,
        component: &PreparedComponent,
        invocation: NodeInvocation,
    ) -> (Result<NodeOutput, NodeFailure>, Option<Session>) {
        let (context, state, capabilities, limits, grants) = invocation.into_parts();
        let (mut store, existing, slots, mut forwarded) = match session {
            Some(mut session) => {
                let host = session.store.data_mut();
                host.capabilities = capabilities;
                host.limiter = NodeLimiter::new(limits.memory_bytes());
                if let Err(failure) = arm(&mut session.store, &limits) {
                    return (Err(failure), None);
                }
                (
                    session.store,
                    Some(session.node),
                    session._slots,
                    session.forwarded,
                )
            }
            None => {
                let slots = self.slots.acquire(component.shape).await;
                let node_name = context.node_name.clone();
                match new_store(
                    component.engine(),
                    node_name,
                    capabilities,
                    &limits,
                    &grants,
                ) {
                    Ok(store) => (store, None, slots, Forwarded::default()),
                    Err(failure) => return (Err(failure), None),
                }
            }
        };
        let call = async {
            let node = match existing {
                Some(node) => node,
                None => match component.pre().instantiate_async(&mut store).await {
                    Ok(node) => node,
                    Err(e) => return (Outcome::Instantiate(e), None),
                },
            };
            let called = node.call_run(&mut store, &context, &state).await;
            (Outcome::Called(called), Some(node))
        };
        // The deadline covers instantiation and host calls, as for a fresh instance.
        let (outcome, node) = tokio::time::timeout(limits.timeout(), call)
            .await
            .unwrap_or((Outcome::TimedOut, None));
        let aftermath = clean_up(
            store.data_mut(),
            &context.node_name,
            &outcome,
            &mut forwarded,
        );
        let result = verdict(store.data(), outcome, aftermath, &limits);
        // Only an instance that returned normally is called again: one that trapped, timed
        // out or hit a limit may be in any state.
        let kept = match (&result, node) {
            (Ok(_), Some(node)) => Some(Session {
                store,
                node,
                forwarded,
                _slots: slots,
            }),
            _ => None,
        };
        (result, kept)
    }
}
