//! Kettle runs LLM agent graphs described in YAML whose nodes are WebAssembly components,
//! sandboxed by wasmtime, with a host-owned OpenTelemetry trace of every node and LLM call.
//!
//! The layers, in the order a run goes through them:
//! [`spec`] (YAML → validated spec) → [`graph`] (compiled graph) → [`sandbox`] (components
//! built, compiled, cached, instantiated) → [`engine`] (the run loop) → [`capabilities`] (what a
//! node may call: `llm`, `trace`, `log`) → [`llm`] (providers) and [`telemetry`] (the trace).

pub mod capabilities;
pub mod cli;
pub mod engine;
pub mod graph;
pub mod llm;
pub mod sandbox;
pub mod spec;
pub mod telemetry;
