//! The instance pool under a wide fan-out: each execution takes the pool slots its component
//! needs (a Python node, made of many core modules, more than a Rust one), and executions that
//! do not fit wait for room instead of failing to instantiate.

use crate::support::{Scratch, repo, toolchains_dir};
use kettle::engine::{RunOptions, Runtime, load_agent};
use kettle::sandbox::{CompileCache, Sandbox, SandboxConfig};
use kettle::telemetry::{Telemetry, TelemetryConfig};
use serde_json::Value;
use std::sync::Arc;

const ITEMS: usize = 12;

#[test]
fn a_fan_out_wider_than_the_pool_waits_for_room() {
    let scratch = Scratch::new();
    // The builds below look for toolchains in `{cache}/toolchains` (no `KETTLE_TOOLCHAINS_DIR`
    // here: setting a variable of this process would race the other tests' threads), so that
    // folder is the shared one the other tests install into.
    std::fs::create_dir_all(toolchains_dir()).expect("the toolchains folder");
    std::fs::create_dir_all(scratch.cache()).expect("the cache folder");
    std::os::unix::fs::symlink(toolchains_dir(), scratch.cache().join("toolchains"))
        .expect("the toolchains folder linked into the cache");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    // Four slots: room for four Rust echo instances, or two Python ones, at a time.
    let config = SandboxConfig {
        max_concurrent_instances: 4,
        ..SandboxConfig::default()
    };
    let sandbox =
        Arc::new(Sandbox::new(&config, CompileCache::new(scratch.cache())).expect("a small pool"));
    let engine = Runtime::new(
        sandbox.clone(),
        Arc::new(Telemetry::new(&TelemetryConfig::with_exporters(Vec::new())).expect("telemetry")),
    );
    for (folder, slots) in [("tests/nodes/echo", 1), ("tests/polyglot-nodes/echo-py", 2)] {
        let node = repo().join(folder);
        let agent_file = scratch.agent(
            "wide.yaml",
            &format!(
                "name: wide\nnodes:\n  - name: each\n    type: dynamic_parallel\n    items: \"{{{{ range({ITEMS}) | list }}}}\"\n    item_var: item\n    max_concurrency: {ITEMS}\n    component: {}\n    output: results\n",
                node.display()
            ),
        );
        let agent = runtime
            .block_on(load_agent(&agent_file, &sandbox, &scratch.cache(), &|_| {}))
            .expect("the agent loads");

        let component = sandbox
            .prepare(&built_component(&scratch, &node, &runtime))
            .expect("the node compiles");
        assert_eq!(
            component.shape.slots(),
            slots,
            "{folder}: {:?}",
            component.shape
        );

        let report = runtime.block_on(engine.run(
            &agent,
            Default::default(),
            &RunOptions::default(),
            std::future::pending(),
        ));
        if let Err(error) = &report.outcome {
            panic!("{folder}: every item runs: {error}");
        }
        let results = report.state["results"].as_array().expect("results");
        assert_eq!(results.len(), ITEMS, "{folder}");
        for (index, result) in results.iter().enumerate() {
            assert_eq!(result["index"], Value::from(index), "{folder}");
            assert!(
                result.get("error").is_none(),
                "{folder}: item {index} failed: {result}"
            );
            assert_eq!(
                result["state"]["echo"]["item"],
                Value::from(index),
                "{folder}"
            );
        }
    }
}

/// The component `load_agent` built for `node` (fresh, so this only looks it up).
fn built_component(
    scratch: &Scratch,
    node: &std::path::Path,
    runtime: &tokio::runtime::Runtime,
) -> std::path::PathBuf {
    runtime
        .block_on(kettle_build::build_node(
            node,
            &scratch.cache(),
            &Default::default(),
            &|_| {},
        ))
        .expect("the node is built")
        .wasm
}
