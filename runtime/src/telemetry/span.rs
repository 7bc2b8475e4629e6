//! Spans held as explicit values. A child is always started from a handle to its parent, never
//! from an ambient "current span": the parent of every span is visible at the call site.

use opentelemetry::trace::{
    SpanContext, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, Tracer,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
use std::sync::Arc;

/// The attribute every span of a run carries: it routes the span to its run's file even when
/// several runs share a trace id.
pub const RUN_ID_KEY: &str = "kettle.run.id";
/// The graph node (or the agent) a node span's node is inside of; read when spans are
/// exported (`graph.node.parent_id` with OpenInference conventions), never exported itself.
pub const GRAPH_PARENT_KEY: &str = "kettle.graph.parent";

/// A started span (or, for a remote parent, only its context). Clones refer to the same span.
#[derive(Clone, Debug)]
pub struct SpanHandle {
    cx: Context,
    run_id: Arc<str>,
    /// A span that was refused (the run's span budget): it records nothing, its children are
    /// muted too, and its context is its nearest recorded ancestor's.
    muted: bool,
    /// The graph node this span is, or is inside of: the agent for the root.
    graph: Option<Arc<str>>,
}

impl SpanHandle {
    /// Starts the root span of a new trace, or a child of `remote_parent` when the run joins
    /// a caller's trace.
    pub fn root(
        tracer: &SdkTracer,
        name: String,
        run_id: &str,
        attributes: Vec<KeyValue>,
        remote_parent: Option<SpanContext>,
    ) -> Self {
        let parent = match remote_parent {
            Some(sc) => Context::new().with_remote_span_context(sc),
            None => Context::new(),
        };
        let agent = attributes
            .iter()
            .find(|kv| kv.key.as_str() == super::semconv::GEN_AI_AGENT_NAME)
            .map(|kv| Arc::from(kv.value.as_str().as_ref()));
        let mut root = Self::start(
            tracer,
            &parent,
            Arc::from(run_id),
            name,
            SpanKind::Internal,
            attributes,
        );
        root.graph = agent;
        root
    }

    /// Starts a child span of this one (a muted one if this one is muted).
    pub fn child(
        &self,
        tracer: &SdkTracer,
        name: String,
        kind: SpanKind,
        attributes: Vec<KeyValue>,
    ) -> Self {
        if self.muted {
            return self.clone();
        }
        let parent = self.cx.span();
        let parent = parent.span_context();
        if !parent.is_sampled() {
            // The sampler is parent-based (or off): the child of a span that is not sampled is
            // not sampled either, and the SDK would record nothing of it. It still needs its
            // ids, which it propagates: the context the SDK would give it (the parent's trace
            // and trace state, a new span id, not sampled), made without a span to drop.
            let context = SpanContext::new(
                parent.trace_id(),
                RandomIdGenerator::default().new_span_id(),
                TraceFlags::default(),
                false,
                parent.trace_state().clone(),
            );
            return Self {
                cx: Context::new().with_remote_span_context(context),
                run_id: self.run_id.clone(),
                muted: false,
                graph: self.graph.clone(),
            };
        }
        let mut attributes = attributes;
        // A node's span (or a fan-out's) opens a graph node inside the enclosing one.
        let node = (name.starts_with("node ") || name.starts_with("parallel "))
            .then(|| {
                attributes
                    .iter()
                    .find(|kv| kv.key.as_str() == "kettle.node.name")
                    .map(|kv| Arc::<str>::from(kv.value.as_str().as_ref()))
            })
            .flatten();
        if let (Some(_), Some(parent)) = (&node, &self.graph) {
            attributes.push(KeyValue::new(GRAPH_PARENT_KEY, parent.to_string()));
        }
        let mut child = Self::start(
            tracer,
            &self.cx,
            self.run_id.clone(),
            name,
            kind,
            attributes,
        );
        child.graph = node.or_else(|| self.graph.clone());
        child
    }

    fn start(
        tracer: &SdkTracer,
        parent: &Context,
        run_id: Arc<str>,
        name: String,
        kind: SpanKind,
        mut attributes: Vec<KeyValue>,
    ) -> Self {
        if !attributes.iter().any(|kv| kv.key.as_str() == RUN_ID_KEY) {
            attributes.push(KeyValue::new(RUN_ID_KEY, run_id.to_string()));
        }
        let span = tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes)
            .start_with_context(tracer, parent);
        Self::holding(span, run_id)
    }

    /// A handle to `span`, just started, of run `run_id`.
    fn holding(span: opentelemetry_sdk::trace::Span, run_id: Arc<str>) -> Self {
        Self {
            cx: Context::new().with_span(span),
            run_id,
            muted: false,
            graph: None,
        }
    }

    /// A stand-in for a child that must not be recorded: it records nothing, and whatever it
    /// passes on (children, trace headers) names this span.
    pub fn muted(&self) -> Self {
        Self {
            muted: true,
            ..self.clone()
        }
    }

    /// The run this span belongs to.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Whether the span records (it was sampled).
    pub fn is_recording(&self) -> bool {
        !self.muted && self.cx.span().is_recording()
    }

    pub fn set_attribute(&self, attribute: KeyValue) {
        if !self.muted {
            self.cx.span().set_attribute(attribute);
        }
    }

    pub fn add_event(
        &self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        attributes: Vec<KeyValue>,
    ) {
        if !self.muted {
            self.cx.span().add_event(name, attributes);
        }
    }

    pub fn set_error(&self, message: impl Into<String>) {
        if !self.muted {
            self.cx.span().set_status(Status::error(message.into()));
        }
    }

    pub fn set_ok(&self) {
        if !self.muted {
            self.cx.span().set_status(Status::Ok);
        }
    }

    /// Ends the span; later calls do nothing.
    pub fn end(&self) {
        if !self.muted {
            self.cx.span().end();
        }
    }

    pub fn trace_id(&self) -> TraceId {
        self.cx.span().span_context().trace_id()
    }

    pub fn span_id(&self) -> opentelemetry::trace::SpanId {
        self.cx.span().span_context().span_id()
    }

    /// The W3C Trace Context headers (`traceparent`, `tracestate`) naming this span.
    pub fn trace_headers(&self) -> Vec<(String, String)> {
        super::propagation::trace_headers(&self.cx)
    }
}

/// A span that must be finished explicitly; if it is dropped first (the run was cancelled, a
/// future was dropped), it ends with an error status saying so.
#[derive(Debug)]
pub struct SpanGuard {
    handle: SpanHandle,
    finished: bool,
}

impl SpanGuard {
    pub fn new(handle: SpanHandle) -> Self {
        Self {
            handle,
            finished: false,
        }
    }

    pub fn handle(&self) -> &SpanHandle {
        &self.handle
    }

    pub fn finish_ok(mut self) {
        self.finished = true;
        self.handle.set_ok();
        self.handle.end();
    }

    /// Ends the span leaving its status unset (the OpenTelemetry norm for a plain success).
    pub fn finish_unset(mut self) {
        self.finished = true;
        self.handle.end();
    }

    pub fn finish_error(mut self, message: impl Into<String>) {
        self.finished = true;
        self.handle.set_error(message);
        self.handle.end();
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if !self.finished {
            self.handle
                .set_attribute(KeyValue::new("kettle.cancelled", true));
            self.handle.set_error("cancelled before it finished");
            self.handle.end();
        }
    }
}

/// A tracer from `provider` named after this crate.
pub(crate) fn kettle_tracer(provider: &SdkTracerProvider) -> SdkTracer {
    provider.tracer("kettle")
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::TraceState;
    use opentelemetry_sdk::trace::Sampler;

    fn tracer(sampler: Sampler) -> SdkTracer {
        SdkTracerProvider::builder()
            .with_sampler(sampler)
            .build()
            .tracer("test")
    }

    #[test]
    fn the_child_of_a_span_not_sampled_has_its_own_id_in_the_same_trace() {
        let tracer = tracer(Sampler::AlwaysOff);
        let root = SpanHandle::root(&tracer, "run".into(), "r1", Vec::new(), None);
        let child = root.child(&tracer, "node a".into(), SpanKind::Internal, Vec::new());
        let grandchild = child.child(&tracer, "chat m".into(), SpanKind::Client, Vec::new());
        for span in [&child, &grandchild] {
            assert_eq!(span.trace_id(), root.trace_id());
            assert!(!span.is_recording());
            assert!(!span.cx.span().span_context().is_sampled());
            assert_eq!(span.run_id(), "r1");
        }
        let ids = [root.span_id(), child.span_id(), grandchild.span_id()];
        assert!(
            ids.iter()
                .all(|id| *id != opentelemetry::trace::SpanId::INVALID)
        );
        assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2]);
    }

    #[test]
    fn an_unsampled_callers_trace_state_reaches_the_nodes() {
        let tracer = tracer(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let state = TraceState::from_key_value([("vendor", "x")]).expect("a trace state");
        let caller = SpanContext::new(
            TraceId::from(7u128),
            opentelemetry::trace::SpanId::from(9u64),
            TraceFlags::default(),
            true,
            state,
        );
        let root = SpanHandle::root(&tracer, "run".into(), "r1", Vec::new(), Some(caller));
        let child = root.child(&tracer, "node a".into(), SpanKind::Internal, Vec::new());
        let headers: std::collections::HashMap<_, _> = child.trace_headers().into_iter().collect();
        assert_eq!(child.trace_id(), TraceId::from(7u128));
        let expected = format!("00-{}-{}-00", child.trace_id(), child.span_id());
        assert_eq!(headers.get("traceparent"), Some(&expected));
        assert_eq!(
            headers.get("tracestate").map(String::as_str),
            Some("vendor=x")
        );
    }
}
