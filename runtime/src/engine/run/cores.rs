//! Node executions as tasks of the run's async runtime, so that parallel branches and
//! `dynamic_parallel` items run guest code on every core instead of taking turns on the thread
//! that polls the run. Each task is aborted when the branch awaiting it is dropped (a failing
//! sibling, a cancelled run), and the run waits for its tasks to be gone before it closes its
//! root span and flushes the trace, so a cancelled execution's spans are closed, not lost.
//!
//! An execution that starts outside every parallel group while no other of its run is going
//! on (every node of a chain) runs on the run's own task instead: a spawn and two cross-thread
//! wake-ups per node are most of a small node's cost. Dropped with its branch, it drops its
//! store in place, which closes its spans at once. Inside a parallel group (branches,
//! `dynamic_parallel` items) every execution is spawned, even one that finds no other going
//! on: the group polls its members in turn, and a member's guest code that ran on the run's
//! task would hold that task until it ended, so the next member would start only then, and
//! find itself alone too: the group would run one member at a time.

use crate::sandbox::{
    NodeFailure, NodeInvocation, NodeOutput, PreparedComponent, RunInstances, Sandbox,
};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::task::{AbortOnDropHandle, TaskTracker};

/// How long a run waits at its end for cancelled executions to drop. Guest code yields at
/// every epoch tick (10 ms), so an aborted task is normally gone within one tick; the bound
/// only matters for a host call that does not yield.
const DRAIN: Duration = Duration::from_secs(5);

/// Which instance an execution runs in.
pub(super) enum Instance {
    /// A fresh instance of the component.
    Fresh,
    /// The run's kept interpreter instance under this key (inline code).
    Kept(usize),
}

/// The node executions of one run.
pub(super) struct NodeTasks {
    sandbox: Arc<Sandbox>,
    instances: Arc<RunInstances>,
    tracker: TaskTracker,
    /// Executions of the run going on now.
    in_flight: Arc<AtomicUsize>,
    /// Parallel groups of the run going on now.
    groups: AtomicUsize,
}

impl NodeTasks {
    pub fn new(sandbox: Arc<Sandbox>) -> Self {
        Self {
            sandbox,
            instances: Arc::new(RunInstances::default()),
            tracker: TaskTracker::new(),
            in_flight: Arc::default(),
            groups: AtomicUsize::new(0),
        }
    }

    /// Marks a parallel group (fan-out branches, `dynamic_parallel` items) as going on for as
    /// long as the guard lives: executions started meanwhile are spawned.
    pub fn parallel_group(&self) -> ParallelGroup<'_> {
        self.groups.fetch_add(1, Ordering::SeqCst);
        ParallelGroup(&self.groups)
    }

    /// Runs one execution of `component` as a task of the current runtime. What is made of
    /// the state before (`invocation`) and of the output after (`finish`) runs in that task
    /// too: encoding and decoding large states is CPU work, which then uses every core.
    pub async fn execute<T: Send + 'static>(
        &self,
        component: &Arc<PreparedComponent>,
        instance: Instance,
        invocation: impl FnOnce() -> NodeInvocation + Send + 'static,
        finish: impl FnOnce(NodeOutput) -> T + Send + 'static,
    ) -> Result<T, NodeFailure> {
        let sandbox = self.sandbox.clone();
        let instances = self.instances.clone();
        let component = component.clone();
        // Boxed: the execution's future holds the invocation and the sandbox's own futures
        // (kilobytes), which every future above it would otherwise carry and copy.
        let execution = Box::pin(async move {
            let invocation = invocation();
            let output = match instance {
                Instance::Fresh => sandbox.execute(&component, invocation).await,
                Instance::Kept(key) => {
                    sandbox
                        .execute_in_run(&instances, key, &component, invocation)
                        .await
                }
            }?;
            Ok(finish(output))
        });
        let in_flight = InFlight::enter(&self.in_flight);
        if in_flight.alone && self.groups.load(Ordering::SeqCst) == 0 {
            return match AssertUnwindSafe(execution).catch_unwind().await {
                Ok(result) => result,
                Err(_) => Err(host_panicked()),
            };
        }
        // Aborted when dropped: a branch dropped by its group (a failing sibling) or a run
        // dropped by its caller takes its executions with it.
        let task = AbortOnDropHandle::new(self.tracker.spawn(execution));
        match task.await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(host_panicked()),
            Err(e) => Err(NodeFailure::Sandbox {
                message: format!("the execution was cancelled: {e}"),
            }),
        }
    }

    /// Waits (up to [`DRAIN`]) until every execution the run started has ended or, when
    /// aborted, dropped its store; returns how many were still running after the wait.
    pub async fn drain(&self) -> usize {
        self.tracker.close();
        if tokio::time::timeout(DRAIN, self.tracker.wait())
            .await
            .is_err()
        {
            return self.tracker.len();
        }
        0
    }
}

fn host_panicked() -> NodeFailure {
    NodeFailure::Sandbox {
        message: "the host panicked while running the node (a bug in Kettle: please report it)"
            .into(),
    }
}

/// One execution counted among the run's executions going on, for as long as it lives.
struct InFlight {
    count: Arc<AtomicUsize>,
    /// No other execution of the run was going on when this one started.
    alone: bool,
}

impl InFlight {
    fn enter(count: &Arc<AtomicUsize>) -> Self {
        let before = count.fetch_add(1, Ordering::SeqCst);
        Self {
            count: count.clone(),
            alone: before == 0,
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A parallel group going on, for as long as it lives.
pub(super) struct ParallelGroup<'a>(&'a AtomicUsize);

impl Drop for ParallelGroup<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
