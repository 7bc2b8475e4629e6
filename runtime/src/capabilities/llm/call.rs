//! Traced LLM calls: each completion is a `chat {model}` CLIENT span parented explicitly
//! (OpenTelemetry GenAI conventions). Every attempt the provider needed is an event on that
//! span; the outcome is its status. Used by the `llm` import and by `uses: llm.*` nodes.

use super::stream::TracedStream;
use super::usage::LlmUsage;
use super::watch::NodeWatch;
use crate::checkpoint::{ExecutionTape, TapeTurn};
use crate::llm::{
    Attempt, ChatRequest, ChatResponse, ChatStream, LlmClient, LlmError, Resolved, TapeEntry,
};
use crate::telemetry::{
    ContentPolicy, SpanGuard, SpanHandle, chat_request_attributes, chat_response_attributes,
    semconv,
};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SdkTracer;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

/// Performs one completion as a `chat {model}` CLIENT span, child of `parent`. With the
/// node execution's `tape` (a durable run), a call the execution already made before a crash
/// or an interrupt is answered from it, and a call made is saved to it. `watch` is told the
/// call's latency when it ends.
#[allow(clippy::too_many_arguments)]
pub async fn traced_call(
    client: &LlmClient,
    tracer: &SdkTracer,
    parent: &SpanHandle,
    usage: &LlmUsage,
    content: ContentPolicy,
    request: ChatRequest,
    tape: Option<&ExecutionTape>,
    watch: Option<&NodeWatch>,
) -> Result<ChatResponse, LlmError> {
    let resolved = client.resolve(request.clone());
    let span = ChatSpan::start(
        client,
        tracer,
        parent,
        &request,
        resolved.as_ref().ok(),
        content,
    )
    .watched(watch);
    let outcome = match &resolved {
        Ok(call) => match tape.map(|t| (t, t.turn(&call.provider.name, false, &call.request))) {
            Some((_, TapeTurn::Replay(entry))) => {
                span.mark_replayed();
                entry.outcome()
            }
            Some((tape, TapeTurn::Call(ordinal))) => {
                let outcome = client
                    .complete(call, &span.handle().trace_headers(), &span.observer())
                    .await;
                if let Ok(response) = &outcome {
                    tape.record(ordinal, &tape_entry(call, false, Some(response.clone())));
                }
                outcome
            }
            None => {
                client
                    .complete(call, &span.handle().trace_headers(), &span.observer())
                    .await
            }
        },
        Err(e) => Err(e.clone()),
    };
    usage.record(outcome.as_ref());
    record_sent(
        client,
        usage,
        resolved.as_ref().ok(),
        &span,
        outcome.as_ref().err(),
    );
    span.finish(outcome.as_ref());
    outcome
}

/// Counts the call against its provider when it was sent: an HTTP attempt was made, the mock
/// answered, or a recording did; not when it was refused before (a request the provider's
/// format cannot carry, a missing key, a call the recording does not have).
fn record_sent(
    client: &LlmClient,
    usage: &LlmUsage,
    resolved: Option<&Resolved>,
    span: &ChatSpan,
    error: Option<&LlmError>,
) {
    let Some(call) = resolved else { return };
    // A call the checkpointed tape answers was sent before the crash or interrupt: it counts
    // once, in this segment, since the checkpoint left out the calls of the node in flight.
    let sent = if span.replayed.load(Ordering::Relaxed) {
        true
    } else if client.is_replay() {
        !matches!(error, Some(LlmError::NotRecorded(_)))
    } else if call.is_http() {
        span.attempts.load(Ordering::Relaxed) > 0
    } else {
        true
    };
    if sent {
        usage.record_sent(&call.provider.name, call.provider.system);
    }
}

/// Opens a streamed completion as a `chat {model}` CLIENT span, child of `parent`; the span
/// ends with the stream. `watch` is told each delta as it arrives, and the call's latency.
#[allow(clippy::too_many_arguments)]
pub async fn traced_stream(
    client: &LlmClient,
    tracer: &SdkTracer,
    parent: &SpanHandle,
    usage: &Arc<LlmUsage>,
    content: ContentPolicy,
    request: ChatRequest,
    tape: Option<&Arc<ExecutionTape>>,
    watch: Option<&NodeWatch>,
) -> Result<TracedStream, LlmError> {
    let resolved = client.resolve(request.clone());
    let span = ChatSpan::start(
        client,
        tracer,
        parent,
        &request,
        resolved.as_ref().ok(),
        content,
    )
    .watched(watch);
    span.handle()
        .set_attribute(KeyValue::new(semconv::GEN_AI_REQUEST_STREAM, true));
    let mut saving = None;
    let opened = match &resolved {
        Ok(call) => match tape.map(|t| (t, t.turn(&call.provider.name, true, &call.request))) {
            Some((_, TapeTurn::Replay(entry))) => {
                span.mark_replayed();
                Ok(ChatStream::from_tape(&entry))
            }
            Some((tape, TapeTurn::Call(ordinal))) => {
                saving = Some((tape.clone(), ordinal, tape_entry(call, true, None)));
                client
                    .stream(call, &span.handle().trace_headers(), &span.observer())
                    .await
            }
            None => {
                client
                    .stream(call, &span.handle().trace_headers(), &span.observer())
                    .await
            }
        },
        Err(e) => Err(e.clone()),
    };
    record_sent(
        client,
        usage,
        resolved.as_ref().ok(),
        &span,
        opened.as_ref().err(),
    );
    match opened {
        Ok(stream) => Ok(TracedStream::new(stream, span, usage.clone()).saved_to(saving)),
        Err(e) => {
            usage.record(Err(&e));
            span.finish(Err(&e));
            Err(e)
        }
    }
}

/// A call as the tape keeps it (the HTTP request is left out: the tape answers, never resends).
fn tape_entry(call: &Resolved, stream: bool, response: Option<ChatResponse>) -> TapeEntry {
    TapeEntry {
        provider: call.provider.name.clone(),
        stream,
        request: call.request.clone(),
        http: None,
        response,
        deltas: Vec::new(),
        error: None,
    }
}

/// The `chat {model}` span of one call, and the attempts it took.
#[derive(Debug)]
pub(crate) struct ChatSpan {
    guard: SpanGuard,
    attempts: Arc<AtomicU32>,
    content: ContentPolicy,
    /// Answered from the checkpointed tape of its node execution (a resumed run).
    replayed: std::sync::atomic::AtomicBool,
    started: Instant,
    /// The provider's name and the model, for the watcher.
    provider: String,
    model: String,
    watch: Option<NodeWatch>,
}

impl ChatSpan {
    fn start(
        client: &LlmClient,
        tracer: &SdkTracer,
        parent: &SpanHandle,
        request: &ChatRequest,
        resolved: Option<&Resolved>,
        content: ContentPolicy,
    ) -> Self {
        let model = resolved
            .map(|r| r.model.clone())
            .or_else(|| request.model.clone())
            .unwrap_or_else(|| client.default_model().to_string());
        // A request that did not resolve is named after where it would have gone.
        let system = resolved.map_or_else(|| client.provider_name(), |r| r.provider.system);
        // The resolved request has the provider's defaults filled in (temperature, ...).
        let sent = resolved.map_or(request, |r| &r.request);
        let mut attributes = chat_request_attributes(
            system,
            &model,
            sent,
            resolved.and_then(Resolved::server),
            content,
        );
        if let Some(r) = resolved {
            attributes.push(KeyValue::new(
                "kettle.llm.provider",
                r.provider.name.clone(),
            ));
            if let Some(seed) = r.request.seed {
                attributes.push(KeyValue::new(semconv::GEN_AI_REQUEST_SEED, seed));
            }
            if !r.request.tools.is_empty() {
                attributes.push(KeyValue::new(
                    "kettle.llm.tools",
                    r.request.tools.len() as i64,
                ));
            }
        }
        if client.is_replay() {
            attributes.push(KeyValue::new("kettle.llm.replayed", true));
        }
        let provider = resolved.map_or_else(
            || client.provider_name().to_string(),
            |r| r.provider.name.clone(),
        );
        // Guarded: if the call is abandoned (run interrupted), the span still ends, marked cancelled.
        Self {
            started: Instant::now(),
            provider,
            model: model.clone(),
            watch: None,
            guard: SpanGuard::new(parent.child(
                tracer,
                format!("chat {model}"),
                SpanKind::Client,
                attributes,
            )),
            attempts: Arc::new(AtomicU32::new(0)),
            replayed: std::sync::atomic::AtomicBool::new(false),
            content,
        }
    }

    fn watched(mut self, watch: Option<&NodeWatch>) -> Self {
        self.watch = watch.cloned();
        self
    }

    /// Tells the watcher, if any, of one delta of a streamed answer.
    pub(crate) fn delta(&self, text: &str) {
        if let Some(watch) = &self.watch {
            watch.delta(text);
        }
    }

    /// Marks a call answered from the checkpointed tape of its node execution.
    fn mark_replayed(&self) {
        self.replayed.store(true, Ordering::Relaxed);
        self.handle()
            .set_attribute(KeyValue::new("kettle.llm.replayed", true));
    }

    pub(crate) fn handle(&self) -> &SpanHandle {
        self.guard.handle()
    }

    /// Records each attempt as a `kettle.llm.attempt` event.
    fn observer(&self) -> impl Fn(&Attempt) + Send + Sync + use<> {
        let span = self.guard.handle().clone();
        let attempts = self.attempts.clone();
        move |attempt: &Attempt| {
            attempts.fetch_max(attempt.number, Ordering::Relaxed);
            let mut attributes = vec![KeyValue::new(
                "kettle.llm.attempt",
                i64::from(attempt.number),
            )];
            if let Some(status) = attempt.status {
                attributes.push(KeyValue::new(
                    semconv::HTTP_RESPONSE_STATUS_CODE,
                    i64::from(status),
                ));
            }
            if let Some(error) = &attempt.error {
                attributes.push(KeyValue::new(semconv::ERROR_TYPE, error.kind()));
                attributes.push(KeyValue::new("kettle.llm.error", error.to_string()));
            }
            if let Some(wait) = attempt.retry_in {
                attributes.push(KeyValue::new(
                    "kettle.llm.retry_in_ms",
                    i64::try_from(wait.as_millis()).unwrap_or(i64::MAX),
                ));
            }
            span.add_event("kettle.llm.attempt", attributes);
        }
    }

    /// Sets the outcome's attributes and status, and ends the span.
    pub(crate) fn finish(self, outcome: Result<&ChatResponse, &LlmError>) {
        if let Some(watch) = &self.watch
            && !self.replayed.load(Ordering::Relaxed)
        {
            watch.ended(
                &self.provider,
                &self.model,
                self.started.elapsed(),
                outcome.is_ok(),
            );
        }
        let span = self.guard.handle();
        let attempts = self.attempts.load(Ordering::Relaxed);
        if attempts > 0 {
            span.set_attribute(KeyValue::new("kettle.llm.attempts", i64::from(attempts)));
        }
        match outcome {
            Ok(response) => {
                for attribute in chat_response_attributes(response, self.content) {
                    span.set_attribute(attribute);
                }
                if !response.tool_calls.is_empty() {
                    span.set_attribute(KeyValue::new(
                        "kettle.llm.tool_calls",
                        response.tool_calls.len() as i64,
                    ));
                }
                self.guard.finish_unset();
            }
            Err(error) => {
                span.set_attribute(KeyValue::new(semconv::ERROR_TYPE, error.kind()));
                self.guard.finish_error(error.to_string());
            }
        }
    }
}
