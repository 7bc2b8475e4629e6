//! Streamed LLM calls: the `chat-stream` resource a guest reads with `next()`, and the traced
//! stream behind it (also used by `uses: llm.stream`). The call's span records
//! `gen_ai.response.time_to_first_chunk` and ends with the stream; a stream dropped before
//! its end ends its span as cancelled.

use super::super::bindings::llm as wit;
use super::LlmCtx;
use super::call::ChatSpan;
use super::convert::to_wit_chat_response;
use super::host::guest_result;
use super::usage::LlmUsage;
use crate::llm::{ChatStream, LlmError, StreamItem};
use crate::telemetry::semconv;
use opentelemetry::KeyValue;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::Resource;

/// A stream and the span it ends.
#[derive(Debug)]
pub struct TracedStream {
    stream: ChatStream,
    /// `None` once the stream ended.
    span: Option<ChatSpan>,
    usage: Arc<LlmUsage>,
    started: Instant,
    first_chunk_seen: bool,
}

impl TracedStream {
    pub(crate) fn new(stream: ChatStream, span: ChatSpan, usage: Arc<LlmUsage>) -> Self {
        Self {
            stream,
            span: Some(span),
            usage,
            started: Instant::now(),
            first_chunk_seen: false,
        }
    }

    /// The next delta, then the whole answer, then `None`.
    pub async fn next(&mut self) -> Result<Option<StreamItem>, LlmError> {
        let Some(span) = &self.span else {
            return Ok(None);
        };
        let item = self.stream.next().await;
        if !self.first_chunk_seen && matches!(item, Ok(Some(_))) {
            self.first_chunk_seen = true;
            span.handle().set_attribute(KeyValue::new(
                semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                self.started.elapsed().as_secs_f64(),
            ));
        }
        match &item {
            Ok(Some(StreamItem::Delta(_))) => {}
            Ok(Some(StreamItem::End(response))) => {
                self.usage.record(Ok(response));
                if let Some(span) = self.span.take() {
                    span.finish(Ok(response));
                }
            }
            Ok(None) => {
                let error = LlmError::Provider("the stream ended without an answer".into());
                self.usage.record(Err(&error));
                if let Some(span) = self.span.take() {
                    span.finish(Err(&error));
                }
                return Err(error);
            }
            Err(error) => {
                self.usage.record(Err(error));
                if let Some(span) = self.span.take() {
                    span.finish(Err(error));
                }
            }
        }
        item
    }
}

/// The host side of a guest's `chat-stream` resource.
#[derive(Debug)]
pub struct GuestStream {
    inner: TracedStream,
}

impl GuestStream {
    pub(crate) fn new(inner: TracedStream) -> Self {
        Self { inner }
    }
}

impl wit::HostChatStream for LlmCtx<'_> {
    async fn next(
        &mut self,
        stream: Resource<GuestStream>,
    ) -> wasmtime::Result<Result<Option<wit::StreamEvent>, wit::LlmError>> {
        let stream = &mut self.table.get_mut(&stream)?.inner;
        guest_result(stream.next().await.map(|item| {
            item.map(|item| match item {
                StreamItem::Delta(text) => wit::StreamEvent::Delta(text),
                StreamItem::End(response) => wit::StreamEvent::End(to_wit_chat_response(response)),
            })
        }))
    }

    fn drop(&mut self, stream: Resource<GuestStream>) -> wasmtime::Result<()> {
        // Dropping the stream drops its span guard: an unfinished call ends as cancelled.
        self.table.delete(stream)?;
        Ok(())
    }
}
