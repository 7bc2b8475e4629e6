//! The `llm` import: chat completions performed by the host, each one a `chat {model}` span
//! parented under the node's innermost open span (OpenTelemetry GenAI conventions). Every
//! attempt the provider needed is an event on that span; the outcome is its status.

use crate::bindings::llm::{self as wit};
use crate::capabilities::llm_quota::LlmQuota;
use crate::capabilities::llm_stream::{GuestStream, TracedStream};
use crate::capabilities::trace::NodeTrace;
use crate::llm::{
    Attempt, ChatMessage, ChatRequest, ChatResponse, LlmClient, LlmError, Resolved, Role, Tool,
    ToolCall,
};
use crate::telemetry::{
    ContentPolicy, SpanGuard, SpanHandle, chat_request_attributes, chat_response_attributes,
    semconv,
};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use opentelemetry_sdk::trace::SdkTracer;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use wasmtime::component::{HasData, Resource, ResourceTable};

/// LLM use of a whole run, summed over its nodes.
#[derive(Debug, Default)]
pub struct LlmUsage {
    pub calls: AtomicU64,
    pub failed_calls: AtomicU64,
    pub input_tokens: AtomicU64,
    pub output_tokens: AtomicU64,
}

impl LlmUsage {
    pub(crate) fn record(&self, outcome: Result<&ChatResponse, &LlmError>) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        match outcome {
            Ok(r) => {
                self.input_tokens
                    .fetch_add(u64::from(r.usage.input_tokens), Ordering::Relaxed);
                self.output_tokens
                    .fetch_add(u64::from(r.usage.output_tokens), Ordering::Relaxed);
            }
            Err(_) => {
                self.failed_calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Per-node LLM state, kept in the node's `Store`.
#[derive(Debug)]
pub struct NodeLlm {
    pub client: Arc<LlmClient>,
    pub usage: Arc<LlmUsage>,
    pub quota: LlmQuota,
    /// Whether prompts and answers go on the `chat` spans.
    pub content: ContentPolicy,
}

/// What the `llm` import sees of the store: its own state, the resource table (streams) and,
/// read-only, the node's trace.
pub struct LlmCtx<'a> {
    pub llm: &'a mut NodeLlm,
    pub trace: &'a NodeTrace,
    pub table: &'a mut ResourceTable,
}

/// Names [`LlmCtx`] for `add_to_linker`.
pub struct LlmCapability;

impl HasData for LlmCapability {
    type Data<'a> = LlmCtx<'a>;
}

impl wit::Host for LlmCtx<'_> {
    async fn call(
        &mut self,
        request: wit::Request,
    ) -> wasmtime::Result<Result<wit::Response, wit::LlmError>> {
        let request = match from_wit(request) {
            Ok(r) => r,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let outcome = traced(self.llm, self.trace, request).await;
        guest_result(outcome.map(to_wit_response))
    }

    async fn chat(
        &mut self,
        request: wit::ChatRequest,
    ) -> wasmtime::Result<Result<wit::ChatResponse, wit::LlmError>> {
        let request = match from_wit_chat(request) {
            Ok(r) => r,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        let outcome = traced(self.llm, self.trace, request).await;
        guest_result(outcome.map(to_wit_chat_response))
    }

    async fn stream(
        &mut self,
        request: wit::ChatRequest,
    ) -> wasmtime::Result<Result<Resource<GuestStream>, wit::LlmError>> {
        let request = match from_wit_chat(request) {
            Ok(r) => r,
            Err(e) => return Ok(Err(to_wit_error(e))),
        };
        if let Err(denied) = self
            .llm
            .quota
            .admit(&self.llm.client, &request, &self.llm.usage)
        {
            return guest_result(Err(denied));
        }
        let parent = self.trace.innermost().clone();
        let opened = traced_stream(
            &self.llm.client,
            self.trace.tracer(),
            &parent,
            &self.llm.usage,
            self.llm.content,
            request,
        )
        .await;
        // A stream counts as a call when it opens; its tokens are known only when it ends.
        self.llm.quota.record_call(opened.as_ref().err());
        match opened {
            Ok(stream) => Ok(Ok(self.table.push(GuestStream::new(stream))?)),
            Err(e) => guest_result(Err(e)),
        }
    }
}

/// The outcome as the guest sees it. A replay miss is not the guest's to handle: the run no
/// longer follows its recording, so the node stops (a trap) with the reason.
pub(crate) fn guest_result<T>(
    outcome: Result<T, LlmError>,
) -> wasmtime::Result<Result<T, wit::LlmError>> {
    match outcome {
        Ok(value) => Ok(Ok(value)),
        Err(LlmError::NotRecorded(message)) => {
            Err(wasmtime::Error::msg(format!("not recorded: {message}")))
        }
        Err(e) => Ok(Err(to_wit_error(e))),
    }
}

/// A guest's call, within its quota, parented under its innermost open span.
async fn traced(
    llm: &mut NodeLlm,
    trace: &NodeTrace,
    request: ChatRequest,
) -> Result<ChatResponse, LlmError> {
    llm.quota.admit(&llm.client, &request, &llm.usage)?;
    let parent = trace.innermost().clone();
    let outcome = traced_call(
        &llm.client,
        trace.tracer(),
        &parent,
        &llm.usage,
        llm.content,
        request,
    )
    .await;
    llm.quota.record(&outcome);
    outcome
}

/// Performs one completion as a `chat {model}` CLIENT span, child of `parent`.
pub async fn traced_call(
    client: &LlmClient,
    tracer: &SdkTracer,
    parent: &SpanHandle,
    usage: &LlmUsage,
    content: ContentPolicy,
    request: ChatRequest,
) -> Result<ChatResponse, LlmError> {
    let resolved = client.resolve(request.clone());
    let span = ChatSpan::start(
        client,
        tracer,
        parent,
        &request,
        resolved.as_ref().ok(),
        content,
    );
    let outcome = match &resolved {
        Ok(call) => {
            client
                .complete(call, &span.handle().trace_headers(), &span.observer())
                .await
        }
        Err(e) => Err(e.clone()),
    };
    usage.record(outcome.as_ref());
    span.finish(outcome.as_ref());
    outcome
}

/// Opens a streamed completion as a `chat {model}` CLIENT span, child of `parent`; the span
/// ends with the stream.
pub async fn traced_stream(
    client: &LlmClient,
    tracer: &SdkTracer,
    parent: &SpanHandle,
    usage: &Arc<LlmUsage>,
    content: ContentPolicy,
    request: ChatRequest,
) -> Result<TracedStream, LlmError> {
    let resolved = client.resolve(request.clone());
    let span = ChatSpan::start(
        client,
        tracer,
        parent,
        &request,
        resolved.as_ref().ok(),
        content,
    );
    span.handle()
        .set_attribute(KeyValue::new(semconv::GEN_AI_REQUEST_STREAM, true));
    let opened = match &resolved {
        Ok(call) => {
            client
                .stream(call, &span.handle().trace_headers(), &span.observer())
                .await
        }
        Err(e) => Err(e.clone()),
    };
    match opened {
        Ok(stream) => Ok(TracedStream::new(stream, span, usage.clone())),
        Err(e) => {
            usage.record(Err(&e));
            span.finish(Err(&e));
            Err(e)
        }
    }
}

/// The `chat {model}` span of one call, and the attempts it took.
#[derive(Debug)]
pub(crate) struct ChatSpan {
    guard: SpanGuard,
    attempts: Arc<AtomicU32>,
    content: ContentPolicy,
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
        // Guarded: if the call is abandoned (run interrupted), the span still ends, marked cancelled.
        Self {
            guard: SpanGuard::new(parent.child(
                tracer,
                format!("chat {model}"),
                SpanKind::Client,
                attributes,
            )),
            attempts: Arc::new(AtomicU32::new(0)),
            content,
        }
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

fn from_wit(request: wit::Request) -> Result<ChatRequest, LlmError> {
    Ok(ChatRequest {
        messages: request
            .messages
            .into_iter()
            .map(|m| ChatMessage::new(role(m.role), m.content))
            .collect(),
        model: request.model,
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        stop: request.stop,
        extra: json_object(request.extra.as_deref(), "extra")?.unwrap_or_default(),
        ..ChatRequest::default()
    })
}

fn from_wit_chat(request: wit::ChatRequest) -> Result<ChatRequest, LlmError> {
    let tools = request
        .tools
        .into_iter()
        .map(|t| {
            let parameters = json_object(Some(&t.parameters), "tool parameters")?
                .map_or_else(|| Value::Object(Map::new()), Value::Object);
            Ok(Tool {
                name: t.name,
                description: t.description,
                parameters,
            })
        })
        .collect::<Result<_, LlmError>>()?;
    Ok(ChatRequest {
        messages: request
            .messages
            .into_iter()
            .map(|m| ChatMessage {
                role: role(m.role),
                content: m.content,
                tool_calls: m.tool_calls.into_iter().map(from_wit_tool_call).collect(),
                tool_call_id: m.tool_call_id,
            })
            .collect(),
        model: request.model,
        temperature: request.temperature,
        max_tokens: request.max_tokens,
        stop: request.stop,
        seed: request.seed,
        tools,
        tool_choice: request.tool_choice,
        response_format: json_object(request.response_format.as_deref(), "response-format")?
            .map(Value::Object),
        provider: request.provider,
        api_base: None,
        extra: json_object(request.extra.as_deref(), "extra")?.unwrap_or_default(),
    })
}

/// Parses an optional JSON object handed over as text.
fn json_object(text: Option<&str>, what: &str) -> Result<Option<Map<String, Value>>, LlmError> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => match serde_json::from_str(text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(LlmError::InvalidRequest(format!(
                "`{what}` must be a JSON object"
            ))),
            Err(e) => Err(LlmError::InvalidRequest(format!(
                "`{what}` is not JSON: {e}"
            ))),
        },
    }
}

fn role(role: wit::Role) -> Role {
    match role {
        wit::Role::System => Role::System,
        wit::Role::User => Role::User,
        wit::Role::Assistant => Role::Assistant,
        wit::Role::Tool => Role::Tool,
    }
}

fn from_wit_tool_call(c: wit::ToolCall) -> ToolCall {
    ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn to_wit_tool_call(c: ToolCall) -> wit::ToolCall {
    wit::ToolCall {
        id: c.id,
        name: c.name,
        arguments: c.arguments,
    }
}

fn to_wit_usage(response: &ChatResponse) -> wit::Usage {
    wit::Usage {
        input_tokens: response.usage.input_tokens,
        output_tokens: response.usage.output_tokens,
    }
}

fn to_wit_response(response: ChatResponse) -> wit::Response {
    wit::Response {
        usage: to_wit_usage(&response),
        content: response.content,
        model: response.model,
        finish_reason: response.finish_reason,
    }
}

pub(crate) fn to_wit_chat_response(response: ChatResponse) -> wit::ChatResponse {
    wit::ChatResponse {
        usage: to_wit_usage(&response),
        content: response.content,
        model: response.model,
        finish_reason: response.finish_reason,
        tool_calls: response
            .tool_calls
            .into_iter()
            .map(to_wit_tool_call)
            .collect(),
    }
}

fn to_wit_error(error: LlmError) -> wit::LlmError {
    match error {
        LlmError::Denied(m) => wit::LlmError::Denied(m),
        LlmError::InvalidRequest(m) => wit::LlmError::InvalidRequest(m),
        LlmError::RateLimited(m) => wit::LlmError::RateLimited(m),
        LlmError::Timeout(m) => wit::LlmError::Timeout(m),
        LlmError::Provider(m) => wit::LlmError::Provider(m),
        LlmError::NotRecorded(m) => wit::LlmError::Provider(format!("not recorded: {m}")),
    }
}
