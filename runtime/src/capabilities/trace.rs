//! The `trace` import: a node annotates its own span and opens child spans whose parents the
//! host decides. Open spans are tracked per node so that the innermost one parents new spans
//! and LLM calls, and so that whatever the guest leaks, the host closes.

use crate::bindings::trace::{self as wit, Attribute, Value};
use crate::telemetry::SpanHandle;
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SdkTracer;
use wasmtime::component::{HasData, Resource, ResourceTable};

/// The host side of a guest's `span` resource.
#[derive(Debug)]
pub struct GuestSpan {
    handle: SpanHandle,
}

/// Per-node trace state, kept in the node's `Store`.
#[derive(Debug)]
pub struct NodeTrace {
    tracer: SdkTracer,
    node_span: SpanHandle,
    /// Spans the guest opened and has not dropped, innermost last.
    open: Vec<(u32, SpanHandle)>,
}

impl NodeTrace {
    pub fn new(tracer: SdkTracer, node_span: SpanHandle) -> Self {
        Self {
            tracer,
            node_span,
            open: Vec::new(),
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
    pub fn close_leaked(&mut self, why: &str) -> usize {
        let leaked = self.open.len();
        while let Some((_, handle)) = self.open.pop() {
            handle.set_attribute(KeyValue::new("kettle.span.leaked", true));
            handle.set_error(format!("span left open by the node: {why}"));
            handle.end();
        }
        leaked
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
        let handle = self.state.innermost().child(
            &self.state.tracer,
            name,
            SpanKind::Internal,
            vec![KeyValue::new("kettle.span.origin", "guest")],
        );
        let resource = self.table.push(GuestSpan {
            handle: handle.clone(),
        })?;
        self.state.open.push((resource.rep(), handle));
        Ok(resource)
    }

    fn set_attribute(&mut self, key: String, value: Value) -> wasmtime::Result<()> {
        self.state.node_span.set_attribute(key_value(key, value));
        Ok(())
    }

    fn add_event(&mut self, name: String, attributes: Vec<Attribute>) -> wasmtime::Result<()> {
        self.state.node_span.add_event(name, key_values(attributes));
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
        self.table
            .get(&span)?
            .handle
            .set_attribute(key_value(key, value));
        Ok(())
    }

    fn add_event(
        &mut self,
        span: Resource<GuestSpan>,
        name: String,
        attributes: Vec<Attribute>,
    ) -> wasmtime::Result<()> {
        self.table
            .get(&span)?
            .handle
            .add_event(name, key_values(attributes));
        Ok(())
    }

    fn set_error(&mut self, span: Resource<GuestSpan>, message: String) -> wasmtime::Result<()> {
        self.table.get(&span)?.handle.set_error(message);
        Ok(())
    }

    fn drop(&mut self, span: Resource<GuestSpan>) -> wasmtime::Result<()> {
        let rep = span.rep();
        let span = self.table.delete(span)?;
        span.handle.end();
        self.state.open.retain(|(r, _)| *r != rep);
        Ok(())
    }
}

fn key_value(key: String, value: Value) -> KeyValue {
    match value {
        Value::Text(s) => KeyValue::new(key, s),
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

impl Drop for NodeTrace {
    fn drop(&mut self) {
        // The execution was abandoned (run cancelled, future dropped) with spans still open.
        self.close_leaked("the node was stopped before it returned");
    }
}
