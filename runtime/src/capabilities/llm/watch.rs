//! Watching a run's LLM calls from outside the trace (the engine's progress events, and through
//! them `kettle serve`'s server-sent events and metrics): each delta of a streamed answer as it
//! arrives, and each call's latency when it ends. The watcher is handed down explicitly, from
//! the run's setup through each node's LLM state to its calls; nothing is taken from ambient
//! context.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// A call that ended (answered or failed), as a watcher sees it.
#[derive(Debug, Clone, Copy)]
pub struct CallEnded<'a> {
    pub node: &'a str,
    /// The provider's name in the agent's settings (`kettle.llm.provider`).
    pub provider: &'a str,
    pub model: &'a str,
    /// From the span's start to the answer's end (a stream's last delta).
    pub took: Duration,
    pub ok: bool,
}

/// Receives a run's LLM progress. Called on the task making the call: keep it quick.
pub trait LlmWatcher: Send + Sync {
    /// One delta of a streamed answer, in the order received.
    fn delta(&self, node: &str, text: &str);
    /// A call made to a provider ended; calls answered from a durable run's tape are not
    /// reported, nor calls cancelled before their end.
    fn ended(&self, call: &CallEnded<'_>);
}

impl fmt::Debug for dyn LlmWatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LlmWatcher")
    }
}

/// The run's watcher, bound to the node execution whose calls it reports.
#[derive(Clone)]
pub struct NodeWatch {
    watcher: Arc<dyn LlmWatcher>,
    node: Arc<str>,
}

impl NodeWatch {
    pub fn new(watcher: Arc<dyn LlmWatcher>, node: &str) -> Self {
        Self {
            watcher,
            node: node.into(),
        }
    }

    pub(crate) fn delta(&self, text: &str) {
        self.watcher.delta(&self.node, text);
    }

    pub(crate) fn ended(&self, provider: &str, model: &str, took: Duration, ok: bool) {
        self.watcher.ended(&CallEnded {
            node: &self.node,
            provider,
            model,
            took,
            ok,
        });
    }
}

impl fmt::Debug for NodeWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeWatch")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}
