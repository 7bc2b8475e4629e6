//! The spool of a remote exporter on disk: encoded OTLP batches waiting for delivery, one
//! folder per destination and one per run inside it, bounded in bytes. A batch file is
//! written whole (a temporary file renamed) and deleted only once the collector accepted it;
//! a lock file serialises senders across processes, so a batch is sent by one at a time.

use super::config::OtlpTarget;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Where spools live unless `KETTLE_SPOOL_DIR` says otherwise.
pub const DEFAULT_SPOOL_DIR: &str = ".kettle/spool";
/// Bytes all batches of one destination may take unless `KETTLE_SPOOL_MAX_BYTES` says otherwise.
pub const DEFAULT_SPOOL_MAX_BYTES: u64 = 256 << 20;
const TARGET_FILE: &str = "target.json";
const LOCK_FILE: &str = ".lock";
const BATCH_EXT: &str = "pb";

/// Headers that name a project or workspace, not a credential: kept in the spool so that a
/// later push reaches the same project. Credentials are never written to disk.
pub const ROUTING_HEADERS: &[&str] = &["projectName", "Comet-Workspace", "x-project-name"];

/// What the spool keeps of its destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpoolTarget {
    pub label: String,
    pub endpoint: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// One encoded batch waiting in the spool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub path: PathBuf,
    pub run: String,
    pub spans: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("the spool {dir} is full ({max} bytes, KETTLE_SPOOL_MAX_BYTES)")]
    Full { dir: String, max: u64 },
    #[error("cannot write the spool {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
}

/// The spool of one destination.
#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes of the batches this process believes are on disk (rescanned when full).
    bytes: AtomicU64,
    seq: AtomicU64,
}

impl Spool {
    /// The spool of `target` under `root`; writes its `target.json`.
    pub fn open(root: &Path, target: &OtlpTarget, max_bytes: u64) -> Result<Self, SpoolError> {
        let dir = root.join(folder_name(&target.label, &target.endpoint));
        let io = |source| SpoolError::Io {
            dir: dir.display().to_string(),
            source,
        };
        fs::create_dir_all(&dir).map_err(io)?;
        let kept = SpoolTarget {
            label: target.label.clone(),
            endpoint: target.endpoint.clone(),
            headers: target
                .headers
                .iter()
                .filter(|(k, _)| ROUTING_HEADERS.iter().any(|r| r.eq_ignore_ascii_case(k)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let json = serde_json::to_vec_pretty(&kept).unwrap_or_default();
        write_whole(&dir.join(TARGET_FILE), &json).map_err(io)?;
        Ok(Self::at(dir, max_bytes))
    }

    /// An existing spool folder (for `kettle trace push`).
    pub fn at(dir: PathBuf, max_bytes: u64) -> Self {
        let spool = Self {
            dir,
            max_bytes,
            bytes: AtomicU64::new(0),
            seq: AtomicU64::new(0),
        };
        spool.bytes.store(spool.size(), Ordering::Relaxed);
        spool
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The folder where the batches of `run` wait.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        self.dir.join(safe(run))
    }

    /// The destination recorded in the folder.
    pub fn target(&self) -> Option<SpoolTarget> {
        let text = fs::read(self.dir.join(TARGET_FILE)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Stores one encoded batch of `spans` spans of `run`.
    pub fn write(&self, run: &str, spans: u64, bytes: &[u8]) -> Result<Batch, SpoolError> {
        let len = bytes.len() as u64;
        if self.bytes.load(Ordering::Relaxed) + len > self.max_bytes {
            // Another process may have delivered since: look again before refusing.
            self.bytes.store(self.size(), Ordering::Relaxed);
            if self.bytes.load(Ordering::Relaxed) + len > self.max_bytes {
                return Err(SpoolError::Full {
                    dir: self.dir.display().to_string(),
                    max: self.max_bytes,
                });
            }
        }
        let run_dir = self.run_dir(run);
        let io = |source| SpoolError::Io {
            dir: run_dir.display().to_string(),
            source,
        };
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{nanos:020}-{}-{seq:06}-{spans}.{BATCH_EXT}",
            std::process::id()
        );
        let path = run_dir.join(name);
        // A sender removes a run's folder with its last delivered batch. One that does so
        // while the folder is being made (`create_dir_all` then says it exists, but it does not)
        // or before our file is in it would have the batch lost: the folder is made again.
        // Once our file is in it, it stays.
        let mut attempts = 0;
        loop {
            let written = fs::create_dir_all(&run_dir).and_then(|()| write_whole(&path, bytes));
            match written {
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::NotFound | std::io::ErrorKind::AlreadyExists
                    ) && attempts < 100 =>
                {
                    attempts += 1;
                }
                written => break written.map_err(io)?,
            }
        }
        self.bytes.fetch_add(len, Ordering::Relaxed);
        Ok(Batch {
            path,
            run: run.to_string(),
            spans,
        })
    }

    /// Removes a delivered batch; false when it was already gone (another sender took it).
    pub fn remove(&self, batch: &Batch) -> bool {
        let len = fs::metadata(&batch.path).map_or(0, |m| m.len());
        let removed = fs::remove_file(&batch.path).is_ok();
        if removed {
            let _ = self
                .bytes
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                    Some(b.saturating_sub(len))
                });
            // The run's folder goes with its last batch.
            if let Some(parent) = batch.path.parent() {
                let _ = fs::remove_dir(parent);
            }
        }
        removed
    }

    /// Batches waiting, oldest first; only those of `runs` when it is not empty.
    pub fn pending(&self, runs: &[String]) -> Vec<Batch> {
        let mut batches = Vec::new();
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return batches;
        };
        for entry in entries.filter_map(Result::ok) {
            let run = entry.file_name().to_string_lossy().into_owned();
            if !entry.path().is_dir() || (!runs.is_empty() && !runs.iter().any(|r| safe(r) == run))
            {
                continue;
            }
            let Ok(files) = fs::read_dir(entry.path()) else {
                continue;
            };
            for file in files.filter_map(Result::ok) {
                let path = file.path();
                if path.extension().is_some_and(|e| e == BATCH_EXT)
                    && let Some(spans) = spans_of(&path)
                {
                    batches.push(Batch {
                        path,
                        run: run.clone(),
                        spans,
                    });
                }
            }
        }
        batches.sort_by(|a, b| a.path.file_name().cmp(&b.path.file_name()));
        batches
    }

    /// Holds the spool's lock (across processes) until dropped; waits at most until `deadline`.
    pub fn lock(&self, deadline: Option<Instant>) -> Option<File> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join(LOCK_FILE))
            .ok()?;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(file),
                Err(fs::TryLockError::WouldBlock) => {}
                Err(fs::TryLockError::Error(_)) => return None,
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn size(&self) -> u64 {
        self.pending(&[])
            .iter()
            .filter_map(|b| fs::metadata(&b.path).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// The spool folders under `root`.
pub fn spools(root: &Path, max_bytes: u64) -> Vec<Spool> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join(TARGET_FILE).is_file())
        .collect();
    dirs.sort();
    dirs.into_iter().map(|d| Spool::at(d, max_bytes)).collect()
}

/// `otlp-1a2b3c4d5e6f7a8b`: the label and a hash of the endpoint (FNV-1a, stable across builds).
fn folder_name(label: &str, endpoint: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in endpoint.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}-{hash:016x}", safe(label))
}

/// A name safe as one path component.
fn safe(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    match cleaned.as_str() {
        "" | "." | ".." => "_".into(),
        _ => cleaned,
    }
}

/// The span count in a batch file's name (`…-{spans}.pb`).
fn spans_of(path: &Path) -> Option<u64> {
    path.file_stem()?.to_str()?.rsplit('-').next()?.parse().ok()
}

fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(bytes)?;
    fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> OtlpTarget {
        let mut headers = BTreeMap::new();
        headers.insert("Authorization".into(), "secret".into());
        headers.insert("projectName".into(), "p".into());
        OtlpTarget {
            label: "otlp".into(),
            endpoint: "http://127.0.0.1:1/v1/traces".into(),
            headers,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn batches_are_listed_oldest_first_by_run_and_removed_once() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::open(root.path(), &target(), 1 << 20).unwrap();
        let a = spool.write("run-a", 3, b"aaa").unwrap();
        let b = spool.write("run-b", 2, b"bb").unwrap();
        assert_eq!(spool.pending(&[]), vec![a.clone(), b.clone()]);
        assert_eq!(spool.pending(&["run-b".into()]), vec![b.clone()]);
        assert!(spool.remove(&a));
        assert!(!spool.remove(&a), "a second remove finds nothing");
        assert!(!spool.run_dir("run-a").exists());
        let kept = spool.target().unwrap();
        assert_eq!(kept.headers.len(), 1, "no credential on disk: {kept:?}");
        assert_eq!(spools(root.path(), 1 << 20).len(), 1);
    }

    /// A sender removing a run's last delivered batch also removes the run's folder; a writer
    /// adding the run's next batch at that moment must not lose it.
    #[test]
    fn a_batch_written_while_the_runs_folder_goes_is_kept() {
        let root = tempfile::tempdir().unwrap();
        let spool = std::sync::Arc::new(Spool::open(root.path(), &target(), 1 << 30).unwrap());
        let writes = 5000;
        let remover = {
            let spool = spool.clone();
            std::thread::spawn(move || {
                let mut removed = 0;
                while removed < writes {
                    for batch in spool.pending(&[]) {
                        if spool.remove(&batch) {
                            removed += 1;
                        }
                    }
                }
            })
        };
        for _ in 0..writes {
            spool
                .write("r", 1, b"span")
                .expect("written whatever the sender removes");
        }
        remover.join().unwrap();
    }

    #[test]
    fn a_full_spool_refuses_a_batch() {
        let root = tempfile::tempdir().unwrap();
        let spool = Spool::open(root.path(), &target(), 10).unwrap();
        spool.write("r", 1, &[0; 8]).unwrap();
        assert!(matches!(
            spool.write("r", 1, &[0; 8]),
            Err(SpoolError::Full { .. })
        ));
    }
}
