//! The resource limiter that enforces a node's memory and table caps inside its store; the
//! limits themselves are resolved in `spec::NodeLimits`.

/// Table elements one table may grow to: generous for real programs, small next to memory.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Enforces the memory cap and remembers whether it refused a growth, so that the guest's
/// resulting crash is reported as the limit it is.
#[derive(Debug)]
pub struct NodeLimiter {
    memory_bytes: usize,
    pub(crate) memory_refused: bool,
}

impl NodeLimiter {
    pub fn new(memory_bytes: usize) -> Self {
        Self {
            memory_bytes,
            memory_refused: false,
        }
    }
}

impl wasmtime::ResourceLimiter for NodeLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.memory_refused = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
