//! The end-to-end tests, one module per area, in one test binary so that wasmtime is linked once.
//! They drive the `kettle` binary (and, where they measure the library, the `kettle` crate) with
//! real components, real local servers and a real OTLP receiver.

mod support;

mod concurrent_runs;
mod durable_postgres;
mod durable_runs;
mod edge_build;
mod escape_holes;
mod graph_semantics;
mod hello;
mod hostile_polyglot;
mod inline_lua;
mod inline_prolog;
mod inline_python;
mod limit_holes;
mod llm_faults;
mod llm_fidelity;
mod llm_providers;
mod llm_settings_errors;
mod lua_interpreter;
mod nats_fleet;
mod openai_provider;
mod parallel_traces;
mod polyglot;
mod pool_slots;
mod python_dev_loop;
mod record_replay;
mod sandbox;
mod serve;
mod serve_page;
mod serve_stream;
mod spec_errors;
mod tea_corpus_more;
mod tea_examples;
mod tea_yaml;
mod trace_conventions;
mod trace_delivery;
mod trace_exporters;
mod trace_holes;
mod trace_integrity;
mod trace_matrix;
mod validate_cmd;
mod workers;
