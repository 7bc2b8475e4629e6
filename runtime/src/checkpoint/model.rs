//! What a checkpoint holds: the run's position (every path's state and next node, the
//! parallel groups in progress and the `dynamic_parallel` items that finished), its step
//! count and LLM use, and the ids that tie a resumed run to its trace. Node names, not
//! indices, so that a checkpoint names what a person reads in the YAML.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// One path of the run: the main path, or a branch of a parallel group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathPos {
    pub state: Map<String, Value>,
    /// The node this path runs next; `None` at the end.
    pub next: Option<String>,
    /// Nodes this path has completed (part of the name of each execution's LLM tape).
    pub done: u32,
    /// The parallel group this path waits on; its fan-in node runs when every branch is done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupPos>,
    /// The `dynamic_parallel` items of `next` that finished: index → `{index, item, state|error}`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub items: BTreeMap<usize, Value>,
}

impl PathPos {
    pub fn new(state: Map<String, Value>, next: Option<String>) -> Self {
        Self {
            state,
            next,
            done: 0,
            group: None,
            items: BTreeMap::new(),
        }
    }

    /// Merges `input` into this path's state and every branch's below it.
    pub fn merge_input(&mut self, input: &Map<String, Value>) {
        self.state
            .extend(input.iter().map(|(k, v)| (k.clone(), v.clone())));
        if let Some(group) = &mut self.group {
            for branch in &mut group.branches {
                branch.merge_input(input);
            }
        }
    }
}

/// A parallel group in progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupPos {
    pub fork: String,
    pub fan_in: String,
    /// The branches in edge order; a branch whose `next` is the fan-in node is done.
    pub branches: Vec<PathPos>,
}

/// LLM use of the run so far (its `settings.budget` counts on from these after a resume).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageUsed {
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Running, or killed while running (a crash): resume it.
    Running,
    /// Stopped at an `interrupt_before`/`interrupt_after` node: resume it with an answer.
    Interrupted,
    Completed,
    Failed,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Interrupted => "interrupted",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Running,
            Self::Interrupted,
            Self::Completed,
            Self::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// The interrupt a run stopped at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterruptPos {
    pub node: String,
    /// `before`, `after`, or `inside` (the node called `interrupt`).
    pub when: String,
    /// What the node asked (JSON), for `inside`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// A run's position, saved atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub run_id: String,
    /// The checkpoint's number within its run (1, 2, ...), given by the store.
    #[serde(default)]
    pub seq: u64,
    /// What led to it: `after node X`, `fan-in X`, `interrupt before X`, ...
    pub reason: String,
    pub position: PathPos,
    /// Node executions so far.
    pub steps: u32,
    pub usage: UsageUsed,
    pub trace_id: String,
    pub root_span_id: String,
    pub status: RunStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupt: Option<InterruptPos>,
    /// The checkpoint this run was resumed from (`kettle resume --from`), when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_seq: Option<u64>,
}

/// A run as the store lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub agent: String,
    /// The agent file, absolute, so that `kettle resume` finds it from anywhere.
    pub agent_file: String,
    pub status: RunStatus,
    pub trace_id: String,
    pub root_span_id: String,
    /// Milliseconds since the Unix epoch.
    pub created_ms: u64,
    pub updated_ms: u64,
    /// Checkpoints saved so far (the last one's `seq`).
    pub checkpoints: u64,
}

/// One line of `kettle runs show RUN_ID --history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointSummary {
    pub seq: u64,
    pub reason: String,
    pub status: RunStatus,
    pub steps: u32,
    pub created_ms: u64,
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
