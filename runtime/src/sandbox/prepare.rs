//! Turning a component file into something ready to instantiate: compile (or load from the
//! cache), link against the host's imports, and keep the `InstancePre`.

use super::cache::{CompileCache, LoadOutcome};
use super::engine::{SandboxConfig, new_engine};
use super::execute::{NodeFailure, NodeInvocation, NodeOutput};
use super::host::NodeHost;
use super::precompiled::{Precompiled, PrecompiledComponent, PrecompiledSettings};
use super::slots::{ExecutionSlots, PoolShape};
use crate::capabilities;
use crate::capabilities::bindings::NodePre;
use once_cell::sync::OnceCell;
use std::path::{Path, PathBuf};
use wasmtime::Engine;
use wasmtime::component::Linker;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start the WebAssembly engine: {0}")]
    Engine(String),
    #[error("cannot read component {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} is not a valid component: {message}", path.display())]
    Compile { path: PathBuf, message: String },
    #[error("{} does not fit the kettle:node world: {message}\n  hint: build the node against wit/ of this Kettle (kettle-guest for Rust)", path.display())]
    Link { path: PathBuf, message: String },
    #[error("cannot load the precompiled {} (compiled from {}): {message}\n  hint: precompile again: `{command}`", cwasm.display(), path.display())]
    Precompiled {
        path: PathBuf,
        cwasm: PathBuf,
        message: String,
        command: String,
    },
    #[error("this kettle cannot compile {}: it is a runtime-only build, without Cranelift, which runs precompiled components only", path.display())]
    NoCompiler { path: PathBuf },
}

/// A component ready for fresh instances.
pub struct PreparedComponent {
    pub path: PathBuf,
    pub load: LoadOutcome,
    /// What one instance takes from the pool.
    pub shape: PoolShape,
    pre: NodePre<NodeHost>,
}

/// The engine, the linker with every host import, and the compile cache.
pub struct Sandbox {
    config: SandboxConfig,
    /// Created by the first component prepared (or by [`Sandbox::new`]): an agent without
    /// components never reserves the instance pool, which is most of a short run's start-up.
    started: OnceCell<Started>,
    cache: CompileCache,
    precompiled: PrecompiledSettings,
    pub(super) slots: ExecutionSlots,
}

/// The engine and the linker with every host import.
struct Started {
    engine: Engine,
    linker: Linker<NodeHost>,
}

impl PreparedComponent {
    pub(super) fn pre(&self) -> &NodePre<NodeHost> {
        &self.pre
    }

    pub(super) fn engine(&self) -> &Engine {
        self.pre.instance_pre().engine()
    }
}

impl Started {
    fn new(config: &SandboxConfig) -> Result<Self, SandboxError> {
        let engine = new_engine(config).map_err(|e| SandboxError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        let link = |e: wasmtime::Error| SandboxError::Engine(format!("{e:#}"));
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(link)?;
        super::fs_guard::link(&mut linker).map_err(link)?;
        // wasi:http is always linked, so that components importing it load; every request is
        // checked against the node's permissions.http, which is empty unless granted.
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker).map_err(link)?;
        capabilities::link(&mut linker).map_err(link)?;
        start_epoch_ticker(&engine);
        Ok(Self { engine, linker })
    }
}

impl Sandbox {
    /// A sandbox with its engine started: a server's first request does not pay for it, and a
    /// machine that cannot start it is told at once.
    pub fn new(config: &SandboxConfig, cache: CompileCache) -> Result<Self, SandboxError> {
        let sandbox = Self::lazy(config, cache);
        sandbox.started()?;
        Ok(sandbox)
    }

    /// A sandbox whose engine starts with the first component prepared, for a single run
    /// (`kettle run`), whose agent may have none.
    pub fn lazy(config: &SandboxConfig, cache: CompileCache) -> Self {
        Self {
            config: config.clone(),
            started: OnceCell::new(),
            cache,
            precompiled: PrecompiledSettings::default(),
            slots: ExecutionSlots::new(config.max_concurrent_instances),
        }
    }

    fn started(&self) -> Result<&Started, SandboxError> {
        self.started.get_or_try_init(|| Started::new(&self.config))
    }

    /// The same sandbox, looking for precompiled components as `settings` say.
    pub fn with_precompiled(mut self, settings: PrecompiledSettings) -> Self {
        self.precompiled = settings;
        self
    }

    pub fn precompiled(&self) -> &PrecompiledSettings {
        &self.precompiled
    }

    /// The engine, started now if no component has started it yet.
    pub fn engine(&self) -> Result<&Engine, SandboxError> {
        Ok(&self.started()?.engine)
    }

    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// Instance-pool slots held by live node instances now (each execution holds its
    /// component's slots from instantiation until its store is dropped), and the pool's size.
    pub fn pool_slots(&self) -> (u32, u32) {
        self.slots.in_use()
    }

    /// Compiles (or loads from the cache) and links the component at `path`.
    pub fn prepare(&self, path: &Path) -> Result<PreparedComponent, SandboxError> {
        self.prepare_using(path, None, "")
    }

    /// Like [`Sandbox::prepare`], but loads the component's compiled form from `precompiled`
    /// when it lists the component (by its SHA-256); `command` precompiles again, for the
    /// message if that file cannot be loaded.
    pub fn prepare_using(
        &self,
        path: &Path,
        precompiled: Option<&Precompiled>,
        command: &str,
    ) -> Result<PreparedComponent, SandboxError> {
        let wasm = std::fs::read(path).map_err(|source| SandboxError::Read {
            path: path.into(),
            source,
        })?;
        if let Some(found) =
            precompiled.and_then(|p| p.by_sha256(&super::precompiled::component_sha256(&wasm)))
        {
            return self.prepare_precompiled(path, &found, command);
        }
        let (component, load) = self.compile(path, &wasm)?;
        let link = |e: wasmtime::Error| SandboxError::Link {
            path: path.into(),
            message: format!("{e:#}"),
        };
        let linker = &self.started()?.linker;
        let pre = NodePre::new(linker.instantiate_pre(&component).map_err(link)?).map_err(link)?;
        // wasmtime has just parsed it, so this cannot fail for a component that got here.
        let shape = PoolShape::of(&wasm).map_err(|e| SandboxError::Compile {
            path: path.into(),
            message: e.to_string(),
        })?;
        Ok(PreparedComponent {
            path: path.into(),
            load,
            shape,
            pre,
        })
    }

    #[cfg(feature = "compiler")]
    fn compile(
        &self,
        path: &Path,
        wasm: &[u8],
    ) -> Result<(wasmtime::component::Component, LoadOutcome), SandboxError> {
        self.cache
            .load(self.engine()?, wasm)
            .map_err(|e| SandboxError::Compile {
                path: path.into(),
                message: format!("{e:#}"),
            })
    }

    #[cfg(not(feature = "compiler"))]
    fn compile(
        &self,
        path: &Path,
        _wasm: &[u8],
    ) -> Result<(wasmtime::component::Component, LoadOutcome), SandboxError> {
        Err(SandboxError::NoCompiler { path: path.into() })
    }

    /// Loads and links the compiled form `found` of the component `path` names (which need
    /// not exist here); `command` precompiles again, for the message when it cannot load.
    pub fn prepare_precompiled(
        &self,
        path: &Path,
        found: &PrecompiledComponent,
        command: &str,
    ) -> Result<PreparedComponent, SandboxError> {
        let started = std::time::Instant::now();
        let failed = |e: wasmtime::Error| SandboxError::Precompiled {
            path: path.into(),
            cwasm: found.cwasm.clone(),
            message: format!("{e:#}"),
            command: command.to_string(),
        };
        // SAFETY: deserializing trusts the file to be wasmtime's own output: it is read from
        // the manifest's folder, which the operator chose and trusts like the `kettle` binary
        // itself (README, "Edge"); wasmtime still checks its header, version and settings.
        let ready = self.started()?;
        let component = unsafe {
            wasmtime::component::Component::deserialize_file(&ready.engine, &found.cwasm)
        }
        .map_err(failed)?;
        let load = LoadOutcome::Precompiled {
            took: started.elapsed(),
        };
        let link = |e: wasmtime::Error| SandboxError::Link {
            path: path.into(),
            message: format!("{e:#}"),
        };
        let pre =
            NodePre::new(ready.linker.instantiate_pre(&component).map_err(link)?).map_err(link)?;
        Ok(PreparedComponent {
            path: path.into(),
            load,
            shape: found.shape,
            pre,
        })
    }

    /// Runs one execution of `component` in a fresh instance, once the pool has room for it
    /// (the wait is not part of the node's time limit).
    pub async fn execute(
        &self,
        component: &PreparedComponent,
        invocation: NodeInvocation,
    ) -> Result<NodeOutput, NodeFailure> {
        let _slots = self.slots.acquire(component.shape).await;
        super::execute::execute(component.engine(), &component.pre, invocation).await
    }
}

/// Advances the engine's epoch every [`EPOCH_TICK`] for as long as the engine lives: running
/// guest code yields to the async runtime at each tick (see `execute`).
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    let spawned = std::thread::Builder::new()
        .name("kettle-epoch".into())
        .spawn(move || {
            loop {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        });
    if let Err(error) = spawned {
        tracing::warn!(%error, "cannot start the epoch thread; node time limits only apply at host calls");
    }
}

/// How often running guest code yields.
pub const EPOCH_TICK: std::time::Duration = std::time::Duration::from_millis(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lazy_sandbox_starts_its_engine_when_first_needed() {
        let cache = tempfile::tempdir().expect("cache dir");
        let config = SandboxConfig {
            max_concurrent_instances: 4,
            ..SandboxConfig::default()
        };
        let sandbox = Sandbox::lazy(&config, CompileCache::new(cache.path()));
        assert!(sandbox.started.get().is_none(), "nothing started yet");
        let engine = sandbox.engine().expect("the engine starts").clone();
        assert!(sandbox.started.get().is_some());
        let again = sandbox.engine().expect("started");
        assert!(Engine::same(&engine, again), "started once");
        let missing = sandbox.prepare(&cache.path().join("none.wasm"));
        assert!(matches!(missing, Err(SandboxError::Read { .. })));
    }
}
