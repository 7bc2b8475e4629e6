//! Where node components run: the wasmtime engine, the on-disk compile cache, `InstancePre`s,
//! per-node stores with their limits and (deny-by-default) WASI context.

mod cache;
mod engine;
mod execute;
mod fs_guard;
mod host;
mod http;
mod limits;
mod output;
mod permissions;
mod precompiled;
mod prepare;
mod session;
mod slots;

pub use crate::spec::{NodeLimits, raise_hint};
pub use cache::{CompileCache, LoadOutcome};
#[cfg(feature = "compiler")]
pub use engine::precompile_engine;
pub use engine::{SandboxConfig, engine_config, new_engine};
pub use execute::{NodeFailure, NodeInvocation, NodeOutput};
pub use host::NodeHost;
pub use permissions::{FsGrant, Grants, HostPattern};
pub use precompiled::{
    HAS_COMPILER, MANIFEST_FILE, MANIFEST_FORMAT, Manifest, ManifestEntry, PoolRecord, Precompiled,
    PrecompiledComponent, PrecompiledError, PrecompiledSettings, WASMTIME_VERSION,
    component_sha256, default_dir, engine_fingerprint, host_target,
};
pub use prepare::{PreparedComponent, Sandbox, SandboxError};
pub use session::RunInstances;
pub use slots::PoolShape;
