//! A durable run in the engine: the live position of every path (the main path, each branch of
//! a parallel group in progress, the `dynamic_parallel` items finished), saved to the
//! checkpoint store after every node execution, at every fan-in and at every interrupt; and the
//! LLM tape of the node execution in flight.
//!
//! The tape reaches the capabilities through a task-local scoped around one execution, not
//! through every function between the run loop and `NodeSetup`: the engine sets it, nothing a
//! guest can reach reads it, and concurrent branches and items each poll inside their own scope.

use super::Run;
use crate::checkpoint::{
    Checkpoint, CheckpointStore, ExecutionTape, GroupPos, InterruptPos, PathPos, RunStatus,
    UsageUsed,
};
use crate::engine::error::RunError;
use crate::graph::Next;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

tokio::task_local! {
    static TAPE: Option<Arc<ExecutionTape>>;
}

/// The LLM tape of the node execution being prepared, in a durable run.
pub(super) fn current_tape() -> Option<Arc<ExecutionTape>> {
    TAPE.try_with(Clone::clone).ok().flatten()
}

/// Runs `future` (one node execution, or one `dynamic_parallel` item) with `tape` as its tape.
pub(super) async fn with_tape<F: Future>(tape: Option<Arc<ExecutionTape>>, future: F) -> F::Output {
    TAPE.scope(tape, future).await
}

/// The id of a path in [`Paths`]; the main path is [`MAIN`].
pub(super) type PathId = u64;
pub(super) const MAIN: PathId = 0;

/// What a durable run keeps besides the run itself.
pub(super) struct DurableRun {
    pub store: Arc<dyn CheckpointStore>,
    pub trace_id: String,
    pub root_span_id: String,
    /// The checkpoint this run was resumed from.
    pub parent_seq: Option<u64>,
    /// Resumed from an interrupt before this node: it runs this time.
    pub pass_before: Mutex<Option<String>>,
    paths: Mutex<Paths>,
    /// The tapes of the executions in flight: their LLM use is left out of checkpoints.
    live: Mutex<Vec<Weak<ExecutionTape>>>,
}

impl DurableRun {
    pub fn new(
        store: Arc<dyn CheckpointStore>,
        trace_id: String,
        root_span_id: String,
        parent_seq: Option<u64>,
        pass_before: Option<String>,
    ) -> Self {
        Self {
            store,
            trace_id,
            root_span_id,
            parent_seq,
            pass_before: Mutex::new(pass_before),
            paths: Mutex::new(Paths::default()),
            live: Mutex::new(Vec::new()),
        }
    }

    /// Opens the tape of execution `exec` and counts it as in flight.
    fn open_tape(&self, run_id: &str, exec: String) -> Arc<ExecutionTape> {
        let tape = Arc::new(ExecutionTape::open(self.store.clone(), run_id, exec));
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|t| t.strong_count() > 0);
        live.push(Arc::downgrade(&tape));
        tape
    }

    /// LLM use of the executions in flight.
    fn in_flight(&self) -> UsageUsed {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.iter()
            .filter_map(Weak::upgrade)
            .map(|t| t.used())
            .fold(UsageUsed::default(), |a, b| UsageUsed {
                calls: a.calls + b.calls,
                input_tokens: a.input_tokens + b.input_tokens,
                output_tokens: a.output_tokens + b.output_tokens,
            })
    }

    fn paths(&self) -> MutexGuard<'_, Paths> {
        self.paths.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The live tree of paths: each path's position, its branches by id.
#[derive(Default)]
struct Paths {
    slots: HashMap<PathId, Slot>,
    next_id: PathId,
}

struct Slot {
    /// Names the path in the keys of its executions' tapes (stable across a resume).
    key: String,
    /// The position; its group's `branches` are kept empty (they are `children`).
    pos: PathPos,
    children: Vec<PathId>,
}

impl Paths {
    fn add(&mut self, key: String, mut pos: PathPos) -> PathId {
        let id = self.next_id;
        self.next_id += 1;
        let branches = pos
            .group
            .as_mut()
            .map(|g| std::mem::take(&mut g.branches))
            .unwrap_or_default();
        let done = pos.done;
        self.slots.insert(
            id,
            Slot {
                key: key.clone(),
                pos,
                children: Vec::new(),
            },
        );
        let children: Vec<PathId> = branches
            .into_iter()
            .enumerate()
            .map(|(i, branch)| self.add(format!("{key}:{done}.{i}"), branch))
            .collect();
        if let Some(slot) = self.slots.get_mut(&id) {
            slot.children = children;
        }
        id
    }

    fn snapshot(&self, id: PathId) -> PathPos {
        let Some(slot) = self.slots.get(&id) else {
            return PathPos::new(Map::new(), None);
        };
        let mut pos = slot.pos.clone();
        if let Some(group) = &mut pos.group {
            group.branches = slot.children.iter().map(|&c| self.snapshot(c)).collect();
        }
        pos
    }

    fn remove_children(&mut self, id: PathId) {
        let children = self
            .slots
            .get_mut(&id)
            .map(|s| std::mem::take(&mut s.children))
            .unwrap_or_default();
        for child in children {
            self.remove_children(child);
            self.slots.remove(&child);
        }
    }

    fn slot(&mut self, id: PathId) -> Option<&mut Slot> {
        self.slots.get_mut(&id)
    }
}

impl Run<'_> {
    /// Registers the main path at its start (or at its resumed position).
    pub(super) fn start_paths(&self, pos: PathPos) {
        if let Some(d) = &self.durable {
            d.paths().add("r".into(), pos);
        }
    }

    /// The branches of the group path `path` waits on, resumed from a checkpoint.
    pub(super) fn pending_branches(&self, path: PathId) -> Vec<(PathId, PathPos)> {
        let Some(d) = &self.durable else {
            return Vec::new();
        };
        let paths = d.paths();
        paths.slots.get(&path).map_or_else(Vec::new, |slot| {
            slot.children
                .iter()
                .map(|&c| (c, paths.snapshot(c)))
                .collect()
        })
    }

    /// The LLM tape of the next execution of `node` on `path`.
    pub(super) fn tape_for(
        &self,
        path: PathId,
        node: &str,
        attempt: u32,
    ) -> Option<Arc<ExecutionTape>> {
        let d = self.durable.as_ref()?;
        let exec = {
            let mut paths = d.paths();
            let slot = paths.slot(path)?;
            format!("{}:{}:{node}#{attempt}", slot.key, slot.pos.done)
        };
        Some(d.open_tape(self.run_id, exec))
    }

    /// The tape of item `index` of the `dynamic_parallel` execution whose tape is `node_tape`.
    pub(super) fn item_tape(
        &self,
        node_tape: Option<&Arc<ExecutionTape>>,
        index: usize,
    ) -> Option<Arc<ExecutionTape>> {
        let d = self.durable.as_ref()?;
        let exec = format!("{}/item{index}", node_tape?.exec());
        Some(d.open_tape(self.run_id, exec))
    }

    /// Before node `node` runs on `path`: stops the run there if it is an `interrupt_before`
    /// node (unless the run was just resumed from that very interrupt).
    pub(super) fn before_node(&self, path: PathId, node: &str) -> Result<(), RunError> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        if !self.agent.interrupts.before.contains(node) {
            return Ok(());
        }
        {
            let mut pass = d.pass_before.lock().unwrap_or_else(PoisonError::into_inner);
            if pass.as_deref() == Some(node) {
                *pass = None;
                return Ok(());
            }
        }
        if let Some(slot) = d.paths().slot(path) {
            slot.pos.next = Some(node.to_string());
        }
        self.pause(node, "before")
    }

    /// After node `node` completed on `path` with `state`, going to `next` (a node, or the
    /// end): saves the position, and stops the run if `node` is an `interrupt_after` node.
    pub(super) fn node_done(
        &self,
        path: PathId,
        node: &str,
        state: &Map<String, Value>,
        next: Next,
    ) -> Result<(), RunError> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        if let Some(slot) = d.paths().slot(path) {
            slot.pos.state = state.clone();
            slot.pos.next = self.name_of(next);
            slot.pos.done += 1;
            slot.pos.items.clear();
        }
        if self.agent.interrupts.after.contains(node) {
            return self.pause(node, "after");
        }
        self.save(format!("after node {node}"), RunStatus::Running, None)
    }

    /// Node `fork` completed on `path` with `state` and fans out to `branches` up to `fan_in`:
    /// saves the position with every branch at its start; returns the branches' paths.
    pub(super) fn fork(
        &self,
        path: PathId,
        fork: &str,
        fan_in: &str,
        state: &Map<String, Value>,
        branches: &[&str],
    ) -> Result<Vec<(PathId, PathPos)>, RunError> {
        let starts: Vec<PathPos> = branches
            .iter()
            .map(|b| PathPos::new(state.clone(), Some(b.to_string())))
            .collect();
        let Some(d) = &self.durable else {
            return Ok(starts.into_iter().map(|p| (MAIN, p)).collect());
        };
        let ids = {
            let mut paths = d.paths();
            let Some(slot) = paths.slot(path) else {
                return Ok(starts.into_iter().map(|p| (MAIN, p)).collect());
            };
            slot.pos.state = state.clone();
            slot.pos.next = Some(fan_in.to_string());
            slot.pos.done += 1;
            slot.pos.items.clear();
            slot.pos.group = Some(GroupPos {
                fork: fork.to_string(),
                fan_in: fan_in.to_string(),
                branches: Vec::new(),
            });
            let (key, done) = (slot.key.clone(), slot.pos.done);
            let ids: Vec<PathId> = starts
                .iter()
                .enumerate()
                .map(|(i, p)| paths.add(format!("{key}:{done}.{i}"), p.clone()))
                .collect();
            if let Some(slot) = paths.slot(path) {
                slot.children = ids.clone();
            }
            ids
        };
        if self.agent.interrupts.after.contains(fork) {
            self.pause(fork, "after")?;
        } else {
            self.save(format!("after node {fork}"), RunStatus::Running, None)?;
        }
        Ok(ids.into_iter().zip(starts).collect())
    }

    /// Every branch of `path`'s group reached `fan_in`: saves the joined state, `fan_in` next.
    pub(super) fn join(
        &self,
        path: PathId,
        fan_in: &str,
        state: &Map<String, Value>,
    ) -> Result<(), RunError> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        {
            let mut paths = d.paths();
            paths.remove_children(path);
            if let Some(slot) = paths.slot(path) {
                slot.pos.group = None;
                slot.pos.state = state.clone();
                slot.pos.next = Some(fan_in.to_string());
            }
        }
        self.save(format!("fan-in {fan_in}"), RunStatus::Running, None)
    }

    /// The items of the `dynamic_parallel` node next on `path` that finished before a resume.
    pub(super) fn items_done(&self, path: PathId) -> BTreeMap<usize, Value> {
        let Some(d) = &self.durable else {
            return BTreeMap::new();
        };
        d.paths()
            .slot(path)
            .map(|s| s.pos.items.clone())
            .unwrap_or_default()
    }

    /// Item `index` of the `dynamic_parallel` node `node` on `path` finished with `result`.
    pub(super) fn item_done(
        &self,
        path: PathId,
        node: &str,
        index: usize,
        result: &Value,
    ) -> Result<(), RunError> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        if let Some(slot) = d.paths().slot(path) {
            slot.pos.items.insert(index, result.clone());
        }
        self.save(format!("item {index} of {node}"), RunStatus::Running, None)
    }

    /// Saves an interrupted checkpoint and stops the run.
    fn pause(&self, node: &str, when: &str) -> Result<(), RunError> {
        self.pause_with(node, when, None)
    }

    /// Node `node` on `path` asked a person (`interrupt`): saves the position with the node
    /// still to run, and stops the run.
    pub(super) fn asked(&self, path: PathId, node: &str, payload: String) -> RunError {
        if let Some(d) = &self.durable
            && let Some(slot) = d.paths().slot(path)
        {
            slot.pos.next = Some(node.to_string());
        }
        match self.pause_with(node, "inside", Some(payload)) {
            Err(e) => e,
            Ok(()) => RunError::Checkpoint("internal: an interrupt did not stop the run".into()),
        }
    }

    fn pause_with(&self, node: &str, when: &str, payload: Option<String>) -> Result<(), RunError> {
        self.save(
            format!("interrupt {when} {node}"),
            RunStatus::Interrupted,
            Some(InterruptPos {
                node: node.to_string(),
                when: when.to_string(),
                payload: payload.clone(),
            }),
        )?;
        Err(RunError::Paused {
            node: node.to_string(),
            when: when.to_string(),
            payload,
        })
    }

    /// Saves the run's position now.
    pub(super) fn save(
        &self,
        reason: String,
        status: RunStatus,
        interrupt: Option<InterruptPos>,
    ) -> Result<(), RunError> {
        let Some(d) = &self.durable else {
            return Ok(());
        };
        let usage = &self.capabilities.llm.usage;
        let flying = d.in_flight();
        let checkpoint = Checkpoint {
            run_id: self.run_id.to_string(),
            seq: 0,
            reason,
            position: d.paths().snapshot(MAIN),
            steps: self.steps.load(Ordering::Relaxed),
            usage: UsageUsed {
                calls: usage
                    .calls
                    .load(Ordering::Relaxed)
                    .saturating_sub(flying.calls),
                input_tokens: usage
                    .input_tokens
                    .load(Ordering::Relaxed)
                    .saturating_sub(flying.input_tokens),
                output_tokens: usage
                    .output_tokens
                    .load(Ordering::Relaxed)
                    .saturating_sub(flying.output_tokens),
            },
            trace_id: d.trace_id.clone(),
            root_span_id: d.root_span_id.clone(),
            status,
            interrupt,
            parent_seq: d.parent_seq,
        };
        d.store
            .save(&checkpoint)
            .map(drop)
            .map_err(|e| RunError::Checkpoint(e.to_string()))
    }

    /// Sets the run's final status in the store (a failure to is logged: the last checkpoint
    /// stands, and a resume picks up from it).
    pub(super) fn finish_durable(&self, status: RunStatus) {
        if let Some(d) = &self.durable
            && let Err(e) = d.store.set_status(self.run_id, status)
        {
            tracing::warn!("cannot record the end of run {}: {e}", self.run_id);
        }
    }
}
