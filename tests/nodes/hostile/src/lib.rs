//! A hostile node: `config.mode` picks the misbehaviour. It implements the WIT export by hand
//! (not through `export_node!`) so that it can return any text, valid JSON or not.

mod escape_modes;
mod http_get;
mod limit_modes;
mod residue_modes;
mod trace_modes;

use kettle_guest::bindings::Guest;
use kettle_guest::bindings::kettle::node::types::{NodeContext, NodeError};
use kettle_guest::llm::{self, Request};
use kettle_guest::log;
use serde_json::{Value, json};
use std::hint::black_box;

struct Hostile;

impl Guest for Hostile {
    fn run(ctx: NodeContext, _state: String) -> Result<String, NodeError> {
        let config: Value = serde_json::from_str(&ctx.config)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let text = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let failed = |what: String| Err(NodeError::Failed(what));
        match text("mode").as_str() {
            "spin" => {
                let mut i = 0u64;
                loop {
                    i = black_box(i.wrapping_add(1));
                }
            }
            "llm-retry-forever" => loop {
                let _ = llm::call(Request::user("again"));
            },
            "grow-memory" => {
                grow_until_refused();
                std::process::abort()
            }
            "vec-bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(black_box(vec![1u8; 1 << 20]));
                }
            }
            "recurse" => Ok(json!({ "depth": depth(0) }).to_string()),
            "stack-address" => {
                let local = black_box([0u8; 64]);
                let address = black_box(&local) as *const [u8; 64] as usize;
                Ok(json!({ "stack_address": address }).to_string())
            }
            "big-output" => {
                let size = config
                    .get("bytes")
                    .and_then(Value::as_u64)
                    .unwrap_or(100 << 20) as usize;
                let mut out = String::with_capacity(size + 16);
                out.push_str("{\"big\":\"");
                out.extend(std::iter::repeat_n('x', size));
                out.push_str("\"}");
                Ok(out)
            }
            "log-flood" => {
                for i in 0..1_000_000 {
                    log::info(&format!("line {i}"));
                }
                Ok("{\"logged\":1000000}".into())
            }
            "llm-flood" => {
                let mut answered = 0;
                for _ in 0..100_000 {
                    if llm::call(Request::user("one more")).is_ok() {
                        answered += 1;
                    }
                }
                Ok(json!({ "answered": answered }).to_string())
            }
            "read" => {
                let path = text("path");
                match std::fs::read_to_string(&path) {
                    Ok(content) => Ok(json!({ "content": content }).to_string()),
                    Err(e) => failed(format!("cannot read {path}: {e}")),
                }
            }
            "write" => {
                let path = text("path");
                match std::fs::write(&path, "written by a node") {
                    Ok(()) => Ok(json!({ "written": path }).to_string()),
                    Err(e) => failed(format!("cannot write {path}: {e}")),
                }
            }
            "http-get" => match http_get::get(&text("url"), 3) {
                Ok(body) => Ok(json!({ "body": body }).to_string()),
                Err(e) => failed(e),
            },
            "env" => {
                let vars: serde_json::Map<String, Value> = std::env::vars()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect();
                Ok(json!({ "env": vars }).to_string())
            }
            "panic" => panic!("the hostile node panics on purpose"),
            "crash-first" if ctx.attempt == 1 => panic!("first attempt crashes"),
            "crash-first" => Ok(json!({ "succeeded_at_attempt": ctx.attempt }).to_string()),
            "invalid-json" => Ok("{\"not\": json".into()),
            "non-object" => Ok("[1, 2, 3]".into()),
            mode if limit_modes::MODES.contains(&mode) => limit_modes::run(mode, &config),
            mode if residue_modes::MODES.contains(&mode) => residue_modes::run(mode, &config),
            other => escape_modes::run(other, &config)
                .or_else(|| trace_modes::run(other, &config))
                .unwrap_or_else(|| Err(NodeError::InvalidInput(format!("unknown mode `{other}`")))),
        }
    }
}

/// Raw memory.grow, one 64 KiB page at a time, until the host says no.
#[cfg(target_arch = "wasm32")]
fn grow_until_refused() {
    while core::arch::wasm32::memory_grow(0, 1) != usize::MAX {}
}

#[cfg(not(target_arch = "wasm32"))]
fn grow_until_refused() {
    unreachable!("the hostile node only runs as a WebAssembly component")
}

/// Recursion that keeps everything in wasm locals, so the wasm call stack is what runs out.
fn depth(n: u64) -> u64 {
    if black_box(n) == u64::MAX {
        0
    } else {
        1 + depth(n + 1)
    }
}

kettle_guest::bindings::__export_world_node!(Hostile);
