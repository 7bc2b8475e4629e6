//! Kettle beyond one machine: run requests queued on NATS JetStream and run by any number of
//! workers, each run checkpointed in a JetStream key-value bucket so that when a worker dies
//! another resumes its runs from their last checkpoint, with their LLM calls answered from
//! the tape. Knows nothing of the command line.
//!
//! `names.rs` (streams, subjects, keys), `wire.rs` (requests, results, dead letters),
//! `jet.rs` (the connection, streams and bucket), `io.rs` (the connection's thread, the
//! sync-to-async bridge), `kv_store.rs` (the `CheckpointStore` in the bucket), `agents.rs`
//! (the agents a worker serves), `worker.rs` (the consume loop), `submit.rs` (enqueue, fetch,
//! wait), `components.rs` (components in the object store by sha256), `backend.rs` (`kettle
//! serve --nats`: serve's runs enqueued here).

mod agents;
mod backend;
mod components;
mod io;
mod jet;
mod kv_store;
pub mod names;
mod submit;
mod wire;
mod worker;

pub use backend::NatsBackend;
pub use components::{
    ComponentEntry, ComponentList, Fetched, Published, bucket as components_bucket, publish_files,
    sha256_hex,
};
pub use jet::{Jet, public_url};
pub use kv_store::KvStore;
pub use submit::{
    Submitted, fetch_result, new_run_id, submit, submit_all_and_wait, submit_and_wait, wait_result,
};
pub use wire::{DeadLetter, RunRequest, RunResult, RunUsage};
pub use worker::{WorkerConfig, WorkerSummary, work};

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("NATS at {url}: {message}")]
    Nats { url: String, message: String },
    #[error("{}: {message}", path.display())]
    Agent { path: PathBuf, message: String },
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "no result for run {run_id} after {} s; it may still be queued or running: fetch it later with `kettle result {run_id}`", waited.as_secs()
    )]
    Timeout { run_id: String, waited: Duration },
}
