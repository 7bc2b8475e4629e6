//! The on-disk cache of compiled components: keyed by the component's bytes and the engine's
//! compilation settings, so that a second run deserializes instead of compiling.

use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use wasmtime::Engine;
use wasmtime::component::Component;

/// How a component was obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadOutcome {
    /// Compiled now, and stored for the next runs.
    Compiled { took: Duration },
    /// Deserialized from the cache.
    Cached { took: Duration },
}

/// Compiled components under `{dir}/components/`.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into().join("components"),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The compiled form of `wasm`, from the cache when it is there.
    pub fn load(&self, engine: &Engine, wasm: &[u8]) -> wasmtime::Result<(Component, LoadOutcome)> {
        let started = Instant::now();
        let path = self.dir.join(format!("{}.cwasm", cache_key(engine, wasm)));
        if path.is_file() {
            // SAFETY: the file was written by `Component::serialize` of an engine with the
            // same settings (they are part of its name) into Kettle's own cache folder;
            // wasmtime still checks its header and version before using it.
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(component) => {
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
        }
        Ok((component, LoadOutcome::Compiled { took }))
    }

    fn store(&self, path: &Path, component: &Component) -> anyhow::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let bytes = component.serialize()?;
        // Written aside and renamed, so that a concurrent run never reads half a file.
        let partial = path.with_extension(format!("partial-{}", std::process::id()));
        std::fs::write(&partial, bytes)?;
        std::fs::rename(&partial, path)?;
        Ok(())
    }
}

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
