//! The embedded checkpoint store: one SQLite file (`.kettle/state.db` by default), in WAL mode
//! so that a checkpoint is one short transaction that survives a crash of the process.

use super::model::{Checkpoint, CheckpointSummary, RunRecord, RunStatus, now_ms};
use super::store::{CheckpointStore, StoreError};
use crate::llm::TapeEntry;
use rusqlite::{Connection, OptionalExtension, params};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, agent TEXT NOT NULL, agent_file TEXT NOT NULL,
    status TEXT NOT NULL, trace_id TEXT NOT NULL, root_span_id TEXT NOT NULL,
    created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, checkpoints INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, reason TEXT NOT NULL, status TEXT NOT NULL,
    steps INTEGER NOT NULL, created_ms INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (run_id, seq));
CREATE TABLE IF NOT EXISTS llm_calls (
    run_id TEXT NOT NULL, exec TEXT NOT NULL, ordinal INTEGER NOT NULL, entry TEXT NOT NULL,
    PRIMARY KEY (run_id, exec, ordinal));
";

#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    db: Mutex<Connection>,
}

impl SqliteStore {
    /// Opens (creating it and its folder if needed) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |message: String| StoreError::Open {
            at: path.display().to_string(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| open_error(e.to_string()))?;
        }
        let db = Connection::open(path).map_err(|e| open_error(e.to_string()))?;
        db.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| open_error(e.to_string()))?;
        // WAL + NORMAL: a committed transaction survives the process being killed.
        db.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;")
            .and_then(|()| db.execute_batch(SCHEMA))
            .map_err(|e| open_error(e.to_string()))?;
        Ok(Self {
            path: path.into(),
            db: Mutex::new(db),
        })
    }

    fn db(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.db.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn query_error(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Query {
            at: self.location(),
            message: e.to_string(),
        }
    }

    fn corrupt(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Corrupt {
            at: self.location(),
            message: e.to_string(),
        }
    }
}

fn status_of(text: &str) -> RunStatus {
    RunStatus::parse(text).unwrap_or(RunStatus::Failed)
}

fn run_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    Ok(RunRecord {
        run_id: row.get(0)?,
        agent: row.get(1)?,
        agent_file: row.get(2)?,
        status: status_of(&row.get::<_, String>(3)?),
        trace_id: row.get(4)?,
        root_span_id: row.get(5)?,
        created_ms: row.get::<_, i64>(6)? as u64,
        updated_ms: row.get::<_, i64>(7)? as u64,
        checkpoints: row.get::<_, i64>(8)? as u64,
    })
}

const RUN_COLUMNS: &str = "run_id, agent, agent_file, status, trace_id, root_span_id, created_ms, updated_ms, checkpoints";

impl CheckpointStore for SqliteStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    fn put_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO runs (run_id, agent, agent_file, status, trace_id, root_span_id, created_ms, updated_ms, checkpoints)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (run_id) DO UPDATE SET status = excluded.status, updated_ms = excluded.updated_ms",
                params![
                    run.run_id, run.agent, run.agent_file, run.status.as_str(), run.trace_id,
                    run.root_span_id, run.created_ms as i64, run.updated_ms as i64, run.checkpoints as i64
                ],
            )
            .map(drop)
            .map_err(|e| self.query_error(e))
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<u64, StoreError> {
        let mut db = self.db();
        let tx = db.transaction().map_err(|e| self.query_error(e))?;
        let last: i64 = tx
            .query_row(
                "SELECT checkpoints FROM runs WHERE run_id = ?1",
                params![checkpoint.run_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.query_error(e))?
            .ok_or_else(|| self.query_error(format!("no run `{}`", checkpoint.run_id)))?;
        let seq = last as u64 + 1;
        let mut saved = checkpoint.clone();
        saved.seq = seq;
        let body = serde_json::to_string(&saved).map_err(|e| self.corrupt(e))?;
        let now = now_ms() as i64;
        tx.execute(
            "INSERT INTO checkpoints (run_id, seq, reason, status, steps, created_ms, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![saved.run_id, seq as i64, saved.reason, saved.status.as_str(), saved.steps, now, body],
        )
        .and_then(|_| {
            tx.execute(
                "UPDATE runs SET checkpoints = ?2, status = ?3, updated_ms = ?4 WHERE run_id = ?1",
                params![saved.run_id, seq as i64, saved.status.as_str(), now],
            )
        })
        .map_err(|e| self.query_error(e))?;
        tx.commit().map_err(|e| self.query_error(e))?;
        Ok(seq)
    }

    fn set_status(&self, run_id: &str, status: RunStatus) -> Result<(), StoreError> {
        self.db()
            .execute(
                "UPDATE runs SET status = ?2, updated_ms = ?3 WHERE run_id = ?1",
                params![run_id, status.as_str(), now_ms() as i64],
            )
            .map(drop)
            .map_err(|e| self.query_error(e))
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.db()
            .query_row(
                &format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?1"),
                params![run_id],
                run_of,
            )
            .optional()
            .map_err(|e| self.query_error(e))
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let db = self.db();
        let mut query = db
            .prepare(&format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY created_ms DESC, run_id DESC"
            ))
            .map_err(|e| self.query_error(e))?;
        query
            .query_map([], run_of)
            .and_then(Iterator::collect)
            .map_err(|e| self.query_error(e))
    }

    fn history(&self, run_id: &str) -> Result<Vec<CheckpointSummary>, StoreError> {
        let db = self.db();
        let mut query = db
            .prepare("SELECT seq, reason, status, steps, created_ms FROM checkpoints WHERE run_id = ?1 ORDER BY seq")
            .map_err(|e| self.query_error(e))?;
        query
            .query_map(params![run_id], |row| {
                Ok(CheckpointSummary {
                    seq: row.get::<_, i64>(0)? as u64,
                    reason: row.get(1)?,
                    status: status_of(&row.get::<_, String>(2)?),
                    steps: row.get(3)?,
                    created_ms: row.get::<_, i64>(4)? as u64,
                })
            })
            .and_then(Iterator::collect)
            .map_err(|e| self.query_error(e))
    }

    fn checkpoint(&self, run_id: &str, seq: Option<u64>) -> Result<Option<Checkpoint>, StoreError> {
        let db = self.db();
        let body: Option<String> = match seq {
            Some(seq) => db.query_row(
                "SELECT body FROM checkpoints WHERE run_id = ?1 AND seq = ?2",
                params![run_id, seq as i64],
                |row| row.get(0),
            ),
            None => db.query_row(
                "SELECT body FROM checkpoints WHERE run_id = ?1 ORDER BY seq DESC LIMIT 1",
                params![run_id],
                |row| row.get(0),
            ),
        }
        .optional()
        .map_err(|e| self.query_error(e))?;
        body.map(|b| serde_json::from_str(&b).map_err(|e| self.corrupt(e)))
            .transpose()
    }

    fn record_call(
        &self,
        run_id: &str,
        exec: &str,
        ordinal: u32,
        entry: &TapeEntry,
    ) -> Result<(), StoreError> {
        let line =
            crate::redact::string(serde_json::to_string(entry).map_err(|e| self.corrupt(e))?);
        self.db()
            .execute(
                "INSERT OR REPLACE INTO llm_calls (run_id, exec, ordinal, entry) VALUES (?1, ?2, ?3, ?4)",
                params![run_id, exec, ordinal, line],
            )
            .map(drop)
            .map_err(|e| self.query_error(e))
    }

    fn calls(&self, run_id: &str, exec: &str) -> Result<Vec<TapeEntry>, StoreError> {
        let db = self.db();
        let mut query = db
            .prepare("SELECT entry FROM llm_calls WHERE run_id = ?1 AND exec = ?2 ORDER BY ordinal")
            .map_err(|e| self.query_error(e))?;
        let lines: Vec<String> = query
            .query_map(params![run_id, exec], |row| row.get(0))
            .and_then(Iterator::collect)
            .map_err(|e| self.query_error(e))?;
        lines
            .iter()
            .map(|l| serde_json::from_str(l).map_err(|e| self.corrupt(e)))
            .collect()
    }
}
