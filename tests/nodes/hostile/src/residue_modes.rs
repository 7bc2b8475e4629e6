//! Misbehaviours aimed at what one execution leaves in its pool slot for the next: `scatter`
//! grows linear memory and writes a mark on every other host page (a dirty set of many
//! disjoint regions, as an interpreter's heap makes), `find-scattered` grows memory as far and
//! counts the marks it can still read. The mark of a page is computed from `seed` and the
//! page's address, never stored whole, so the finder cannot find its own copy of it. Each
//! answers under `config.key` (default: its mode).

use kettle_guest::bindings::kettle::node::types::NodeError;
use serde_json::{Value, json};

/// The modes this module runs.
pub const MODES: &[&str] = &["scatter", "find-scattered"];

const HOST_PAGE: usize = 4096;
const WASM_PAGE: usize = 65536;

/// Runs one of [`MODES`]: `pages` is how many 64 KiB pages to grow by, `seed` picks the marks.
pub fn run(mode: &str, config: &Value) -> Result<String, NodeError> {
    let key = config.get("key").and_then(Value::as_str).unwrap_or(mode);
    marks(mode, config).map(|answer| json!({ key: answer }).to_string())
}

fn marks(mode: &str, config: &Value) -> Result<Value, NodeError> {
    let count =
        |key: &str, default: u64| config.get(key).and_then(Value::as_u64).unwrap_or(default);
    let (pages, seed) = (count("pages", 64) as usize, count("seed", 7));
    let Some(old) = grow(pages) else {
        return Err(NodeError::Failed(format!(
            "memory.grow by {pages} pages refused"
        )));
    };
    match mode {
        "scatter" => {
            let (start, end) = (old * WASM_PAGE, (old + pages) * WASM_PAGE);
            let mut written = 0u64;
            for address in (start..end).step_by(2 * HOST_PAGE) {
                // SAFETY: freshly grown memory that nothing else in this instance uses.
                unsafe { core::ptr::write_volatile(address as *mut u64, mark(seed, address)) };
                written += 1;
            }
            Ok(json!({ "written": written, "last_address": end - 2 * HOST_PAGE }))
        }
        _ => {
            // Every host page of the whole memory but the first, read where `scatter` writes.
            let end = (old + pages) * WASM_PAGE;
            let (mut found, mut scanned) = (0u64, 0u64);
            for address in (HOST_PAGE..end).step_by(HOST_PAGE) {
                // SAFETY: inside linear memory, which is readable everywhere below its size.
                let word = unsafe { core::ptr::read_volatile(address as *const u64) };
                if word == mark(seed, address) {
                    found += 1;
                }
                scanned += 1;
            }
            Ok(json!({ "found": found, "scanned": scanned, "last_address": end - HOST_PAGE }))
        }
    }
}

/// The mark of the page at `address`: never zero, and never what a fresh page holds.
fn mark(seed: u64, address: usize) -> u64 {
    (seed ^ (address as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)).rotate_left(17) | 1
}

/// Raw memory.grow by `pages`; the old size in pages, or None when the host refuses.
#[cfg(target_arch = "wasm32")]
fn grow(pages: usize) -> Option<usize> {
    let old = core::arch::wasm32::memory_grow(0, pages);
    (old != usize::MAX).then_some(old)
}

#[cfg(not(target_arch = "wasm32"))]
fn grow(_pages: usize) -> Option<usize> {
    unreachable!("the hostile node only runs as a WebAssembly component")
}
