//! The `trace` import: a node annotates its own span and opens child spans whose parents the
//! host decides. Open spans are tracked per node so that the innermost one parents new spans
//! and LLM calls, and so that whatever the guest leaks, the host closes. A per-node budget caps
//! how many spans and attribute bytes a guest can add, the run's span budget how many spans
//! (its own and its LLM calls') all guests of a run can add, and each span's tally keeps the
//! host's attributes out of the guest's reach.

use super::bindings::trace::{self as wit, Attribute, Value};
use super::capability::{Capability, CapabilityView, NodeSetup, RunSetup};
use crate::llm::LlmError;
use crate::telemetry::{
    DEFAULT_MAX_SPANS_PER_RUN, MAX_ATTRIBUTE_VALUE_BYTES, NodeBudget, RunSpanBudget, SpanCaps,
    SpanHandle, SpanOwner, SpanTally, cap_value,
};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SdkTracer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

/// The attribute that counts what a guest tried to set on a span and was refused.
const REFUSED_ATTRIBUTES: &str = "kettle.span.refused_attributes";

/// The host side of a guest's `span` resource.
#[derive(Debug)]
pub struct GuestSpan {
    /// `None` past the node's span cap or the run's span budget: the guest holds a span that
    /// records nothing.
    handle: Option<SpanHandle>,
    tally: Arc<SpanTally>,
}

/// A span the guest opened and has not dropped.
#[derive(Debug)]
struct OpenSpan {
    rep: u32,
    handle: SpanHandle,
    tally: Arc<SpanTally>,
}

/// Per-node trace state, kept in the node's `Store`.
#[derive(Debug)]
pub struct NodeTrace {
    tracer: SdkTracer,
    node_span: SpanHandle,
    node_tally: SpanTally,
    /// Spans the guest opened and has not dropped, innermost last.
    open: Vec<OpenSpan>,
    budget: NodeBudget,
    run_spans: Arc<RunSpanBudget>,
    /// `chat` spans of this node's LLM calls the run's span budget refused.
    chat_refused: AtomicU64,
    reported: bool,
}

impl NodeTrace {
    /// With the default caps and a budget of its own.
    pub fn new(tracer: SdkTracer, node_span: SpanHandle) -> Self {
        Self::with_caps(
            tracer,
            node_span,
            SpanCaps::default(),
            Arc::new(RunSpanBudget::new(DEFAULT_MAX_SPANS_PER_RUN)),
        )
    }

    /// `run_spans` is the run's span budget, shared by all its nodes.
    pub fn with_caps(
        tracer: SdkTracer,
        node_span: SpanHandle,
        caps: SpanCaps,
        run_spans: Arc<RunSpanBudget>,
    ) -> Self {
        Self {
            tracer,
            node_span,
            node_tally: SpanTally::new(SpanOwner::Host),
            open: Vec::new(),
            budget: NodeBudget::new(caps),
            run_spans,
            chat_refused: AtomicU64::new(0),
            reported: false,
        }
    }

    /// The span new spans and LLM calls of this node attach to.
    pub fn innermost(&self) -> &SpanHandle {
        self.open
            .last()
            .map(|o| &o.handle)
            .unwrap_or(&self.node_span)
    }

    /// The parent of the `chat` span of a guest's LLM call: the innermost open span, or, once
    /// the run's span budget is spent, the denial: a call the trace cannot record is not made.
    pub fn chat_parent(&self) -> Result<SpanHandle, LlmError> {
        let parent = self.innermost();
        if self.run_spans.take(parent.run_id()) {
            Ok(parent.clone())
        } else {
            self.chat_refused.fetch_add(1, Ordering::Relaxed);
            Err(LlmError::Denied(format!(
                "the run's span budget (settings.budget.max_spans = {}) is spent, and Kettle does \
                 not make an LLM call its trace cannot record; raise settings.budget.max_spans",
                self.run_spans.max()
            )))
        }
    }

    pub fn tracer(&self) -> &SdkTracer {
        &self.tracer
    }

    /// The node's own span.
    pub fn node_span(&self) -> &SpanHandle {
        &self.node_span
    }

    /// Ends every span the guest left open, innermost first, marking each as leaked.
    /// Returns how many there were.
    /// Also records on the node span what the caps dropped.
    pub fn close_leaked(&mut self, why: &str) -> usize {
        let leaked = self.open.len();
        while let Some(open) = self.open.pop() {
            open.handle
                .set_attribute(KeyValue::new("kettle.span.leaked", true));
            report_refused(&open.handle, &open.tally);
            open.handle
                .set_error(format!("span left open by the node: {why}"));
            open.handle.end();
        }
        if leaked > 0 {
            // On the node span whatever the outcome: a trap loses the node's output.
            self.node_span
                .set_attribute(KeyValue::new("kettle.node.leaked_spans", leaked as i64));
        }
        if !self.reported {
            self.reported = true;
            let dropped_spans = self.dropped_spans();
            if dropped_spans > 0 {
                self.node_span.set_attribute(KeyValue::new(
                    "kettle.node.dropped_spans",
                    dropped_spans as i64,
                ));
            }
            report_refused(&self.node_span, &self.node_tally);
            if self.budget.dropped_attributes > 0 {
                self.node_span.set_attribute(KeyValue::new(
                    "kettle.node.dropped_attributes",
                    self.budget.dropped_attributes as i64,
                ));
            }
        }
        leaked
    }

    /// Spans of this node the node's span cap or the run's span budget refused so far.
    pub fn dropped_spans(&self) -> u64 {
        self.budget.dropped_spans + self.chat_refused.load(Ordering::Relaxed)
    }

    /// Charges `bytes` to the budget; false (and counted) when they do not fit.
    fn charge(&mut self, bytes: usize) -> bool {
        let fits = self.budget.take_bytes(bytes);
        self.warn_once();
        fits
    }

    fn warn_once(&mut self) {
        if self.budget.first_overflow() {
            let caps = self.budget.caps();
            tracing::warn!(
                run = self.node_span.run_id(),
                max_spans = caps.max_spans,
                max_attribute_bytes = caps.max_attribute_bytes,
                "a node hit its trace cap; further spans or attributes of this execution are counted, not exported (settings.tracing.max_spans_per_node / max_attribute_bytes_per_node)"
            );
        }
    }
}

/// What the `trace` import's functions see of the store.
pub struct TraceCtx<'a> {
    pub state: &'a mut NodeTrace,
    pub table: &'a mut ResourceTable,
}

/// The `trace` capability; also names [`TraceCtx`] for `add_to_linker`.
pub struct TraceCapability;

impl HasData for TraceCapability {
    type Data<'a> = TraceCtx<'a>;
}

/// The run's tracer, the caps every node execution gets, and the run's span budget.
#[derive(Debug, Clone)]
pub struct RunTrace {
    pub tracer: SdkTracer,
    pub caps: SpanCaps,
    pub spans: Arc<RunSpanBudget>,
}

impl Capability for TraceCapability {
    type RunState = RunTrace;
    type NodeState = NodeTrace;

    fn configure(run: &RunSetup<'_>) -> RunTrace {
        RunTrace {
            tracer: run.tracer.clone(),
            caps: run.span_caps,
            spans: Arc::new(RunSpanBudget::new(run.max_spans)),
        }
    }

    fn prepare(run: &RunTrace, node: &NodeSetup<'_>) -> NodeTrace {
        NodeTrace::with_caps(
            run.tracer.clone(),
            node.span.clone(),
            run.caps,
            run.spans.clone(),
        )
    }

    fn link<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        wit::add_to_linker::<T, TraceCapability>(linker, trace_ctx::<T>)
    }
}

fn trace_ctx<T: CapabilityView>(host: &mut T) -> TraceCtx<'_> {
    let view = host.capabilities();
    TraceCtx {
        state: &mut view.states.trace,
        table: view.table,
    }
}

impl wit::Host for TraceCtx<'_> {
    fn start_span(&mut self, name: String) -> wasmtime::Result<Resource<GuestSpan>> {
        let state = &mut *self.state;
        let tally = Arc::new(SpanTally::new(SpanOwner::Guest));
        let admitted = state.budget.take_span() && {
            let within_run = state.run_spans.take(state.node_span.run_id());
            if !within_run {
                state.budget.dropped_spans += 1;
            }
            within_run
        };
        if !admitted || !state.charge(name.len()) {
            state.warn_once();
            return Ok(self.table.push(GuestSpan {
                handle: None,
                tally,
            })?);
        }
        let handle = state.innermost().child(
            &state.tracer,
            cap_value(name),
            SpanKind::Internal,
            vec![KeyValue::new("kettle.span.origin", "guest")],
        );
        let resource = self.table.push(GuestSpan {
            handle: Some(handle.clone()),
            tally: tally.clone(),
        })?;
        state.open.push(OpenSpan {
            rep: resource.rep(),
            handle,
            tally,
        });
        Ok(resource)
    }

    fn set_attribute(&mut self, key: String, value: Value) -> wasmtime::Result<()> {
        if self.state.node_tally.admit(&key) && self.state.charge(value_size(&key, &value)) {
            self.state.node_span.set_attribute(key_value(key, value));
        }
        Ok(())
    }

    fn add_event(&mut self, name: String, attributes: Vec<Attribute>) -> wasmtime::Result<()> {
        if self.state.charge(event_size(&name, &attributes)) {
            self.state
                .node_span
                .add_event(cap_value(name), key_values(attributes));
        }
        Ok(())
    }
}

impl wit::HostSpan for TraceCtx<'_> {
    fn set_attribute(
        &mut self,
        span: Resource<GuestSpan>,
        key: String,
        value: Value,
    ) -> wasmtime::Result<()> {
        let size = value_size(&key, &value);
        let span = self.table.get(&span)?;
        if let Some(handle) = &span.handle
            && span.tally.admit(&key)
            && self.state.charge(size)
        {
            handle.set_attribute(key_value(key, value));
        }
        Ok(())
    }

    fn add_event(
        &mut self,
        span: Resource<GuestSpan>,
        name: String,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<()> {
        let size = event_size(&name, &attributes);
        if let Some(handle) = &self.table.get(&span)?.handle
            && self.state.charge(size)
        {
            handle.add_event(cap_value(name), key_values(attributes));
        }
        Ok(())
    }

    fn set_error(&mut self, span: Resource<GuestSpan>, message: String) -> wasmtime::Result<()> {
        let size = message.len();
        if let Some(handle) = &self.table.get(&span)?.handle
            && self.state.charge(size)
        {
            handle.set_error(cap_value(message));
        }
        Ok(())
    }

    fn drop(&mut self, span: Resource<GuestSpan>) -> wasmtime::Result<()> {
        let rep = span.rep();
        let span = self.table.delete(span)?;
        if let Some(handle) = span.handle {
            report_refused(&handle, &span.tally);
            handle.end();
            self.state.open.retain(|o| o.rep != rep);
        }
        Ok(())
    }
}

/// Records on `span` how many attributes the guest was refused there, if any.
fn report_refused(span: &SpanHandle, tally: &SpanTally) {
    let refused = tally.refused();
    if refused > 0 {
        span.set_attribute(KeyValue::new(REFUSED_ATTRIBUTES, refused as i64));
    }
}

fn key_value(key: String, value: Value) -> KeyValue {
    let key = cap_value(key);
    match value {
        Value::Text(s) => KeyValue::new(key, cap_value(s)),
        Value::Integer(i) => KeyValue::new(key, i),
        Value::Float(f) => KeyValue::new(key, f),
        Value::Boolean(b) => KeyValue::new(key, b),
    }
}

fn key_values(attributes: Vec<Attribute>) -> Vec<KeyValue> {
    attributes
        .into_iter()
        .map(|a| key_value(a.key, a.value))
        .collect()
}

/// Bytes an attribute costs the budget (after the per-value cut).
fn value_size(key: &str, value: &Value) -> usize {
    let value = match value {
        Value::Text(s) => s.len().min(MAX_ATTRIBUTE_VALUE_BYTES),
        _ => 8,
    };
    key.len().min(MAX_ATTRIBUTE_VALUE_BYTES) + value
}

fn event_size(name: &str, attributes: &[Attribute]) -> usize {
    name.len().min(MAX_ATTRIBUTE_VALUE_BYTES)
        + attributes
            .iter()
            .map(|a| value_size(&a.key, &a.value))
            .sum::<usize>()
}

impl Drop for NodeTrace {
    fn drop(&mut self) {
        // The execution was abandoned (run cancelled, future dropped) with spans still open.
        self.close_leaked("the node was stopped before it returned");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::test_support::{RUN_ID, TestTrace, attribute};
    use opentelemetry::trace::Status;
    use wit::{Host as _, HostSpan as _};

    fn borrow(span: &Resource<GuestSpan>) -> Resource<GuestSpan> {
        Resource::new_borrow(span.rep())
    }

    /// A node's trace state under `node_span`, and an empty resource table.
    fn node_state(test: &TestTrace, node_span: &SpanHandle) -> (NodeTrace, ResourceTable) {
        (
            NodeTrace::new(test.tracer.clone(), node_span.clone()),
            ResourceTable::new(),
        )
    }

    /// A node's trace state under `caps`, within a roomy run budget.
    fn capped_state(
        test: &TestTrace,
        node_span: &SpanHandle,
        caps: SpanCaps,
    ) -> (NodeTrace, ResourceTable) {
        (
            NodeTrace::with_caps(
                test.tracer.clone(),
                node_span.clone(),
                caps,
                Arc::new(RunSpanBudget::new(100)),
            ),
            ResourceTable::new(),
        )
    }

    fn ctx<'a>(state: &'a mut NodeTrace, table: &'a mut ResourceTable) -> TraceCtx<'a> {
        TraceCtx { state, table }
    }

    #[test]
    fn guest_spans_nest_under_the_innermost_open_span() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let (mut state, mut table) = node_state(&test, &node_span);
        let mut ctx = ctx(&mut state, &mut table);
        let outer = ctx.start_span("outer".into()).unwrap();
        let inner = ctx.start_span("inner".into()).unwrap();
        wit::HostSpan::set_attribute(
            &mut ctx,
            borrow(&inner),
            "answer".into(),
            Value::Integer(42),
        )
        .unwrap();
        ctx.drop(inner).unwrap();
        assert_eq!(ctx.state.open.len(), 1, "only the outer span is open");
        ctx.drop(outer).unwrap();
        assert!(ctx.state.open.is_empty());
        assert_eq!(state.close_leaked("the node returned"), 0);
        node_span.end();

        let (node, outer, inner) = (
            test.span("node test"),
            test.span("outer"),
            test.span("inner"),
        );
        assert_eq!(outer.parent_span_id, node.span_context.span_id());
        assert_eq!(inner.parent_span_id, outer.span_context.span_id());
        assert_eq!(
            attribute(&inner, "kettle.span.origin"),
            Some("guest".into())
        );
        assert_eq!(attribute(&inner, "answer"), Some(42i64.into()));
        assert_eq!(attribute(&node, "kettle.node.leaked_spans"), None);
    }

    #[test]
    fn spans_the_guest_leaves_open_are_closed_and_marked() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let (mut state, mut table) = node_state(&test, &node_span);
        let mut ctx = ctx(&mut state, &mut table);
        ctx.start_span("a".into()).unwrap();
        ctx.start_span("b".into()).unwrap();
        assert_eq!(state.close_leaked("the node crashed"), 2);
        assert!(state.open.is_empty());
        node_span.end();

        let ended: Vec<String> = test.ended().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(ended, ["b", "a", "node test"], "innermost first");
        for name in ["a", "b"] {
            let span = test.span(name);
            assert_eq!(attribute(&span, "kettle.span.leaked"), Some(true.into()));
            assert_eq!(
                span.status,
                Status::error("span left open by the node: the node crashed")
            );
        }
        assert_eq!(
            attribute(&test.span("node test"), "kettle.node.leaked_spans"),
            Some(2i64.into())
        );
    }

    #[test]
    fn dropping_the_state_closes_what_the_guest_left_open() {
        let test = TestTrace::new();
        let mut state = NodeTrace::new(test.tracer.clone(), test.node_span());
        let mut table = ResourceTable::new();
        TraceCtx {
            state: &mut state,
            table: &mut table,
        }
        .start_span("abandoned".into())
        .unwrap();
        drop(state);
        let span = test.span("abandoned");
        assert_eq!(
            span.status,
            Status::error("span left open by the node: the node was stopped before it returned")
        );
    }

    #[test]
    fn spans_past_the_cap_record_nothing_and_are_counted() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let caps = SpanCaps {
            max_spans: 1,
            max_attribute_bytes: 1 << 20,
        };
        let (mut state, mut table) = capped_state(&test, &node_span, caps);
        let mut ctx = ctx(&mut state, &mut table);
        let kept = ctx.start_span("kept".into()).unwrap();
        let refused = ctx.start_span("refused".into()).unwrap();
        assert!(ctx.table.get(&refused).unwrap().handle.is_none());
        // Calls on a refused span are accepted and do nothing.
        wit::HostSpan::set_attribute(&mut ctx, borrow(&refused), "k".into(), Value::Boolean(true))
            .unwrap();
        ctx.drop(refused).unwrap();
        ctx.drop(kept).unwrap();
        assert_eq!(state.dropped_spans(), 1);
        state.close_leaked("the node returned");
        node_span.end();

        assert!(test.ended().iter().all(|s| s.name != "refused"));
        assert_eq!(
            attribute(&test.span("node test"), "kettle.node.dropped_spans"),
            Some(1i64.into())
        );
    }

    #[test]
    fn attributes_past_the_byte_cap_are_dropped_and_counted() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let caps = SpanCaps {
            max_spans: 10,
            max_attribute_bytes: 16,
        };
        let (mut state, mut table) = capped_state(&test, &node_span, caps);
        let mut ctx = ctx(&mut state, &mut table);
        // 4 + 8 bytes fit; 4 + 10 more do not.
        wit::Host::set_attribute(&mut ctx, "fits".into(), Value::Integer(1)).unwrap();
        wit::Host::set_attribute(&mut ctx, "over".into(), Value::Text("0123456789".into()))
            .unwrap();
        wit::Host::add_event(&mut ctx, "too-late".into(), Vec::new()).unwrap();
        state.close_leaked("the node returned");
        node_span.end();

        let node = test.span("node test");
        assert_eq!(attribute(&node, "fits"), Some(1i64.into()));
        assert_eq!(attribute(&node, "over"), None);
        assert!(node.events.events.is_empty());
        assert_eq!(
            attribute(&node, "kettle.node.dropped_attributes"),
            Some(2i64.into())
        );
    }

    #[test]
    fn the_run_budget_is_shared_by_nodes_and_denies_calls_past_it() {
        let test = TestTrace::new();
        let budget = Arc::new(RunSpanBudget::new(2));
        let (a_span, b_span) = (test.node_span(), test.node_span());
        let node = |span: &SpanHandle| {
            NodeTrace::with_caps(
                test.tracer.clone(),
                span.clone(),
                SpanCaps::default(),
                budget.clone(),
            )
        };
        let (mut a, mut b) = (node(&a_span), node(&b_span));
        let mut table = ResourceTable::new();
        let kept = ctx(&mut a, &mut table).start_span("kept".into()).unwrap();
        let parent = a.chat_parent().expect("the second span fits");
        assert!(parent.is_recording());
        let denied = b
            .chat_parent()
            .expect_err("the third does not: the call is denied");
        assert!(
            denied.to_string().contains("settings.budget.max_spans = 2"),
            "{denied}"
        );
        let refused = ctx(&mut b, &mut table)
            .start_span("refused".into())
            .unwrap();
        assert!(table.get(&refused).unwrap().handle.is_none());
        assert_eq!((budget.refused(), b.dropped_spans()), (2, 2));
        ctx(&mut a, &mut table).drop(kept).unwrap();
        b.close_leaked("the node returned");
        b_span.end();

        let node_b = test.ended().pop().unwrap();
        assert_eq!(
            attribute(&node_b, "kettle.node.dropped_spans"),
            Some(2i64.into())
        );
        assert!(test.ended().iter().all(|s| s.name != "refused"));
    }

    #[test]
    fn a_guest_cannot_set_the_hosts_attributes_nor_crowd_them_out() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let (mut state, mut table) = node_state(&test, &node_span);
        let mut ctx = ctx(&mut state, &mut table);
        for key in [
            "kettle.node.name",
            "kettle.run.id",
            "error.type",
            "gen_ai.agent.name",
        ] {
            wit::Host::set_attribute(&mut ctx, key.into(), Value::Text("forged".into())).unwrap();
        }
        let own = ctx.start_span("own".into()).unwrap();
        wit::HostSpan::set_attribute(
            &mut ctx,
            borrow(&own),
            "kettle.run.id".into(),
            Value::Text("forged".into()),
        )
        .unwrap();
        for i in 0..200 {
            let key = format!("filler.{i}");
            wit::Host::set_attribute(&mut ctx, key.clone(), Value::Integer(i)).unwrap();
            wit::HostSpan::set_attribute(&mut ctx, borrow(&own), key, Value::Integer(i)).unwrap();
        }
        ctx.drop(own).unwrap();
        node_span.set_attribute(KeyValue::new("kettle.node.late", true));
        state.close_leaked("the node returned");
        node_span.end();

        let node = test.span("node test");
        assert_eq!(
            attribute(&node, "kettle.node.name"),
            None,
            "the test span has none"
        );
        assert_eq!(attribute(&node, "error.type"), None);
        assert_eq!(
            attribute(&node, "kettle.node.late"),
            Some(true.into()),
            "set after the guest's"
        );
        let fillers = node
            .attributes
            .iter()
            .filter(|kv| kv.key.as_str().starts_with("filler."))
            .count();
        assert_eq!(
            fillers,
            crate::telemetry::MAX_GUEST_ATTRIBUTES_PER_SPAN as usize
        );
        assert_eq!(
            attribute(&node, REFUSED_ATTRIBUTES),
            Some((4 + 200 - fillers as i64).into())
        );
        let own = test.span("own");
        let run_ids: Vec<_> = own
            .attributes
            .iter()
            .filter(|kv| kv.key.as_str() == "kettle.run.id")
            .map(|kv| kv.value.clone())
            .collect();
        assert_eq!(run_ids, [RUN_ID.into()]);
        assert_eq!(
            attribute(&own, REFUSED_ATTRIBUTES),
            Some((1 + 200 - fillers as i64).into())
        );
    }
}
