//! TEA's inline code: executed by its language's interpreter component, in the run's own
//! instance of it (or a fresh one for `isolation: node`), under the node's limits and span.

use super::Run;
use super::cores::Instance;
use super::node::update_of;
use crate::engine::error::RunError;
use crate::graph::InlineAction;
use crate::sandbox::NodeInvocation;
use crate::telemetry::SpanHandle;
use serde::Serialize;
use serde_json::{Map, Value};

/// What the interpreter receives as its `state` argument: the names the code sees.
#[derive(Serialize)]
struct InlineContext<'a> {
    state: &'a Map<String, Value>,
    variables: &'a Map<String, Value>,
    /// `parallel_results` in a fan-in node; a `dynamic_parallel` item and its index.
    extras: &'a Map<String, Value>,
}

impl Run<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_inline(
        &self,
        node: &str,
        inline: &InlineAction,
        state: &Map<String, Value>,
        extras: &Map<String, Value>,
        span: &SpanHandle,
        attempt: u32,
    ) -> Result<Map<String, Value>, RunError> {
        let interpreter = self
            .agent
            .component(inline.interpreter)
            .ok_or_else(|| RunError::node(node, "internal", "the interpreter was not prepared"))?;
        let mut names = extras.clone();
        if let Some(results) = state.get(super::flow::PARALLEL_RESULTS) {
            names.insert(super::flow::PARALLEL_RESULTS.into(), results.clone());
        }
        let config = match &inline.config {
            Some(config) => config.clone(),
            None => inline
                .config_for(&self.context(state, extras))
                .map_err(|e| RunError::node(node, "template", format!("inline code: {e}")))?,
        };
        let context = serde_json::to_string(&InlineContext {
            state,
            variables: &self.agent.variables,
            extras: &names,
        })
        .map_err(|e| RunError::node(node, "internal", format!("cannot encode the state: {e}")))?;
        let limits = self.limits_of(node);
        let capabilities = Box::new(
            self.capabilities
                .prepare(&self.node_setup(node, span, &limits)),
        );
        let invocation = NodeInvocation {
            run_id: self.run_id.to_string(),
            node_name: node.to_string(),
            attempt,
            config,
            state: context,
            capabilities,
            grants: self.agent.policy(node).grants.clone(),
            limits,
        };
        let instance = if inline.fresh_instance {
            Instance::Fresh
        } else {
            Instance::Kept(inline.interpreter)
        };
        let executed = self
            .tasks
            .execute(interpreter, instance, move || invocation, update_of(node))
            .await;
        executed.map_err(|failure| {
            RunError::node(
                node,
                &failure.kind(),
                format!("{} inline code: {failure}", inline.language),
            )
        })?
    }
}
