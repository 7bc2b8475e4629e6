//! The `trace` import: a node annotates its own span and opens child spans whose parents the
//! host decides. Open spans are tracked per node so that the innermost one parents new spans
//! and LLM calls, and so that whatever the guest leaks, the host closes. A per-node budget caps
//! how many spans and attribute bytes a guest can add.

use crate::bindings::trace::{self as wit, Attribute, Value};
use crate::telemetry::{MAX_ATTRIBUTE_VALUE_BYTES, NodeBudget, SpanCaps, SpanHandle, cap_value};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SdkTracer;
use wasmtime::component::{HasData, Resource, ResourceTable};

/// The host side of a guest's `span` resource.
#[derive(Debug)]
pub struct GuestSpan {
    /// `None` past the node's span cap: the guest holds a span that records nothing.
    handle: Option<SpanHandle>,
}

/// Per-node trace state, kept in the node's `Store`.
#[derive(Debug)]
pub struct NodeTrace {
    tracer: SdkTracer,
    node_span: SpanHandle,
    /// Spans the guest opened and has not dropped, innermost last.
    open: Vec<(u32, SpanHandle)>,
    budget: NodeBudget,
    reported: bool,
}

impl NodeTrace {
    /// With the default caps.
    pub fn new(tracer: SdkTracer, node_span: SpanHandle) -> Self {
        Self::with_caps(tracer, node_span, SpanCaps::default())
    }

    pub fn with_caps(tracer: SdkTracer, node_span: SpanHandle, caps: SpanCaps) -> Self {
        Self {
            tracer,
            node_span,
            open: Vec::new(),
            budget: NodeBudget::new(caps),
            reported: false,
        }
    }

    /// The span new spans and LLM calls of this node attach to.
    pub fn innermost(&self) -> &SpanHandle {
        self.open.last().map(|(_, h)| h).unwrap_or(&self.node_span)
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
        while let Some((_, handle)) = self.open.pop() {
            handle.set_attribute(KeyValue::new("kettle.span.leaked", true));
            handle.set_error(format!("span left open by the node: {why}"));
            handle.end();
        }
        if leaked > 0 {
            // On the node span whatever the outcome: a trap loses the node's output.
            self.node_span
                .set_attribute(KeyValue::new("kettle.node.leaked_spans", leaked as i64));
        }
        if !self.reported {
            self.reported = true;
            if self.budget.dropped_spans > 0 {
                self.node_span.set_attribute(KeyValue::new(
                    "kettle.node.dropped_spans",
                    self.budget.dropped_spans as i64,
                ));
            }
            if self.budget.dropped_attributes > 0 {
                self.node_span.set_attribute(KeyValue::new(
                    "kettle.node.dropped_attributes",
                    self.budget.dropped_attributes as i64,
                ));
            }
        }
        leaked
    }

    /// Spans the span cap refused so far.
    pub fn dropped_spans(&self) -> u64 {
        self.budget.dropped_spans
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

/// Names [`TraceCtx`] for `add_to_linker`.
pub struct TraceCapability;

impl HasData for TraceCapability {
    type Data<'a> = TraceCtx<'a>;
}

impl wit::Host for TraceCtx<'_> {
    fn start_span(&mut self, name: String) -> wasmtime::Result<Resource<GuestSpan>> {
        let state = &mut *self.state;
        if !state.budget.take_span() || !state.charge(name.len()) {
            state.warn_once();
            return Ok(self.table.push(GuestSpan { handle: None })?);
        }
        let handle = state.innermost().child(
            &state.tracer,
            cap_value(name),
            SpanKind::Internal,
            vec![KeyValue::new("kettle.span.origin", "guest")],
        );
        let resource = self.table.push(GuestSpan {
            handle: Some(handle.clone()),
        })?;
        state.open.push((resource.rep(), handle));
        Ok(resource)
    }

    fn set_attribute(&mut self, key: String, value: Value) -> wasmtime::Result<()> {
        if self.state.charge(value_size(&key, &value)) {
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
        if let Some(handle) = &self.table.get(&span)?.handle
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
        if let Some(handle) = self.table.delete(span)?.handle {
            handle.end();
            self.state.open.retain(|(r, _)| *r != rep);
        }
        Ok(())
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
