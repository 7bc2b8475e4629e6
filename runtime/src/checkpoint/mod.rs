//! Durable runs: a run's position saved after every node execution and at every fan-in
//! (`model.rs`), in a store behind one trait (`store.rs`; SQLite in `sqlite.rs`, Postgres in
//! `postgres.rs`), with the LLM
//! tape of each node execution (`tape.rs`) so that a node run again after a crash or an
//! interrupt does not pay twice for the calls it already made.

mod model;
mod postgres;
mod sqlite;
mod store;
mod tape;

pub use self::postgres::PostgresStore;
pub use model::{
    Checkpoint, CheckpointSummary, GroupPos, InterruptPos, PathPos, RunRecord, RunStatus,
    UsageUsed, now_ms,
};
pub use sqlite::SqliteStore;
pub use store::{CheckpointStore, StoreError};
pub use tape::{ExecutionTape, TapeTurn};

use std::path::Path;
use std::sync::Arc;

/// The default store: `.kettle/state.db`.
pub const DEFAULT_SQLITE_PATH: &str = ".kettle/state.db";

/// Opens the store `kind` (`sqlite` or `postgres`) at `url` (a file path, default
/// `.kettle/state.db`; or a `postgres://` URL, which selects Postgres whatever `kind` says).
pub fn open_store(kind: &str, url: Option<&str>) -> Result<Arc<dyn CheckpointStore>, StoreError> {
    let kind = match url {
        Some(url) if self::postgres::is_postgres_url(url) => "postgres",
        _ => kind,
    };
    match kind {
        "sqlite" => {
            let path = url
                .map(|u| u.strip_prefix("sqlite://").unwrap_or(u))
                .unwrap_or(DEFAULT_SQLITE_PATH);
            Ok(Arc::new(SqliteStore::open(Path::new(path))?))
        }
        "postgres" => match url {
            Some(url) => Ok(Arc::new(PostgresStore::open(url)?)),
            None => Err(StoreError::Open {
                at: "postgres".into(),
                message: "no URL: give settings.checkpoint.url (or --store) as postgres://USER:PASSWORD@HOST:PORT/DATABASE".into(),
            }),
        },
        other => Err(StoreError::Open {
            at: url.unwrap_or("").to_string(),
            message: format!("unknown checkpoint store `{other}`; use `sqlite` or `postgres`"),
        }),
    }
}

#[cfg(test)]
mod postgres_suite;
/// The suite every store passes; public behind the `store-suite` feature for the stores of
/// other crates (kettle-worker's bucket).
#[cfg(any(test, feature = "store-suite"))]
pub mod suite;
