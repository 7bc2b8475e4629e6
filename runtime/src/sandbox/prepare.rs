//! Turning a component file into something ready to instantiate: compile (or load from the
//! cache), link against the host's imports, and keep the `InstancePre`.

use super::cache::{CompileCache, LoadOutcome};
use super::engine::{SandboxConfig, new_engine};
use super::execute::{NodeFailure, NodeInvocation, NodeOutput};
use super::host::NodeHost;
use super::slots::{ExecutionSlots, PoolShape};
use crate::capabilities;
use crate::capabilities::bindings::NodePre;
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
    engine: Engine,
    linker: Linker<NodeHost>,
    cache: CompileCache,
    pub(super) slots: ExecutionSlots,
}

impl PreparedComponent {
    pub(super) fn pre(&self) -> &NodePre<NodeHost> {
        &self.pre
    }
}

impl Sandbox {
    pub fn new(config: &SandboxConfig, cache: CompileCache) -> Result<Self, SandboxError> {
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
        Ok(Self {
            engine,
            linker,
            cache,
            slots: ExecutionSlots::new(config.max_concurrent_instances),
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cache(&self) -> &CompileCache {
        &self.cache
    }

    /// Compiles (or loads from the cache) and links the component at `path`.
    pub fn prepare(&self, path: &Path) -> Result<PreparedComponent, SandboxError> {
        let wasm = std::fs::read(path).map_err(|source| SandboxError::Read {
            path: path.into(),
            source,
        })?;
        let (component, load) =
            self.cache
                .load(&self.engine, &wasm)
                .map_err(|e| SandboxError::Compile {
                    path: path.into(),
                    message: format!("{e:#}"),
                })?;
        let link = |e: wasmtime::Error| SandboxError::Link {
            path: path.into(),
            message: format!("{e:#}"),
        };
        let pre =
            NodePre::new(self.linker.instantiate_pre(&component).map_err(link)?).map_err(link)?;
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

    /// Runs one execution of `component` in a fresh instance, once the pool has room for it
    /// (the wait is not part of the node's time limit).
    pub async fn execute(
        &self,
        component: &PreparedComponent,
        invocation: NodeInvocation,
    ) -> Result<NodeOutput, NodeFailure> {
        let _slots = self.slots.acquire(component.shape).await;
        super::execute::execute(&self.engine, &component.pre, invocation).await
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
