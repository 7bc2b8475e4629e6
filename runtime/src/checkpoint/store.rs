//! The one interface every checkpoint store implements (SQLite embedded, Postgres for many
//! machines), and its errors. Calls are blocking and short: one small transaction each.

use super::model::{Checkpoint, CheckpointSummary, RunRecord, RunStatus};
use crate::llm::TapeEntry;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the checkpoint store {at}: {message}")]
    Open { at: String, message: String },
    #[error("checkpoint store {at}: {message}")]
    Query { at: String, message: String },
    #[error(
        "checkpoint store {at}: a saved record is unreadable ({message}); was it written by another version of Kettle?"
    )]
    Corrupt { at: String, message: String },
}

/// Saves and reads runs, their checkpoints and the LLM tapes of their node executions.
pub trait CheckpointStore: Send + Sync + std::fmt::Debug {
    /// Where the store is, for messages (a file, a URL without its password).
    fn location(&self) -> String;

    /// Records a new run, or updates it (a resumed run).
    fn put_run(&self, run: &RunRecord) -> Result<(), StoreError>;

    /// Saves `checkpoint` and makes it the run's latest, in one transaction; returns its `seq`.
    fn save(&self, checkpoint: &Checkpoint) -> Result<u64, StoreError>;

    /// Sets the run's status (the last checkpoint keeps its own).
    fn set_status(&self, run_id: &str, status: RunStatus) -> Result<(), StoreError>;

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError>;

    /// Every run, newest first.
    fn runs(&self) -> Result<Vec<RunRecord>, StoreError>;

    /// The run's checkpoints, oldest first.
    fn history(&self, run_id: &str) -> Result<Vec<CheckpointSummary>, StoreError>;

    /// Checkpoint `seq` of the run, or its latest.
    fn checkpoint(&self, run_id: &str, seq: Option<u64>) -> Result<Option<Checkpoint>, StoreError>;

    /// Saves the `ordinal`-th LLM call of node execution `exec` (replacing what was there).
    fn record_call(
        &self,
        run_id: &str,
        exec: &str,
        ordinal: u32,
        entry: &TapeEntry,
    ) -> Result<(), StoreError>;

    /// The LLM calls of node execution `exec`, in order.
    fn calls(&self, run_id: &str, exec: &str) -> Result<Vec<TapeEntry>, StoreError>;
}
