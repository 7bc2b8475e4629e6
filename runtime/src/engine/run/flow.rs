//! Routing through the graph: rules chosen in order, parallel fan-out with every branch on a
//! copy of the state and a `parallel {node}` span as the branches' parent, fan-in with
//! `parallel_results`, and the run-wide step limit.

use super::Run;
use super::durable::{MAIN, PathId};
use super::node::error_route;
use crate::checkpoint::PathPos;
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

/// How many recent nodes a path remembers at least, to name the loop when the step limit is hit.
const TRAIL: usize = 64;

impl Run<'_> {
    /// Runs the agent's graph from `__start__` (or from `resumed`, a checkpointed position) to
    /// `__end__`, on `state`.
    pub(super) async fn run_graph(
        &self,
        state: &mut Map<String, Value>,
        resumed: Option<PathPos>,
    ) -> Result<(), RunError> {
        let (first, waiting) = match resumed {
            Some(pos) => {
                *state = pos.state.clone();
                let first = self.next_named(pos.next.as_deref())?;
                let waiting = pos.group.is_some();
                self.start_paths(pos);
                (first, waiting)
            }
            None => {
                let first = match &self.agent.graph.entry {
                    Route::Rules(rules) => self.choose(START, rules, state, Map::new())?,
                    Route::Parallel { .. } => Next::End,
                };
                self.start_paths(PathPos::new(state.clone(), self.name_of(first)));
                // A crash in the first node resumes from here.
                self.save("start".into(), crate::checkpoint::RunStatus::Running, None)?;
                (first, false)
            }
        };
        let mut trail = Vec::new();
        self.run_path(self.root, first, state, None, &mut trail, MAIN, waiting)
            .await
    }

    /// The node a checkpoint names (`None`: the end).
    fn next_named(&self, name: Option<&str>) -> Result<Next, RunError> {
        match name {
            None => Ok(Next::End),
            Some(name) => self
                .agent
                .graph
                .nodes
                .iter()
                .position(|n| n.name == name)
                .map(Next::Node)
                .ok_or_else(|| {
                    RunError::Checkpoint(format!(
                        "the checkpoint's next node `{name}` is not a node of the agent any more; resume with the agent file the run started with"
                    ))
                }),
        }
    }

    pub(super) fn name_of(&self, next: Next) -> Option<String> {
        match next {
            Next::Node(index) => Some(self.agent.graph.nodes[index].name.clone()),
            Next::End => None,
        }
    }

    /// Runs nodes from `first` until the end, or until the path reaches `stop` (the fan-in
    /// node of the group this path is a branch of). Node spans are children of `parent`.
    /// `path` names the path in a durable run; `waiting`: it is resumed inside its parallel
    /// group, whose branches run first (then `first` is the group's fan-in node).
    #[allow(clippy::too_many_arguments)]
    fn run_path<'a, 'b: 'a>(
        &'a self,
        parent: &'a SpanHandle,
        first: Next,
        state: &'a mut Map<String, Value>,
        stop: Option<usize>,
        trail: &'a mut Vec<usize>,
        path: PathId,
        waiting: bool,
    ) -> BoxFuture<'a, Result<(), RunError>> {
        Box::pin(async move {
            let graph = &self.agent.graph;
            let mut next = first;
            if waiting
                && let Next::Node(fan_in) = first
                && let Some(fork) = self.fork_of(fan_in)
            {
                let branches = self.pending_branches(path);
                let results = self.fan_out(parent, fork, branches, fan_in, trail).await?;
                state.insert(PARALLEL_RESULTS.into(), Value::Array(results));
                self.join(path, &graph.nodes[fan_in].name, state)?;
            }
            while let Next::Node(index) = next {
                if Some(index) == stop {
                    break;
                }
                self.before_node(path, &graph.nodes[index].name)?;
                self.count_step(index, trail)?;
                let update = match self.run_node(parent, index, state, path).await {
                    Ok(update) => update,
                    // With `on_error:`, the handler runs next and finds the failure in `state.error`.
                    Err(error) => match error_route(self.agent, index, &error) {
                        Some((handler, record)) => {
                            state.insert("error".into(), record);
                            next = Next::Node(handler);
                            self.node_done(path, &graph.nodes[index].name, state, next)?;
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
                    self.node_done(path, &node.name, state, next)?;
                    continue;
                }
                next = match graph.route(index) {
                    Route::Rules(rules) => {
                        let next = self.choose(&node.name, rules, state, result)?;
                        self.node_done(path, &node.name, state, next)?;
                        next
                    }
                    Route::Parallel { branches, fan_in } => {
                        let names: Vec<&str> = branches
                            .iter()
                            .map(|&b| graph.nodes[b].name.as_str())
                            .collect();
                        let fan_in_name = &graph.nodes[*fan_in].name;
                        let starts = self.fork(path, &node.name, fan_in_name, state, &names)?;
                        let results = self.fan_out(parent, index, starts, *fan_in, trail).await?;
                        state.insert(PARALLEL_RESULTS.into(), Value::Array(results));
                        self.join(path, fan_in_name, state)?;
                        Next::Node(*fan_in)
                    }
                };
            }
            Ok(())
        })
    }

    /// The node whose parallel edges join at `fan_in`.
    fn fork_of(&self, fan_in: usize) -> Option<usize> {
        let graph = &self.agent.graph;
        (0..graph.nodes.len())
            .find(|&i| matches!(graph.route(i), Route::Parallel { fan_in: f, .. } if *f == fan_in))
    }

    /// Runs every branch concurrently from its position (a copy of the state at its first
    /// node, or where a checkpoint left it) up to `fan_in`; returns the branch states in edge
    /// order. The first failing branch fails the group once every branch has started (the
    /// others are dropped, their spans ending as cancelled).
    async fn fan_out(
        &self,
        parent: &SpanHandle,
        fork: usize,
        branches: Vec<(PathId, PathPos)>,
        fan_in: usize,
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
        let _parallel = self.tasks.parallel_group();
        let runs = branches.into_iter().map(|(path, pos)| {
            let mut branch_trail = trail.to_vec();
            let group = group.clone();
            async move {
                let first = self.next_named(pos.next.as_deref())?;
                let waiting = pos.group.is_some();
                let mut branch_state = pos.state;
                self.run_path(
                    &group,
                    first,
                    &mut branch_state,
                    Some(fan_in),
                    &mut branch_trail,
                    path,
                    waiting,
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
            None => super::join::try_join_started(runs).await,
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
        match rules.first() {
            None => return Ok(Next::End),
            // Most nodes have one way out: no context is built for it.
            Some(Rule { when: None, to }) => return Ok(*to),
            Some(_) => {}
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
        // Between TRAIL and twice as many kept: the oldest go in one move, not one per node.
        if trail.len() >= 2 * TRAIL {
            trail.drain(..TRAIL);
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
