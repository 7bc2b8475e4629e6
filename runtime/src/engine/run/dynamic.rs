//! `dynamic_parallel`: the body run once per item of a list, concurrently (at most
//! `max_concurrency` at a time), each item under its own span with its index; results in item
//! order, each with its index, item, and final state or error.

use super::Run;
use super::durable::{PathId, current_tape, with_tape};
use crate::engine::error::RunError;
use crate::graph::{DynamicParallel, template};
use crate::telemetry::{SpanGuard, SpanHandle};
use futures::StreamExt;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde_json::{Map, Value, json};

impl Run<'_> {
    pub(super) async fn run_dynamic_parallel(
        &self,
        node: &str,
        dp: &DynamicParallel,
        state: &Map<String, Value>,
        span: &SpanHandle,
        path: PathId,
    ) -> Result<Map<String, Value>, RunError> {
        let items = self.items(node, dp, state)?;
        // In a resumed durable run, the items that finished before the crash are not run again.
        let finished = self.items_done(path);
        let node_tape = current_tape();
        let count = items.len();
        let item_copies = if dp.fail_fast {
            items.clone()
        } else {
            Vec::new()
        };
        span.set_attribute(KeyValue::new("kettle.parallel.items", count as i64));
        let limit = dp
            .max_concurrency
            .map_or(count, |m| m as usize)
            .clamp(1, count.max(1));
        let mut results = vec![Value::Null; count];
        for (&index, result) in finished.iter().filter(|(i, _)| **i < count) {
            results[index] = result.clone();
        }
        let _parallel = self.tasks.parallel_group();
        let mut runs = futures::stream::iter(
            items
                .into_iter()
                .enumerate()
                .filter(|(index, _)| !finished.contains_key(index))
                .map(|(index, item)| {
                    let tape = self.item_tape(node_tape.as_ref(), index);
                    with_tape(tape, self.run_item(node, dp, state, index, item, span))
                }),
        )
        .buffer_unordered(limit);
        let mut failed = 0_i64;
        let mut cancelled = false;
        while let Some((index, item, outcome)) = runs.next().await {
            results[index] = match outcome {
                Ok(state) => json!({"index": index, "item": item, "state": state}),
                Err(e) => {
                    failed += 1;
                    cancelled = dp.fail_fast;
                    json!({"index": index, "item": item, "error": error_value(&e)})
                }
            };
            self.item_done(path, node, index, &results[index])?;
            if cancelled {
                break;
            }
        }
        // `fail_fast`: the items still running or waiting are cancelled (dropping the stream
        // drops them, their spans ending as cancelled) and recorded as such; the run goes on
        // to the fan-in with every item's result or error, as in TEA.
        drop(runs);
        for (index, (slot, item)) in results.iter_mut().zip(&item_copies).enumerate() {
            if slot.is_null() {
                *slot = json!({"index": index, "item": item, "error": {
                    "node": node, "kind": "cancelled",
                    "message": "cancelled: an earlier item failed and `fail_fast` is set",
                }});
            }
        }
        span.set_attribute(KeyValue::new("kettle.parallel.failed", failed));
        if cancelled {
            span.set_attribute(KeyValue::new("kettle.parallel.cancelled", true));
        }
        let mut update = Map::new();
        update.insert(dp.output.clone(), Value::Array(results));
        Ok(update)
    }

    /// One item: a copy of the state with the item and its index, under the item's span.
    #[allow(clippy::too_many_arguments)]
    async fn run_item(
        &self,
        node: &str,
        dp: &DynamicParallel,
        state: &Map<String, Value>,
        index: usize,
        item: Value,
        parent: &SpanHandle,
    ) -> (usize, Value, Result<Map<String, Value>, RunError>) {
        let span = SpanGuard::new(parent.child(
            self.telemetry.tracer(),
            format!("item {index}"),
            SpanKind::Internal,
            vec![
                KeyValue::new("kettle.node.name", node.to_string()),
                KeyValue::new("kettle.parallel.index", index as i64),
            ],
        ));
        let mut extras = Map::new();
        extras.insert(dp.item_var.clone(), item.clone());
        extras.insert(dp.index_var.clone(), json!(index));
        let mut branch = state.clone();
        branch.extend(extras.clone());
        let result = match (&dp.body[..], dp.body_is_steps) {
            ([only], false) => {
                self.run_action(node, &only.action, &branch, &extras, span.handle())
                    .await
            }
            (steps, _) => {
                self.run_steps(node, steps, &branch, &extras, span.handle())
                    .await
            }
        };
        let result = result.map(|update| {
            branch.extend(update);
            branch
        });
        match &result {
            Ok(_) => span.finish_ok(),
            Err(e) => span.finish_error(e.to_string()),
        }
        (index, item, result)
    }
}

impl Run<'_> {
    /// The list `items:` yields.
    fn items(
        &self,
        node: &str,
        dp: &DynamicParallel,
        state: &Map<String, Value>,
    ) -> Result<Vec<Value>, RunError> {
        let context = self.context(state, &Map::new());
        let value = template::render_value(&Value::String(dp.items.clone()), &context)
            .map_err(|e| RunError::node(node, "template", format!("field `items`: {e}")))?;
        let value = match value {
            // A template with text around the expression renders to text; JSON text is accepted.
            Value::String(text) => serde_json::from_str(&text).unwrap_or(Value::String(text)),
            other => other,
        };
        match value {
            Value::Array(items) => Ok(items),
            // TEA treats items that are not there as no items.
            Value::Null => Ok(Vec::new()),
            other => Err(RunError::node(
                node,
                "items",
                format!("`items` must yield a list, but `{}` gave {other}", dp.items),
            )),
        }
    }
}

fn error_value(error: &RunError) -> Value {
    match error {
        RunError::Node {
            node,
            kind,
            message,
        } => json!({"node": node, "kind": kind, "message": message}),
        other => json!({"kind": "run", "message": other.to_string()}),
    }
}
