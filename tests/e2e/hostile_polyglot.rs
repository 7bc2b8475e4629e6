//! Hostile Python and JavaScript nodes against the sandbox: a memory bomb hits the 256 MiB
//! store limit, a file read finds no preopened folder, a network attempt gets nowhere, an
//! infinite loop is stopped at the node's time limit. Each fails its node (exit 1) and the
//! trace is still whole.

use crate::support::{Scratch, assert_whole_trace, repo, span, stderr};
use std::net::TcpListener;
use std::path::Path;

/// Runs `node` with `config: {attack: ATTACK}`; asserts it failed with `kind` and a message
/// containing `message`, and returns kettle's stderr.
fn attack(scratch: &Scratch, node: &Path, attack: &str, input: &str, kind: &str, message: &str) {
    let agent = scratch.agent(
        &format!("{attack}.yaml"),
        &format!(
            "name: hostile\nnodes:\n  - name: hostile\n    component: {}\n    config: {{attack: {attack}}}\n    limits: {{timeout_ms: 2000}}\n",
            node.display()
        ),
    );
    let traces = scratch.path().join(format!("traces-{attack}"));
    let output = scratch
        .kettle()
        .arg("run")
        .arg(&agent)
        .arg("--trace-dir")
        .arg(&traces)
        .args(["--input", input])
        .output()
        .expect("kettle runs");
    let text = stderr(&output);
    assert_eq!(output.status.code(), Some(1), "{attack}: {text}");
    assert!(
        text.contains(&format!("node `hostile` failed ({kind})")),
        "{attack}: {text}"
    );
    assert!(text.contains(message), "{attack}: {text}");
    let files: Vec<_> = std::fs::read_dir(&traces)
        .expect("trace folder")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1);
    let spans = kettle::telemetry::read_trace_file(&files[0]).expect("trace");
    assert_whole_trace(&spans);
    let node = span(&spans, "node hostile");
    assert_eq!(node.status.code, "error");
    assert_eq!(node.attributes["error.type"], kind);
}

/// A listener on 127.0.0.1 that must see no connection.
fn listener() -> TcpListener {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    listener
}

fn assert_untouched(listener: &TcpListener) {
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the node reached the listener: {other:?}"),
    }
}

#[test]
fn hostile_python_nodes_are_stopped() {
    let scratch = Scratch::new();
    let node = repo().join("tests/polyglot-nodes/hostile-py");
    attack(
        &scratch,
        &node,
        "memory",
        "{}",
        "limit.memory_mb",
        "memory_mb=256",
    );
    attack(
        &scratch,
        &node,
        "file",
        "{}",
        "failed",
        "FileNotFoundError: [Errno 44] No such file or directory: '/etc/passwd'",
    );
    // componentize-py ships no socket module: a Python node has no way to the network.
    let port = listener();
    let input = format!(r#"{{"port": {}}}"#, port.local_addr().expect("addr").port());
    attack(
        &scratch,
        &node,
        "connect",
        &input,
        "failed",
        "ModuleNotFoundError: No module named 'socket'",
    );
    assert_untouched(&port);
    attack(
        &scratch,
        &node,
        "spin",
        "{}",
        "limit.timeout_ms",
        "timeout_ms=2000",
    );
}

#[test]
fn hostile_javascript_nodes_are_stopped() {
    let scratch = Scratch::new();
    let node = repo().join("tests/polyglot-nodes/hostile-js");
    attack(
        &scratch,
        &node,
        "memory",
        "{}",
        "limit.memory_mb",
        "memory_mb=256",
    );
    let port = listener();
    let address = port.local_addr().expect("addr");
    let input = format!(r#"{{"port": {}}}"#, address.port());
    attack(
        &scratch,
        &node,
        "fetch",
        &input,
        "failed",
        &format!(
            "TypeError: fetch(\"http://{address}/\") is disabled: this node is not granted `http`"
        ),
    );
    assert_untouched(&port);
    attack(
        &scratch,
        &node,
        "spin",
        "{}",
        "limit.timeout_ms",
        "timeout_ms=2000",
    );
}
