//! One node execution: a fresh store and instance, the call to `run`, and the clean-up of
//! whatever the guest left behind (open spans, captured output).

use super::host::NodeHost;
use crate::bindings::NodePre;
use crate::bindings::types::{NodeContext, NodeError};
use crate::capabilities::{NodeLlm, NodeTrace};
use wasmtime::{Engine, Store};

/// Everything one execution needs.
pub struct NodeInvocation {
    pub run_id: String,
    pub node_name: String,
    pub attempt: u32,
    /// The node's `config:` as JSON.
    pub config: String,
    /// The whole state as JSON.
    pub state: String,
    pub trace: NodeTrace,
    pub llm: NodeLlm,
}

/// A successful execution.
#[derive(Debug)]
pub struct NodeOutput {
    /// The node's state update, as the JSON text it returned.
    pub update: String,
    /// Guest spans the host had to close.
    pub leaked_spans: usize,
}

/// Why an execution failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum NodeFailure {
    #[error("the node reported an error ({kind}): {message}")]
    Guest { kind: &'static str, message: String },
    #[error("the node crashed (wasm trap): {message}")]
    Trap { message: String },
    #[error("the node could not be instantiated: {message}")]
    Instantiate { message: String },
}

impl NodeFailure {
    /// A short, stable name for spans and `state.error.kind`.
    pub fn kind(&self) -> &'static str {
        match self {
            NodeFailure::Guest { kind, .. } => kind,
            NodeFailure::Trap { .. } => "trap",
            NodeFailure::Instantiate { .. } => "instantiate",
        }
    }
}

pub(super) async fn execute(
    engine: &Engine,
    pre: &NodePre<NodeHost>,
    invocation: NodeInvocation,
) -> Result<NodeOutput, NodeFailure> {
    let NodeInvocation {
        run_id,
        node_name,
        attempt,
        config,
        state,
        trace,
        llm,
    } = invocation;
    let context = NodeContext {
        run_id: run_id.clone(),
        node_name: node_name.clone(),
        attempt,
        config,
    };
    let mut store = Store::new(engine, NodeHost::new(run_id, node_name, trace, llm));
    store.limiter(|host| &mut host.limits);

    let outcome = match pre.instantiate_async(&mut store).await {
        Ok(node) => node.call_run(&mut store, &context, &state).await,
        Err(e) => {
            return Err(NodeFailure::Instantiate {
                message: format!("{e:#}"),
            });
        }
    };

    let host = store.data_mut();
    let why = match &outcome {
        Ok(Ok(_)) => "the node returned",
        Ok(Err(_)) => "the node returned an error",
        Err(_) => "the node crashed",
    };
    let leaked_spans = host.trace.close_leaked(why);
    forward_output(&context.node_name, "stdout", &host.stdout.contents());
    let stderr = host.stderr.contents();
    forward_output(&context.node_name, "stderr", &stderr);

    match outcome {
        Ok(Ok(update)) => Ok(NodeOutput {
            update,
            leaked_spans,
        }),
        Ok(Err(error)) => {
            let (kind, message) = match error {
                NodeError::InvalidInput(m) => ("invalid_input", m),
                NodeError::Llm(m) => ("llm", m),
                NodeError::Failed(m) => ("failed", m),
            };
            Err(NodeFailure::Guest { kind, message })
        }
        Err(trap) => {
            let mut message = trap.root_cause().to_string();
            let stderr = String::from_utf8_lossy(&stderr);
            let last: Vec<&str> = stderr.lines().rev().take(5).collect();
            if !last.is_empty() {
                message.push_str("; the node's last stderr lines: ");
                message.push_str(&last.into_iter().rev().collect::<Vec<_>>().join(" | "));
            }
            Err(NodeFailure::Trap { message })
        }
    }
}

fn forward_output(node: &str, stream: &str, bytes: &[u8]) {
    for line in String::from_utf8_lossy(bytes).lines() {
        tracing::info!(target: "kettle::node", node, stream, "{line}");
    }
}
