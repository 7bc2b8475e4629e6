//! The LLM tape of one node execution, kept in the checkpoint store: each call the execution
//! completes is saved as it completes (in the record/replay format of `llm::TapeEntry`), so
//! that when the execution runs again after a crash or an interrupt, its calls are answered
//! from the tape in the same order instead of being paid for twice. The first call that
//! differs from the recorded one goes to the provider, and so does every call after it.

use super::model::UsageUsed;
use super::store::CheckpointStore;
use crate::llm::{ChatRequest, TapeEntry};
use std::sync::{Arc, Mutex, PoisonError};

#[derive(Debug)]
pub struct ExecutionTape {
    store: Arc<dyn CheckpointStore>,
    run_id: String,
    /// Names the execution: its path, its place on the path, its node and attempt.
    exec: String,
    cursor: Mutex<Cursor>,
}

#[derive(Debug, Default)]
struct Cursor {
    recorded: Vec<TapeEntry>,
    next: u32,
    diverged: bool,
    /// LLM use of this execution so far: calls when they start, tokens when they end.
    used: UsageUsed,
}

/// What to do with one call.
#[derive(Debug)]
pub enum TapeTurn {
    /// Answer it with this recording.
    Replay(Box<TapeEntry>),
    /// Send it to the provider, then [`ExecutionTape::record`] it under this ordinal.
    Call(u32),
}

impl ExecutionTape {
    /// The tape of execution `exec`, with the calls already saved for it (none if reading
    /// them fails: then every call goes to the provider, which costs but never misleads).
    pub fn open(store: Arc<dyn CheckpointStore>, run_id: &str, exec: String) -> Self {
        let recorded = store.calls(run_id, &exec).unwrap_or_else(|e| {
            tracing::warn!("cannot read the LLM tape of {exec}: {e}");
            Vec::new()
        });
        Self {
            store,
            run_id: run_id.into(),
            exec,
            cursor: Mutex::new(Cursor {
                recorded,
                ..Cursor::default()
            }),
        }
    }

    pub fn exec(&self) -> &str {
        &self.exec
    }

    /// LLM use of this execution so far (calls started, tokens of calls ended). A checkpoint
    /// taken while the execution runs leaves it out of the run's use, since the execution
    /// runs again, and counts again, after a resume.
    pub fn used(&self) -> UsageUsed {
        self.cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .used
    }

    /// The next call of the execution: replayed if it is the recorded one, else made.
    pub fn turn(&self, provider: &str, stream: bool, request: &ChatRequest) -> TapeTurn {
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let ordinal = cursor.next;
        cursor.next += 1;
        cursor.used.calls += 1;
        if !cursor.diverged
            && let Some(entry) = cursor.recorded.get(ordinal as usize)
            && entry.provider == provider
            && entry.stream == stream
            && same_request(&entry.request, request)
            && entry.error.is_none()
        {
            let entry = Box::new(entry.clone());
            if let Some(response) = &entry.response {
                cursor.used.input_tokens += u64::from(response.usage.input_tokens);
                cursor.used.output_tokens += u64::from(response.usage.output_tokens);
            }
            return TapeTurn::Replay(entry);
        }
        cursor.diverged = true;
        TapeTurn::Call(ordinal)
    }

    /// Saves a completed call; a failure to save is logged (the call is then paid again
    /// after a crash, never lost).
    pub fn record(&self, ordinal: u32, entry: &TapeEntry) {
        if let Some(response) = &entry.response {
            let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
            cursor.used.input_tokens += u64::from(response.usage.input_tokens);
            cursor.used.output_tokens += u64::from(response.usage.output_tokens);
        }
        if let Err(e) = self
            .store
            .record_call(&self.run_id, &self.exec, ordinal, entry)
        {
            tracing::warn!("cannot save LLM call {ordinal} of {}: {e}", self.exec);
        }
    }
}

fn same_request(a: &ChatRequest, b: &ChatRequest) -> bool {
    match (serde_json::to_value(a), serde_json::to_value(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
