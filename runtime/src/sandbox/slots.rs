//! How much of the instance pool one component takes, and the semaphore that keeps the node
//! executions alive at once within the pool, so that a wide fan-out waits for room instead of
//! failing to instantiate.
//!
//! The pool is sized in slots (see `engine`): each slot holds one component instance with up to
//! [`CORE_INSTANCES_PER_SLOT`] core instances, [`MEMORIES_PER_SLOT`] memories and
//! [`TABLES_PER_SLOT`] tables. A small Rust node takes one slot; a Python node, made of a dozen
//! core modules, takes more.

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use wasmparser::{Instance, Parser, Payload};

pub const CORE_INSTANCES_PER_SLOT: u32 = 8;
pub const MEMORIES_PER_SLOT: u32 = 2;
pub const TABLES_PER_SLOT: u32 = 4;

/// What instantiating a component takes from the pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolShape {
    pub core_instances: u32,
    pub memories: u32,
    pub tables: u32,
}

impl PoolShape {
    /// Counts the core instances a component creates and the memories and tables its core
    /// modules define (imported ones are shared, not allocated).
    pub fn of(component: &[u8]) -> Result<Self, wasmparser::BinaryReaderError> {
        let mut shape = Self::default();
        for payload in Parser::new(0).parse_all(component) {
            match payload? {
                Payload::InstanceSection(section) => {
                    for instance in section {
                        if matches!(instance?, Instance::Instantiate { .. }) {
                            shape.core_instances += 1;
                        }
                    }
                }
                Payload::MemorySection(section) => shape.memories += section.count(),
                Payload::TableSection(section) => shape.tables += section.count(),
                _ => {}
            }
        }
        Ok(shape)
    }

    /// Pool slots one instance of this shape needs.
    pub fn slots(self) -> u32 {
        [
            self.core_instances.div_ceil(CORE_INSTANCES_PER_SLOT),
            self.memories.div_ceil(MEMORIES_PER_SLOT),
            self.tables.div_ceil(TABLES_PER_SLOT),
        ]
        .into_iter()
        .max()
        .unwrap_or(1)
        .max(1)
    }
}

/// The pool's slots, handed to executions while their instance lives.
pub struct ExecutionSlots {
    total: u32,
    free: Arc<Semaphore>,
}

impl ExecutionSlots {
    pub fn new(total: u32) -> Self {
        let total = total.max(1);
        Self {
            total,
            free: Arc::new(Semaphore::new(total as usize)),
        }
    }

    /// Slots held by live instances now, and the pool's size.
    pub fn in_use(&self) -> (u32, u32) {
        let free = u32::try_from(self.free.available_permits()).unwrap_or(self.total);
        (self.total.saturating_sub(free), self.total)
    }

    /// Waits until `shape` fits; a component larger than the whole pool waits for all of it.
    pub async fn acquire(&self, shape: PoolShape) -> Option<OwnedSemaphorePermit> {
        let wanted = shape.slots().min(self.total);
        // The semaphore is never closed; a closed one would only lift the limit.
        self.free.clone().acquire_many_owned(wanted).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_follow_the_scarcest_resource() {
        let small = PoolShape {
            core_instances: 3,
            memories: 1,
            tables: 1,
        };
        assert_eq!(small.slots(), 1);
        let many_modules = PoolShape {
            core_instances: 20,
            memories: 1,
            tables: 2,
        };
        assert_eq!(many_modules.slots(), 3);
        let many_memories = PoolShape {
            core_instances: 2,
            memories: 7,
            tables: 0,
        };
        assert_eq!(many_memories.slots(), 4);
        assert_eq!(PoolShape::default().slots(), 1);
    }

    #[tokio::test]
    async fn a_component_larger_than_the_pool_still_runs_alone() {
        let slots = ExecutionSlots::new(4);
        let huge = PoolShape {
            core_instances: 1000,
            memories: 1,
            tables: 1,
        };
        let permit = slots.acquire(huge).await;
        assert_eq!(permit.map(|p| p.num_permits()), Some(4));
    }

    #[tokio::test]
    async fn slots_in_use_follow_the_live_instances() {
        let slots = ExecutionSlots::new(10);
        let python = PoolShape {
            core_instances: 20,
            memories: 1,
            tables: 1,
        };
        let small = slots.acquire(PoolShape::default()).await;
        let large = slots.acquire(python).await;
        assert_eq!(slots.in_use(), (4, 10));
        drop(large);
        assert_eq!(slots.in_use(), (1, 10));
        drop(small);
        assert_eq!(slots.in_use(), (0, 10));
    }
}
