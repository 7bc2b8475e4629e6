//! The wasmtime engine every node runs on: component model, async (a node blocked in a host
//! call suspends on its fiber), and the pooling allocator for cheap fresh instances.

use super::slots::{CORE_INSTANCES_PER_SLOT, MEMORIES_PER_SLOT, TABLES_PER_SLOT};
#[cfg(feature = "compiler")]
use wasmtime::OptLevel;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

const MEMORY_KEPT_RESIDENT: usize = 16 << 20;
const TABLE_KEPT_RESIDENT: usize = 64 << 10;

/// Sizes of the instance pool.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Pool slots: a small node's execution takes one, a node of many core modules (Python)
    /// a few; executions beyond the pool wait for room.
    pub max_concurrent_instances: u32,
    /// Upper bound of one linear memory; per-node limits are enforced below it.
    pub max_memory_bytes: usize,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        Self {
            max_concurrent_instances: 1000,
            max_memory_bytes: 4 << 30,
        }
    }
}

/// An engine with the pooling allocator; falls back to on-demand allocation (with a warning)
/// where the machine refuses the pool's address-space reservation.
pub fn new_engine(config: &SandboxConfig) -> wasmtime::Result<Engine> {
    match Engine::new(&engine_config(config)) {
        Ok(engine) => Ok(engine),
        Err(error) => {
            tracing::warn!(%error, "pooling allocator unavailable; using on-demand instance allocation");
            Engine::new(&base_config())
        }
    }
}

/// The exact wasmtime configuration of Kettle's engine (pooling allocator included), shared
/// with the `bare_wasmtime` benchmark so that its floor is measured on the same engine.
pub fn engine_config(config: &SandboxConfig) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    let instances = config.max_concurrent_instances;
    pool.total_component_instances(instances)
        .total_stacks(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_SLOT))
        .total_memories(instances.saturating_mul(MEMORIES_PER_SLOT))
        .total_tables(instances.saturating_mul(TABLES_PER_SLOT))
        .max_core_instances_per_component(64)
        .max_memories_per_component(8)
        .max_tables_per_component(16)
        .max_memory_size(config.max_memory_bytes)
        .table_elements(100_000)
        .max_component_instance_size(1 << 20)
        .max_core_instance_size(1 << 20)
        // A fresh instance per execution reuses a pool slot. Resetting the pages the last
        // instance dirtied with memset (found by PAGEMAP_SCAN, Linux 6.7+) instead of madvise
        // spares the next one a copy-on-write fault and a TLB shootdown per page; the cost is
        // up to this much memory kept resident per slot used. 16 MiB covers what an
        // interpreter node (Python, JS) dirties; resident memory after a peak of concurrent
        // executions stays at most what that peak used.
        .pagemap_scan(Enabled::Auto)
        .linear_memory_keep_resident(MEMORY_KEPT_RESIDENT)
        .table_keep_resident(TABLE_KEPT_RESIDENT);
    let mut wasm = base_config();
    wasm.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    wasm
}

/// What [`base_config`] and [`engine_config`] set that compiled code depends on, for the
/// precompiled manifest's engine fingerprint: change it with them.
pub const ENGINE_SETTINGS: &str =
    "component-model; opt-level=speed; epoch-interruption; consume-fuel; max-memory=4GiB";

fn base_config() -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    #[cfg(feature = "compiler")]
    config.cranelift_opt_level(OptLevel::Speed);
    // Time limits: guest code yields at every epoch tick so that deadlines can fire.
    config.epoch_interruption(true);
    // Optional deterministic instruction budgets (`limits.fuel`).
    config.consume_fuel(true);
    config
}

/// An engine with Kettle's settings that compiles for `target` (a triple such as
/// `aarch64-unknown-linux-gnu`; this machine's when `None`), for `kettle build --precompile`.
#[cfg(feature = "compiler")]
pub fn precompile_engine(target: Option<&str>) -> wasmtime::Result<Engine> {
    let mut config = engine_config(&SandboxConfig::default());
    if let Some(target) = target {
        config.target(target)?;
    }
    Engine::new(&config)
}
