//! The server's book of runs: the concurrency bound, the drain on shutdown, the counts said at
//! exit, and recent runs for `GET /v1/runs`.

use crate::ServeSummary;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, watch};

/// How many finished runs `GET /v1/runs/{id}` remembers.
const RECENT_RUNS: usize = 1000;

/// A run as `GET /v1/runs/{id}` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub agent: String,
    /// `running`, `ok`, `failed`, `interrupted` (stopped at an interrupt) or `cancelled`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state: Option<Map<String, Value>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u128>,
    /// Where the run's trace was written (the file exporter), for `GET /v1/runs/{id}/trace`.
    #[serde(skip)]
    pub trace_file: Option<std::path::PathBuf>,
}

/// Why a request for a run was not accepted.
pub enum Refusal {
    Busy,
    Draining,
}

pub struct RunBook {
    slots: Arc<Semaphore>,
    draining: AtomicBool,
    cancel_all: watch::Sender<bool>,
    idle: Notify,
    recent: Mutex<Recent>,
    accepted: AtomicU64,
    finished: AtomicU64,
    cancelled: AtomicU64,
}

#[derive(Default)]
struct Recent {
    runs: HashMap<String, RunRecord>,
    order: VecDeque<String>,
}

/// An accepted run's place: its slot, released (and the run counted) when dropped.
pub struct Ticket {
    book: Arc<RunBook>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.book.in_flight() == 0 {
            self.book.idle.notify_waiters();
        }
    }
}

impl RunBook {
    pub fn new(max_concurrent_runs: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max_concurrent_runs)),
            draining: AtomicBool::new(false),
            cancel_all: watch::Sender::new(false),
            idle: Notify::new(),
            recent: Mutex::new(Recent::default()),
            accepted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            cancelled: AtomicU64::new(0),
        })
    }

    /// A slot for a new run, or why there is none.
    pub fn admit(self: &Arc<Self>) -> Result<Ticket, Refusal> {
        if self.draining.load(Ordering::SeqCst) {
            return Err(Refusal::Draining);
        }
        let slot = self
            .slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| Refusal::Busy)?;
        self.accepted.fetch_add(1, Ordering::SeqCst);
        Ok(Ticket {
            book: self.clone(),
            _slot: slot,
        })
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// Resolves when the server cancels every run (the grace period after shutdown is over).
    pub fn cancelled_by_shutdown(&self) -> watch::Receiver<bool> {
        self.cancel_all.subscribe()
    }

    /// Stops admitting runs; after `grace`, cancels those still running.
    pub fn start_drain(self: &Arc<Self>, grace: Duration) {
        self.draining.store(true, Ordering::SeqCst);
        let book = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            book.cancel_all.send_replace(true);
        });
    }

    /// Runs in flight.
    pub fn in_flight(&self) -> usize {
        let total = self.accepted.load(Ordering::SeqCst);
        let done = self.finished.load(Ordering::SeqCst) + self.cancelled.load(Ordering::SeqCst);
        total.saturating_sub(done) as usize
    }

    /// Waits until no run is in flight.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Records a run's progress or end; a finished or cancelled run is counted once.
    pub fn record(&self, record: RunRecord) {
        match record.status {
            "ok" | "failed" | "interrupted" => {
                self.finished.fetch_add(1, Ordering::SeqCst);
            }
            "cancelled" => {
                self.cancelled.fetch_add(1, Ordering::SeqCst);
            }
            _ => {}
        }
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if !recent.runs.contains_key(&record.run_id) {
            recent.order.push_back(record.run_id.clone());
            while recent.order.len() > RECENT_RUNS {
                if let Some(old) = recent.order.pop_front() {
                    recent.runs.remove(&old);
                }
            }
        }
        recent.runs.insert(record.run_id.clone(), record);
    }

    pub fn get(&self, run_id: &str) -> Option<RunRecord> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent.runs.get(run_id).cloned()
    }

    /// Recent runs, newest first, with `status` if given; without their states.
    pub fn list(&self, status: Option<&str>) -> Vec<RunRecord> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        recent
            .order
            .iter()
            .rev()
            .filter_map(|id| recent.runs.get(id))
            .filter(|r| status.is_none_or(|s| r.status == s))
            .map(|r| RunRecord {
                state: None,
                ..r.clone()
            })
            .collect()
    }

    pub fn summary(&self) -> ServeSummary {
        ServeSummary {
            accepted: self.accepted.load(Ordering::SeqCst),
            finished: self.finished.load(Ordering::SeqCst),
            cancelled: self.cancelled.load(Ordering::SeqCst),
        }
    }
}
