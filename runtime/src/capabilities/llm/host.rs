//! The `llm` interface's host functions: a guest's call, within its quota, parented under the
//! node's innermost open span (its `chat` span within the run's span budget, or no call).

use super::super::bindings::llm as wit;
use super::call::{traced_call, traced_stream};
use super::convert::{
    from_wit, from_wit_chat, to_wit_chat_response, to_wit_error, to_wit_response,
};
use super::stream::GuestStream;
use super::{LlmCtx, NodeLlm};
use crate::capabilities::trace::NodeTrace;
use crate::llm::{ChatRequest, ChatResponse, LlmError};
use wasmtime::component::Resource;

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
        let parent = match self.trace.chat_parent() {
            Ok(parent) => parent,
            Err(denied) => return guest_result(Err(denied)),
        };
        if let Err(denied) = self
            .llm
            .quota
            .admit(&self.llm.client, &request, &self.llm.usage)
        {
            return guest_result(Err(denied));
        }
        let opened = traced_stream(
            &self.llm.client,
            self.trace.tracer(),
            &parent,
            &self.llm.usage,
            self.llm.content,
            request,
            self.llm.tape.as_ref(),
            self.llm.watch.as_ref(),
        )
        .await;
        // The stream was counted as a call when admitted; its tokens count as they are known.
        self.llm.quota.record_error(opened.as_ref().err());
        match opened {
            Ok(stream) => Ok(Ok(self.table.push(GuestStream::new(stream))?)),
            Err(e) => guest_result(Err(e)),
        }
    }
}

/// The outcome as the guest sees it. A replay miss is not the guest's to handle: the run no
/// longer follows its recording, so the node stops (a trap) with the reason.
pub(super) fn guest_result<T>(
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
    let parent = trace.chat_parent()?;
    llm.quota.admit(&llm.client, &request, &llm.usage)?;
    let outcome = traced_call(
        &llm.client,
        trace.tracer(),
        &parent,
        &llm.usage,
        llm.content,
        request,
        llm.tape.as_deref(),
        llm.watch.as_ref(),
    )
    .await;
    llm.quota.record(&outcome);
    outcome
}
