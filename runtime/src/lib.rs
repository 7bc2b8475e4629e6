//! Kettle runs LLM agent graphs described in YAML whose nodes are WebAssembly components,
//! sandboxed by wasmtime, with a host-owned OpenTelemetry trace of every node and LLM call.
//!
//! The layers, bottom first; each uses only those below it (checked by a test, see
//! `layering.rs`): [`redact`] (secrets and control characters cleaned from what Kettle
//! writes) → [`spec`] (YAML → typed, validated spec; pure) → [`graph`] (the compiled
//! graph, routes, templates) → [`llm`] (providers) → [`checkpoint`] (durable runs: checkpoint stores, per-execution
//! LLM tapes) → [`telemetry`] (the run's trace and its
//! exporters) → [`capabilities`] (the host imports a node may call: `llm`, `trace`, `log`) →
//! [`sandbox`] (engine, pool, compile cache, per-node stores) → [`engine`] (the run loop).
//! Node folders are built by the `kettle-build` crate; the command line is `kettle-cli`.

pub mod capabilities;
pub mod checkpoint;
pub mod engine;
pub mod graph;
#[cfg(test)]
mod layering;
pub mod llm;
pub mod redact;
pub mod sandbox;
pub mod spec;
pub mod telemetry;
