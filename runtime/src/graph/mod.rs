//! The compiled graph: nodes with their resolved kinds, and where each one leads.

mod compile;
pub mod template;

pub use compile::compile;

use serde_json::{Map, Value};
use std::path::PathBuf;

/// Where execution goes after a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Node(usize),
    End,
}

/// Where a component comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ComponentSource {
    /// A built component.
    Wasm(PathBuf),
    /// A node folder (Rust, Python or JavaScript), built by Kettle when its sources change.
    Folder(PathBuf),
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Component {
        source: ComponentSource,
        /// The node's `config:`, handed to it as JSON.
        config: Value,
    },
    /// `uses: llm.call`.
    LlmCall {
        /// `with:`; strings are templates rendered against the state when the node runs.
        with: Map<String, Value>,
        /// The state key the result is stored under.
        output: String,
    },
}

#[derive(Debug, Clone)]
pub struct GraphNode {
    pub name: String,
    pub kind: NodeKind,
}

#[derive(Debug, Clone)]
pub struct Graph {
    pub nodes: Vec<GraphNode>,
    pub entry: Next,
    successors: Vec<Next>,
}

impl Graph {
    /// Where execution goes after node `index`.
    pub fn next(&self, index: usize) -> Next {
        self.successors.get(index).copied().unwrap_or(Next::End)
    }

    pub fn components(&self) -> impl Iterator<Item = (usize, &ComponentSource)> {
        self.nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| match &n.kind {
                NodeKind::Component { source, .. } => Some((i, source)),
                NodeKind::LlmCall { .. } => None,
            })
    }
}
