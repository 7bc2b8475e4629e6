//! The on-disk cache of compiled components: keyed by the component's bytes and the engine's
//! compilation settings, so that a second run deserializes instead of compiling. Its size is
//! bounded: when a new entry takes it over the limit, the least recently used entries go
//! (a load refreshes its entry's modification time), never one this process has loaded.

// Without a compiler (the `runtime-only` build) nothing is compiled, so nothing is cached.
#![cfg_attr(not(feature = "compiler"), allow(dead_code, unused_imports))]

use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache's size limit unless [`MAX_BYTES_VAR`] sets another: 1 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 1 << 30;
/// The environment variable that sets the cache's size limit, in bytes.
pub const MAX_BYTES_VAR: &str = "KETTLE_CACHE_MAX_BYTES";

const ENTRY_EXTENSION: &str = "cwasm";

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOutcome {
    /// Loaded from the files `kettle build --precompile` wrote.
    Precompiled { took: Duration },
    /// Compiled now, and stored for the next runs.
    Compiled { took: Duration },
    /// Deserialized from the cache.
    Cached { took: Duration },
}

/// Compiled components under `{dir}/components/`, at most `max_bytes` of them.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
    max_bytes: u64,
}

impl CompileCache {
    /// The cache under `dir`, limited by [`MAX_BYTES_VAR`] or else to [`DEFAULT_MAX_BYTES`].
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into().join("components"),
            max_bytes: max_bytes_from_env(),
        }
    }

    /// The same cache with another size limit.
    pub fn with_max_bytes(mut self, max_bytes: u64) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The compiled form of `wasm`, from the cache when it is there.
    #[cfg(feature = "compiler")]
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, LoadOutcome)> {
        let started = Instant::now();
        let path = self
            .dir
            .join(format!("{}.{ENTRY_EXTENSION}", cache_key(engine, wasm)));
        mark_in_use(&path);
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same settings (they are part of its name) into Kettle's own cache folder;
            // wasmtime still checks its header and version before using it.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
                    if let Err(error) = touch(&path) {
                        tracing::debug!(path = %path.display(), %error, "cannot mark the compile cache entry as used");
                    }
                    return Ok((
                        component,
                        LoadOutcome::Cached {
                            took: started.elapsed(),
                        },
                    ));
                }
                Err(error) => {
                    tracing::warn!(path = %path.display(), %error, "unusable compile cache entry; compiling again");
                }
            }
        }
        let component = Component::new(engine, wasm)?;
        let took = started.elapsed();
        if let Err(error) = self.store(&path, &component) {
            tracing::warn!(path = %path.display(), %error, "cannot write the compile cache; the next run compiles again");
        } else if let Err(error) = self.evict() {
            tracing::warn!(dir = %self.dir.display(), %error, "cannot trim the compile cache to its size limit");
        }
        Ok((component, LoadOutcome::Compiled { took }))
    }

    #[cfg(feature = "compiler")]
    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component.serialize()?;
        // Written aside and renamed, so that a concurrent run never reads half a file.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }

    /// Removes the least recently used entries until the cache holds at most `max_bytes`,
    /// sparing those this process has loaded.
    fn evict(&self) -> std::io::Result<()> {
        let mut entries = Vec::new();
        let mut total: u64 = 0;
        for entry in std::fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().is_none_or(|e| e != ENTRY_EXTENSION) {
                continue;
            }
            // Another process may have removed it meanwhile.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            total += meta.len();
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            entries.push((used, meta.len(), path));
        }
        if total <= self.max_bytes {
            return Ok(());
        }
        entries.sort();
        let in_use = in_use().lock().unwrap_or_else(PoisonError::into_inner);
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if in_use.contains(&path) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => total -= len,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The limit [`MAX_BYTES_VAR`] sets, else [`DEFAULT_MAX_BYTES`].
fn max_bytes_from_env() -> u64 {
    max_bytes(std::env::var(MAX_BYTES_VAR).ok().as_deref())
}

fn max_bytes(setting: Option<&str>) -> u64 {
    let Some(text) = setting else {
        return DEFAULT_MAX_BYTES;
    };
    text.trim().parse().unwrap_or_else(|_| {
        tracing::warn!(
            value = %text,
            "{MAX_BYTES_VAR} is not a number of bytes; the compile cache keeps its default limit of {DEFAULT_MAX_BYTES}"
        );
        DEFAULT_MAX_BYTES
    })
}

/// The entries this process has loaded or stored: eviction leaves them alone.
fn in_use() -> &'static Mutex<HashSet<PathBuf>> {
    static IN_USE: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    IN_USE.get_or_init(Mutex::default)
}

fn mark_in_use(path: &Path) {
    in_use()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(path.to_path_buf());
}

/// Marks an entry as just used: eviction goes by modification time.
fn touch(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.set_modified(SystemTime::now())
}

#[cfg(feature = "compiler")]
fn cache_key(engine: &Engine, wasm: &[u8]) -> String {
    let mut hasher = DigestHasher(Sha256::new());
    hasher.0.update(wasm);
    hasher.0.update(env!("CARGO_PKG_VERSION").as_bytes());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(hasher.0.finalize())
}

/// Lets `Hash` implementations feed a SHA-256 digest, which is stable across processes.
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().unwrap_or_default())
    }
}

#[cfg(all(test, feature = "compiler"))]
mod tests {
    use super::*;

    /// The smallest valid component: the header alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn entry(dir: &Path, name: &str, len: usize, age_secs: u64) -> PathBuf {
        let path = dir.join(format!("{name}.{ENTRY_EXTENSION}"));
        std::fs::write(&path, vec![0u8; len]).expect("write");
        let when = SystemTime::now() - Duration::from_secs(age_secs);
        std::fs::File::open(&path)
            .and_then(|f| f.set_modified(when))
            .expect("set mtime");
        path
    }

    fn cache_in(root: &Path, max_bytes: u64) -> CompileCache {
        let cache = CompileCache::new(root).with_max_bytes(max_bytes);
        std::fs::create_dir_all(cache.dir()).expect("dir");
        cache
    }

    #[test]
    fn evicts_the_least_recently_used_entries_down_to_the_limit() {
        let root = tempfile::tempdir().expect("tempdir");
        let cache = cache_in(root.path(), 250);
        let oldest = entry(cache.dir(), "a", 100, 300);
        let middle = entry(cache.dir(), "b", 100, 200);
        let newest = entry(cache.dir(), "c", 100, 100);
        let partial = cache.dir().join("d.partial-1");
        std::fs::write(&partial, vec![0u8; 1000]).expect("write");
        cache.evict().expect("evict");
        assert!(!oldest.exists());
        assert!(middle.exists() && newest.exists());
        assert!(partial.exists(), "only entries count and go");

        let within = cache_in(root.path(), 1000);
        within.evict().expect("evict");
        assert!(middle.exists() && newest.exists());
    }

    #[test]
    fn never_evicts_an_entry_this_process_uses() {
        let root = tempfile::tempdir().expect("tempdir");
        let cache = cache_in(root.path(), 100);
        let used = entry(cache.dir(), "used", 100, 300);
        let other = entry(cache.dir(), "other", 100, 100);
        mark_in_use(&used);
        cache.evict().expect("evict");
        assert!(used.exists(), "in use, though least recently used");
        assert!(!other.exists());
    }

    #[test]
    fn a_load_marks_its_entry_used_and_keeps_it_over_a_tiny_limit() {
        let root = tempfile::tempdir().expect("tempdir");
        let engine = Engine::default();
        let cache = CompileCache::new(root.path()).with_max_bytes(0);
        let (_, first) = cache.load(&engine, EMPTY_COMPONENT).expect("compiles");
        assert!(matches!(first, LoadOutcome::Compiled { .. }));
        let path = cache.dir().join(format!(
            "{}.{ENTRY_EXTENSION}",
            cache_key(&engine, EMPTY_COMPONENT)
        ));
        assert!(path.exists(), "in use, so kept over a limit of 0");

        let long_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::open(&path)
            .and_then(|f| f.set_modified(long_ago))
            .expect("set mtime");
        let (_, second) = cache.load(&engine, EMPTY_COMPONENT).expect("loads");
        assert!(matches!(second, LoadOutcome::Cached { .. }));
        let used = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .expect("mtime");
        assert!(
            used > long_ago + Duration::from_secs(3000),
            "touched on load"
        );
    }

    #[test]
    fn the_limit_is_read_from_the_variable_else_the_default() {
        assert_eq!(max_bytes(None), DEFAULT_MAX_BYTES);
        assert_eq!(max_bytes(Some(" 1048576 ")), 1_048_576);
        assert_eq!(max_bytes(Some("1 GiB")), DEFAULT_MAX_BYTES);
    }
}
