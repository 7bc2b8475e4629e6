//! Streamed LLM calls: the `chat-stream` resource a guest reads with `next()`, and the traced
//! stream behind it (also used by `uses: llm.stream`). The call's span records
//! `gen_ai.response.time_to_first_chunk` and ends with the stream; a stream dropped before
//! its end ends its span as cancelled. A stream was counted as a call when it was admitted;
//! its tokens count when its answer ends, and those of a stream that never ends as far as they
//! are known: one output token per delta received (every delta carries at least one). Each
//! delta is also told, as it arrives, to the run's watcher if it has one (`watch.rs`).

use super::super::bindings::llm as wit;
use super::LlmCtx;
use super::call::ChatSpan;
use super::convert::to_wit_chat_response;
use super::host::guest_result;
use super::usage::LlmUsage;
use crate::checkpoint::ExecutionTape;
use crate::llm::{ChatStream, LlmError, StreamItem, TapeEntry};
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
    /// Deltas received so far.
    deltas: u64,
    /// Tokens recorded in the run's usage so far.
    counted: u64,
    /// Where the whole answer is saved when it ends (a durable run's tape), and under which ordinal.
    saving: Option<(Arc<ExecutionTape>, u32, TapeEntry)>,
}

impl TracedStream {
    pub(crate) fn new(stream: ChatStream, span: ChatSpan, usage: Arc<LlmUsage>) -> Self {
        Self {
            stream,
            span: Some(span),
            usage,
            started: Instant::now(),
            first_chunk_seen: false,
            deltas: 0,
            counted: 0,
            saving: None,
        }
    }

    /// Saves the answer, when it ends, to a node execution's tape.
    pub(crate) fn saved_to(mut self, saving: Option<(Arc<ExecutionTape>, u32, TapeEntry)>) -> Self {
        self.saving = saving;
        self
    }

    /// Tokens of this stream counted so far in the run's usage.
    pub fn counted_tokens(&self) -> u64 {
        self.counted
    }

    /// Ends a stream abandoned before its end: its span as cancelled, its known usage counted.
    pub fn abandon(&mut self) {
        if let Some(span) = self.span.take() {
            self.settle_unfinished();
            // Dropping the span's guard ends it as cancelled.
            drop(span);
        }
    }

    /// Counts the usage of an answer that will not end: a failed call, one token per delta.
    fn settle_unfinished(&mut self) {
        self.usage.record(Err(&LlmError::Provider(String::new())));
        self.usage.add_tokens(0, self.deltas);
        self.counted += self.deltas;
    }

    /// The next delta, then the whole answer, then `None`.
    pub async fn next(&mut self) -> Result<Option<StreamItem>, LlmError> {
        let Some(span) = &self.span else {
            return Ok(None);
        };
        let item = self.stream.next().await;
        if !self.first_chunk_seen && matches!(item, Ok(Some(_))) {
            self.first_chunk_seen = true;
            // From the start of the HTTP attempt when there was one (its wait for the
            // headers included), else from the stream's opening.
            let ttfc = self
                .stream
                .time_to_first_chunk()
                .unwrap_or_else(|| self.started.elapsed());
            span.handle().set_attribute(KeyValue::new(
                semconv::GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK,
                ttfc.as_secs_f64(),
            ));
        }
        match &item {
            Ok(Some(StreamItem::Delta(text))) => {
                self.deltas += 1;
                if let Some(span) = &self.span {
                    span.delta(text);
                }
                if let Some((_, _, entry)) = &mut self.saving {
                    entry.deltas.push(text.clone());
                }
            }
            Ok(Some(StreamItem::End(response))) => {
                if let Some((tape, ordinal, mut entry)) = self.saving.take() {
                    entry.response = Some(response.clone());
                    tape.record(ordinal, &entry);
                }
                self.usage.record(Ok(response));
                self.counted += u64::from(response.usage.input_tokens)
                    + u64::from(response.usage.output_tokens);
                if let Some(span) = self.span.take() {
                    span.finish(Ok(response));
                }
            }
            Ok(None) => {
                let error = LlmError::Provider("the stream ended without an answer".into());
                self.settle_unfinished();
                if let Some(span) = self.span.take() {
                    span.finish(Err(&error));
                }
                return Err(error);
            }
            Err(error) => {
                self.settle_unfinished();
                if let Some(span) = self.span.take() {
                    span.finish(Err(error));
                }
            }
        }
        item
    }
}

impl Drop for TracedStream {
    fn drop(&mut self) {
        self.abandon();
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
        let before = stream.counted_tokens();
        let item = stream.next().await;
        // The node's own token count follows the run's.
        self.llm
            .quota
            .add_tokens(stream.counted_tokens().saturating_sub(before));
        guest_result(item.map(|item| {
            item.map(|item| match item {
                StreamItem::Delta(text) => wit::StreamEvent::Delta(text),
                StreamItem::End(response) => wit::StreamEvent::End(to_wit_chat_response(response)),
            })
        }))
    }

    fn drop(&mut self, stream: Resource<GuestStream>) -> wasmtime::Result<()> {
        // An unfinished call ends as cancelled, its known usage counted.
        let mut stream = self.table.delete(stream)?.inner;
        let before = stream.counted_tokens();
        stream.abandon();
        self.llm
            .quota
            .add_tokens(stream.counted_tokens().saturating_sub(before));
        Ok(())
    }
}
