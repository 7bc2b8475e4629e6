//! Checkpoints in a JetStream key-value bucket: the `CheckpointStore` every worker of a
//! deployment shares, so that the worker a request is redelivered to resumes the run where the
//! dead one left it.
//!
//! Keys: `runs.<run>` (the run's record), `cps.<run>.<seq>` (its checkpoints), and
//! `tape.<run>.<exec>.<n>` (the `n`-th LLM call of a node execution). A bucket has no
//! transactions, so a save writes the checkpoint first and then moves the record's count to
//! it with a compare-and-set on the record's revision: a crash between the two leaves the
//! record on the previous checkpoint (the new one is overwritten by the next save), never on a
//! checkpoint that is not there. The saves of one run are serialised, so that its parallel
//! branches number their checkpoints in the order they were taken.

use crate::io::{IoThread, wait_on};
use crate::jet::Jet;
use crate::names::{STATE_BUCKET, call_key, checkpoint_key, run_key};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures::TryStreamExt;
use kettle::checkpoint::{
    Checkpoint, CheckpointStore, CheckpointSummary, RunRecord, RunStatus, StoreError, now_ms,
};
use kettle::llm::TapeEntry;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A checkpoint as the bucket holds it: with the time it was saved.
#[derive(Serialize, serde::Deserialize)]
struct Stored {
    created_ms: u64,
    checkpoint: Checkpoint,
}

/// How many times a compare-and-set of a run's record is tried before giving up.
const CAS_TRIES: usize = 20;

/// A `CheckpointStore` in the bucket `kv`, whose connection runs on `io`.
pub struct KvStore {
    kv: kv::Store,
    /// Kept so that the connection's thread lives as long as the store.
    io: Arc<IoThread>,
    at: String,
    /// The runs this process writes: each one's record as last written and its revision (so
    /// that a save needs no read first; a compare-and-set that fails re-reads it), and a lock
    /// that serialises the run's saves. Forgotten when the run ends.
    live: Mutex<HashMap<String, Live>>,
}

#[derive(Default)]
struct Live {
    record: Option<(RunRecord, u64)>,
    saving: Arc<Mutex<()>>,
    /// The run had no record before this process created it and has recorded no call since,
    /// so it has no tapes: their reads are skipped.
    fresh: bool,
}

impl std::fmt::Debug for KvStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvStore").field("at", &self.at).finish()
    }
}

impl KvStore {
    /// The state bucket of `jet`'s server.
    pub fn open(jet: &Jet) -> Self {
        Self {
            kv: jet.state.clone(),
            io: jet.io.clone(),
            at: format!("{} (bucket {STATE_BUCKET})", jet.url),
            live: Mutex::new(HashMap::new()),
        }
    }

    fn query(&self, message: impl std::fmt::Display) -> StoreError {
        StoreError::Query {
            at: self.at.clone(),
            message: message.to_string(),
        }
    }

    /// Runs `work` (given the bucket) on the connection's thread and waits for it.
    fn on_io<T: Send + 'static>(
        &self,
        work: impl FnOnce(kv::Store) -> std::pin::Pin<Box<dyn Future<Output = T> + Send>>,
    ) -> Result<T, StoreError> {
        wait_on(self.io.handle(), work(self.kv.clone()))
            .ok_or_else(|| self.query("the connection to NATS was closed"))
    }

    fn get<T: DeserializeOwned>(&self, key: String) -> Result<Option<(T, u64)>, StoreError> {
        let shown = key.clone();
        let entry = self
            .on_io(move |kv| Box::pin(async move { kv.entry(key).await }))?
            .map_err(|e| self.query(format!("reading {shown}: {e}")))?;
        match entry {
            Some(e) if e.operation == kv::Operation::Put => {
                let value =
                    serde_json::from_slice(&e.value).map_err(|err| StoreError::Corrupt {
                        at: self.at.clone(),
                        message: format!("{shown}: {err}"),
                    })?;
                Ok(Some((value, e.revision)))
            }
            _ => Ok(None),
        }
    }

    fn put<T: Serialize>(&self, key: String, value: &T) -> Result<(), StoreError> {
        let shown = key.clone();
        let bytes = Bytes::from(serde_json::to_vec(value).map_err(|e| self.query(e))?);
        self.on_io(move |kv| Box::pin(async move { kv.put(key, bytes).await.map(drop) }))?
            .map_err(|e| self.query(format!("writing {shown}: {e}")))
    }

    fn live(&self) -> MutexGuard<'_, HashMap<String, Live>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The run's record and revision: as this process last wrote it, else read.
    fn current(&self, run_id: &str) -> Result<Option<(RunRecord, u64)>, StoreError> {
        if let Some(known) = self.live().get(run_id).and_then(|l| l.record.clone()) {
            return Ok(Some(known));
        }
        self.get::<RunRecord>(run_key(run_id))
    }

    /// Writes `record` if the run's record is still at `revision` (`None`: if there is none);
    /// false when it moved meanwhile (and then forgets what this process knew of it).
    fn put_record_at(&self, record: &RunRecord, revision: Option<u64>) -> Result<bool, StoreError> {
        let key = run_key(&record.run_id);
        let shown = key.clone();
        let bytes = Bytes::from(serde_json::to_vec(record).map_err(|e| self.query(e))?);
        let written = self.on_io(move |kv| {
            Box::pin(async move {
                match revision {
                    Some(rev) => kv.update(key, bytes, rev).await.map_err(|e| {
                        let conflict = e.kind() == kv::UpdateErrorKind::WrongLastRevision;
                        (conflict, e.to_string())
                    }),
                    None => kv.create(key, bytes).await.map_err(|e| {
                        let conflict = e.kind() == kv::CreateErrorKind::AlreadyExists;
                        (conflict, e.to_string())
                    }),
                }
            })
        })?;
        match written {
            Ok(revision) => {
                let ended = record.status != RunStatus::Running;
                let mut live = self.live();
                if ended {
                    live.remove(&record.run_id);
                } else {
                    live.entry(record.run_id.clone()).or_default().record =
                        Some((record.clone(), revision));
                }
                Ok(true)
            }
            Err((true, _)) => {
                if let Some(l) = self.live().get_mut(&record.run_id) {
                    l.record = None;
                }
                Ok(false)
            }
            Err((false, message)) => Err(self.query(format!("writing {shown}: {message}"))),
        }
    }

    /// Changes the run's record with `change`, retrying when another writer moved it.
    fn update_record(
        &self,
        run_id: &str,
        change: impl Fn(Option<RunRecord>) -> Result<RunRecord, StoreError>,
    ) -> Result<RunRecord, StoreError> {
        for _ in 0..CAS_TRIES {
            let current = self.current(run_id)?;
            let revision = current.as_ref().map(|(_, rev)| *rev);
            let next = change(current.map(|(r, _)| r))?;
            if self.put_record_at(&next, revision)? {
                return Ok(next);
            }
        }
        Err(self.query(format!(
            "the record of run {run_id} kept changing under {CAS_TRIES} attempts to update it; is the run running on two workers at once?"
        )))
    }
}

impl CheckpointStore for KvStore {
    fn location(&self) -> String {
        self.at.clone()
    }

    fn put_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        let fresh = std::cell::Cell::new(false);
        self.update_record(&run.run_id, |old| {
            fresh.set(old.is_none());
            Ok(match old {
                Some(old) => RunRecord {
                    created_ms: old.created_ms,
                    checkpoints: old.checkpoints,
                    updated_ms: now_ms(),
                    ..run.clone()
                },
                None => run.clone(),
            })
        })?;
        if let Some(live) = self.live().get_mut(&run.run_id) {
            live.fresh = fresh.get();
        }
        Ok(())
    }

    fn save(&self, checkpoint: &Checkpoint) -> Result<u64, StoreError> {
        let run_id = &checkpoint.run_id;
        let saving = self
            .live()
            .entry(run_id.clone())
            .or_default()
            .saving
            .clone();
        let _one_at_a_time = saving.lock().unwrap_or_else(PoisonError::into_inner);
        for _ in 0..CAS_TRIES {
            let Some((record, revision)) = self.current(run_id)? else {
                return Err(self.query(format!(
                    "cannot save a checkpoint of run {run_id}, which the store does not know (put_run first)"
                )));
            };
            let seq = record.checkpoints + 1;
            self.put(
                checkpoint_key(run_id, seq),
                &Stored {
                    created_ms: now_ms(),
                    checkpoint: Checkpoint {
                        seq,
                        ..checkpoint.clone()
                    },
                },
            )?;
            let moved = RunRecord {
                checkpoints: seq,
                status: checkpoint.status,
                updated_ms: now_ms(),
                ..record
            };
            if self.put_record_at(&moved, Some(revision))? {
                return Ok(seq);
            }
        }
        Err(self.query(format!(
            "the record of run {run_id} kept changing while saving a checkpoint; is the run running on two workers at once?"
        )))
    }

    fn set_status(&self, run_id: &str, status: RunStatus) -> Result<(), StoreError> {
        self.update_record(run_id, |old| match old {
            Some(old) => Ok(RunRecord {
                status,
                updated_ms: now_ms(),
                ..old
            }),
            None => Err(self.query(format!("no run {run_id} in the store"))),
        })
        .map(drop)
    }

    fn run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        Ok(self.get(run_key(run_id))?.map(|(r, _)| r))
    }

    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        let keys: Vec<String> = self
            .on_io(|kv| {
                Box::pin(async move {
                    let keys = kv.keys().await.map_err(|e| e.to_string())?;
                    keys.try_collect::<Vec<String>>()
                        .await
                        .map_err(|e| e.to_string())
                })
            })?
            .map_err(|e| self.query(format!("listing the runs: {e}")))?;
        let mut runs = Vec::new();
        for key in keys.into_iter().filter(|k| k.starts_with("runs.")) {
            if let Some((run, _)) = self.get::<RunRecord>(key)? {
                runs.push(run);
            }
        }
        runs.sort_by(|a, b| {
            b.created_ms
                .cmp(&a.created_ms)
                .then_with(|| b.run_id.cmp(&a.run_id))
        });
        Ok(runs)
    }

    fn history(&self, run_id: &str) -> Result<Vec<CheckpointSummary>, StoreError> {
        let Some(record) = self.run(run_id)? else {
            return Ok(Vec::new());
        };
        let mut history = Vec::new();
        for seq in 1..=record.checkpoints {
            if let Some((stored, _)) = self.get::<Stored>(checkpoint_key(run_id, seq))? {
                let c = stored.checkpoint;
                history.push(CheckpointSummary {
                    seq,
                    reason: c.reason,
                    status: c.status,
                    steps: c.steps,
                    created_ms: stored.created_ms,
                });
            }
        }
        Ok(history)
    }

    fn checkpoint(&self, run_id: &str, seq: Option<u64>) -> Result<Option<Checkpoint>, StoreError> {
        let seq = match seq {
            Some(seq) => seq,
            None => match self.run(run_id)? {
                Some(record) if record.checkpoints > 0 => record.checkpoints,
                _ => return Ok(None),
            },
        };
        Ok(self
            .get::<Stored>(checkpoint_key(run_id, seq))?
            .map(|(s, _)| Checkpoint {
                seq,
                ..s.checkpoint
            }))
    }

    fn record_call(
        &self,
        run_id: &str,
        exec: &str,
        ordinal: u32,
        entry: &TapeEntry,
    ) -> Result<(), StoreError> {
        if let Some(live) = self.live().get_mut(run_id) {
            live.fresh = false;
        }
        self.put(call_key(run_id, exec, ordinal), entry)
    }

    fn calls(&self, run_id: &str, exec: &str) -> Result<Vec<TapeEntry>, StoreError> {
        if self.live().get(run_id).is_some_and(|l| l.fresh) {
            return Ok(Vec::new());
        }
        let mut calls = Vec::new();
        for ordinal in 0.. {
            match self.get::<TapeEntry>(call_key(run_id, exec, ordinal))? {
                Some((entry, _)) => calls.push(entry),
                None => break,
            }
        }
        Ok(calls)
    }
}
