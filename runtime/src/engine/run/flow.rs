//! Routing through the graph: rules chosen in order, parallel fan-out with every branch on a
//! copy of the state and a `parallel {node}` span as the branches' parent, fan-in with
//! `parallel_results`, and the run-wide step limit.

use super::Run;
use super::node::error_route;
use crate::engine::error::RunError;
use crate::engine::state::merge_update;
use crate::graph::{Next, NodeKind, Route, Rule, template};
use crate::spec::START;
use crate::telemetry::{SpanGuard, SpanHandle};
use futures::future::BoxFuture;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde_json::{Map, Value};
use std::sync::atomic::Ordering;

/// The state key a fan-in node reads the branch states from.
pub const PARALLEL_RESULTS: &str = "parallel_results";

/// How many recent nodes a path remembers, to name the loop when the step limit is hit.
const TRAIL: usize = 64;

impl Run<'_> {
    /// Runs the agent's graph from `__start__` to `__end__`, on `state`.
    pub(super) async fn run_graph(&self, state: &mut Map<String, Value>) -> Result<(), RunError> {
        let first = match &self.agent.graph.entry {
            Route::Rules(rules) => self.choose(START, rules, state, Map::new())?,
            Route::Parallel { .. } => Next::End,
        };
        let mut trail = Vec::new();
        self.run_path(self.root, first, state, None, &mut trail)
            .await
    }

    /// Runs nodes from `first` until the end, or until the path reaches `stop` (the fan-in
    /// node of the group this path is a branch of). Node spans are children of `parent`.
    fn run_path<'a, 'b: 'a>(
        &'a self,
        parent: &'a SpanHandle,
        first: Next,
        state: &'a mut Map<String, Value>,
        stop: Option<usize>,
        trail: &'a mut Vec<usize>,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            let graph = &self.agent.graph;
            let mut next = first;
            while let Next::Node(index) = next {
                if Some(index) == stop {
                    break;
                }
                self.count_step(index, trail)?;
                let update = match self.run_node(parent, index, state).await {
                    Ok(update) => update,
                    // With `on_error:`, the handler runs next and finds the failure in `state.error`.
                    Err(error) => match error_route(self.agent, index, &error) {
                        Some((handler, record)) => {
                            state.insert("error".into(), record);
                            next = Next::Node(handler);
                            continue;
                        }
                        None => return Err(error),
                    },
                };
                // Conditions may read the update as `result`; only they need a copy.
                let conditional = matches!(
                    graph.route(index),
                    Route::Rules(rules) if rules.iter().any(|r| r.when.is_some())
                );
                let result = if conditional {
                    update.clone()
                } else {
                    Map::new()
                };
                merge_update(state, update);
                let node = &graph.nodes[index];
                if let NodeKind::DynamicParallel(dp) = &node.kind
                    && let Some(fan_in) = dp.fan_in
                {
                    next = Next::Node(fan_in);
                    continue;
                }
                next = match graph.route(index) {
                    Route::Rules(rules) => self.choose(&node.name, rules, state, result)?,
                    Route::Parallel { branches, fan_in } => {
                        let results = self
                            .fan_out(parent, index, branches, *fan_in, state, trail)
                            .await?;
                        state.insert(PARALLEL_RESULTS.into(), Value::Array(results));
                        Next::Node(*fan_in)
                    }
                };
            }
            Ok(())
        })
    }

    /// Runs every branch concurrently from a copy of `state` up to `fan_in`; returns the
    /// branch states in edge order. The first failing branch fails the group (the others
    /// are dropped, their spans ending as cancelled).
    #[allow(clippy::too_many_arguments)]
    async fn fan_out(
        &self,
        parent: &SpanHandle,
        fork: usize,
        branches: &[usize],
        fan_in: usize,
        state: &Map<String, Value>,
        trail: &[usize],
    ) -> Result<Vec<Value>, RunError> {
        let graph = &self.agent.graph;
        let fork_name = &graph.nodes[fork].name;
        let span = SpanGuard::new(parent.child(
            self.telemetry.tracer(),
            format!("parallel {fork_name}"),
            SpanKind::Internal,
            vec![
                KeyValue::new("kettle.node.name", fork_name.clone()),
                KeyValue::new("kettle.parallel.branches", branches.len() as i64),
                KeyValue::new("kettle.parallel.fan_in", graph.nodes[fan_in].name.clone()),
                KeyValue::new("kettle.run.id", self.run_id.to_string()),
            ],
        ));
        let group = span.handle().clone();
        let runs = branches.iter().map(|&branch| {
            let mut branch_state = state.clone();
            let mut branch_trail = trail.to_vec();
            let group = group.clone();
            async move {
                self.run_path(
                    &group,
                    Next::Node(branch),
                    &mut branch_state,
                    Some(fan_in),
                    &mut branch_trail,
                )
                .await
                .map(|()| Value::Object(branch_state))
            }
        });
        let results = match self.agent.max_parallel {
            // `settings.parallel.max_workers`: at most that many branches at once, in order.
            Some(limit) => {
                use futures::{StreamExt, TryStreamExt};
                let runs: Vec<_> = runs.collect();
                futures::stream::iter(runs)
                    .buffered(limit.max(1) as usize)
                    .try_collect()
                    .await
            }
            None => futures::future::try_join_all(runs).await,
        };
        match &results {
            Ok(_) => span.finish_ok(),
            Err(e) => span.finish_error(e.to_string()),
        }
        results
    }

    /// The first rule whose condition holds. Conditions see `state`, `variables`, and (as in
    /// TEA) `result`: the update the node just returned.
    fn choose(
        &self,
        from: &str,
        rules: &[Rule],
        state: &Map<String, Value>,
        result: Map<String, Value>,
    ) -> Result<Next, RunError> {
        if rules.is_empty() {
            return Ok(Next::End);
        }
        let mut extras = Map::new();
        extras.insert("result".into(), Value::Object(result));
        let context = self.context(state, &extras);
        for rule in rules {
            let Some(condition) = &rule.when else {
                return Ok(rule.to);
            };
            let holds = template::eval_condition(&condition.expression, &context).map_err(|e| {
                RunError::node(
                    from,
                    "condition",
                    format!("condition `{}`: {e}", condition.written),
                )
            })?;
            if holds == condition.expect {
                return Ok(rule.to);
            }
        }
        let written: Vec<String> = rules
            .iter()
            .filter_map(|r| r.when.as_ref())
            .map(|c| format!("`{}`", c.written))
            .collect();
        Err(RunError::node(
            from,
            "no_route",
            format!(
                "none of the conditions on the way out holds ({}); add a rule without `if:` (or an edge without `when:`) as the fallback",
                written.join(", ")
            ),
        ))
    }
}

impl Run<'_> {
    /// Counts one node execution against the run's limit.
    fn count_step(&self, index: usize, trail: &mut Vec<usize>) -> Result<(), RunError> {
        let limit = self.max_steps;
        let counted = self
            .steps
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < limit).then_some(n + 1)
            });
        if counted.is_err() {
            let graph = &self.agent.graph;
            return Err(RunError::StepLimit {
                limit,
                node: graph.nodes[index].name.clone(),
                cycle: describe_cycle(trail, index, |i| graph.nodes[i].name.as_str()),
            });
        }
        trail.push(index);
        if trail.len() > TRAIL {
            trail.remove(0);
        }
        Ok(())
    }
}

/// The loop that leads back to `next`, from the path's recent nodes: `` `a` → `b` → `a` ``.
fn describe_cycle<'n>(trail: &[usize], next: usize, name: impl Fn(usize) -> &'n str) -> String {
    match trail.iter().rposition(|&i| i == next) {
        Some(start) => trail[start..]
            .iter()
            .chain(std::iter::once(&next))
            .map(|&i| format!("`{}`", name(i)))
            .collect::<Vec<_>>()
            .join(" → "),
        None => format!("`{}`", name(next)),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_cycle;

    #[test]
    fn names_the_loop() {
        let names = ["start", "check", "retry"];
        assert_eq!(
            describe_cycle(&[0, 1, 2, 1, 2], 1, |i| names[i]),
            "`check` → `retry` → `check`"
        );
        assert_eq!(describe_cycle(&[0], 2, |i| names[i]), "`retry`");
    }
}
