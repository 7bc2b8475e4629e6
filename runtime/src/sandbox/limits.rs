//! The resource limiter that enforces a node's memory cap inside its store: the cap holds for
//! all the instance's linear memories and tables together (a component of many core modules
//! has one memory each), not for each one. The limits themselves are resolved in
//! `spec::NodeLimits`.

/// Table elements one table may grow to: generous for real programs, small next to memory.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Host memory one table element takes (a pointer), as counted against the memory cap.
const TABLE_ELEMENT_BYTES: usize = 8;

/// Enforces the memory cap and remembers whether it refused a growth, so that the guest's
/// resulting crash is reported as the limit it is.
#[derive(Debug)]
pub struct NodeLimiter {
    memory_bytes: usize,
    /// Bytes of every memory and table of the store, as granted so far.
    used: usize,
    /// The last growth granted, taken back if it then failed.
    pending: usize,
    pub(crate) memory_refused: bool,
}

impl NodeLimiter {
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            used: 0,
            pending: 0,
            memory_refused: false,
        }
    }

    /// Grants a growth from `current` to `desired` bytes if the total stays within the cap.
    fn grow(&mut self, current: usize, desired: usize) -> bool {
        let growth = desired.saturating_sub(current);
        match self.used.checked_add(growth) {
            Some(total) if total <= self.memory_bytes => {
                self.used = total;
                self.pending = growth;
                true
            }
            _ => {
                self.memory_refused = true;
                false
            }
        }
    }

    fn grow_failed(&mut self) {
        self.used -= std::mem::take(&mut self.pending);
    }
}

impl wasmtime::ResourceLimiter for NodeLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(current, desired))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        Ok(self.grow(
            current.saturating_mul(TABLE_ELEMENT_BYTES),
            desired.saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    const MIB: usize = 1 << 20;

    #[test]
    fn the_cap_holds_for_all_memories_together() {
        let mut limiter = NodeLimiter::new(64 * MIB);
        // Eight memories created at 1 MiB each, then grown one after the other.
        for _ in 0..8 {
            assert!(limiter.memory_growing(0, MIB, None).unwrap());
        }
        let grown = (0..8)
            .filter(|_| limiter.memory_growing(MIB, 16 * MIB, None).unwrap())
            .count();
        assert_eq!(
            grown, 3,
            "8 MiB + 3 x 15 MiB fit in 64 MiB; a fourth does not"
        );
        assert!(limiter.memory_refused);
    }

    #[test]
    fn a_failed_growth_is_taken_back_and_tables_count() {
        let mut limiter = NodeLimiter::new(MIB);
        assert!(limiter.memory_growing(0, MIB / 2, None).unwrap());
        limiter
            .memory_grow_failed(wasmtime::Error::msg("no room"))
            .unwrap();
        assert!(limiter.memory_growing(0, MIB, None).unwrap());
        assert!(
            !limiter.table_growing(0, 1, None).unwrap(),
            "a table's elements take memory too"
        );
    }
}
