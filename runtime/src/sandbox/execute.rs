//! One node execution: a fresh store and instance under the node's limits, the call to `run`,
//! and the clean-up of whatever the guest left behind (open spans, captured output).

use super::host::NodeHost;
use super::permissions::Grants;
use crate::capabilities::bindings::NodePre;
use crate::capabilities::bindings::types::{NodeContext, NodeError};
use crate::capabilities::{LimitBreach, LogBudget, NodeCapabilities, cut_to};
use crate::spec::{NodeLimits, raise_hint};
use opentelemetry::KeyValue;
use std::sync::Arc;
use wasmtime::{Engine, Module, Store, Trap, WasmBacktrace};

/// Everything one execution needs.
pub struct NodeInvocation {
    pub run_id: String,
    pub node_name: String,
    pub attempt: u32,
    /// The node's `config:` as JSON.
    pub config: String,
    /// The whole state as JSON.
    pub state: String,
    /// Every capability's state for this execution.
    /// Boxed: it is most of the invocation, which moves from task to store.
    pub capabilities: Box<NodeCapabilities>,
    pub limits: NodeLimits,
    pub grants: Arc<Grants>,
}

impl NodeInvocation {
    /// What the guest is handed (its context and the state), and what the host keeps.
    pub(super) fn into_parts(
        self,
    ) -> (
        NodeContext,
        String,
        Box<NodeCapabilities>,
        NodeLimits,
        Arc<Grants>,
    ) {
        let context = NodeContext {
            run_id: self.run_id,
            node_name: self.node_name,
            attempt: self.attempt,
            config: self.config,
        };
        (
            context,
            self.state,
            self.capabilities,
            self.limits,
            self.grants,
        )
    }
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
    Guest { kind: String, message: String },
    #[error("the node crashed ({kind}): {message}")]
    Trap { kind: &'static str, message: String },
    #[error(
        "the node hit its limit {limit}={value}: {detail}; {}",
        raise_hint(limit)
    )]
    Limit {
        limit: &'static str,
        value: u64,
        detail: String,
    },
    #[error("the node could not be instantiated: {message}")]
    Instantiate { message: String },
    #[error("the node's sandbox could not be set up: {message}")]
    Sandbox { message: String },
}

impl NodeFailure {
    /// A short, stable name for spans and `state.error.kind`: `invalid_input`, `llm`,
    /// `failed`, `trap`, `stack_overflow`, `limit.timeout_ms`, `limit.memory_mb`, ...
    pub fn kind(&self) -> String {
        match self {
            NodeFailure::Guest { kind, .. } => kind.clone(),
            NodeFailure::Trap { kind, .. } => (*kind).to_string(),
            NodeFailure::Limit { limit, .. } => format!("limit.{limit}"),
            NodeFailure::Instantiate { .. } => "instantiate".into(),
            NodeFailure::Sandbox { .. } => "sandbox".into(),
        }
    }

    /// Whether running the node again may succeed even if it is not idempotent: the node
    /// gave up because the LLM provider was busy or slow.
    pub fn retryable(&self) -> bool {
        matches!(self, NodeFailure::Guest { kind, .. } if kind == "llm.rate_limited" || kind == "llm.timeout")
    }

    /// Whether the node crashed (worth retrying only for an idempotent node).
    pub fn is_crash(&self) -> bool {
        matches!(self, NodeFailure::Trap { .. })
    }

    /// This failure with its message cut to `max` bytes (with a marker saying how much was
    /// cut, see `max_error_bytes`), and the number of bytes cut.
    fn capped(mut self, max: usize) -> (Self, usize) {
        let message = match &mut self {
            NodeFailure::Guest { message, .. }
            | NodeFailure::Trap { message, .. }
            | NodeFailure::Instantiate { message }
            | NodeFailure::Sandbox { message } => message,
            NodeFailure::Limit { detail, .. } => detail,
        };
        let cut = message.len().saturating_sub(max);
        if cut > 0 {
            *message = cut_to(message, max).into_owned();
        }
        (self, cut)
    }
}

pub(super) enum Outcome {
    Instantiate(wasmtime::Error),
    Called(wasmtime::Result<Result<String, NodeError>>),
    TimedOut,
}

impl Outcome {
    /// Why the guest's leftover spans are being closed.
    fn why(&self) -> &'static str {
        match self {
            Outcome::Called(Ok(Ok(_))) => "the node returned",
            Outcome::Called(Ok(Err(_))) => "the node returned an error",
            Outcome::Called(Err(_)) | Outcome::Instantiate(_) => "the node crashed",
            Outcome::TimedOut => "the node was stopped at its time limit",
        }
    }
}

/// What the host learnt of the execution once it was over, beyond its outcome.
pub(super) struct Aftermath {
    leaked_spans: usize,
    stderr: bytes::Bytes,
    last_llm_error: Option<String>,
    memory_refused: bool,
    breach: Option<LimitBreach>,
}

/// One execution: a fresh store, the call to `run`, the clean-up, the verdict.
pub(super) async fn execute(
    engine: &Engine,
    pre: &NodePre<NodeHost>,
    invocation: NodeInvocation,
) -> Result<NodeOutput, NodeFailure> {
    let (context, state, capabilities, limits, grants) = invocation.into_parts();
    let mut store = new_store(
        engine,
        context.node_name.clone(),
        capabilities,
        &limits,
        &grants,
    )?;
    let outcome = call_run(&mut store, pre, &context, &state, &limits).await;
    let aftermath = clean_up(
        store.data_mut(),
        &context.node_name,
        &outcome,
        &mut Forwarded::default(),
    );
    verdict(store.data(), outcome, aftermath, &limits)
}

/// The execution's result: `judge`'s, with an error message cut to `max_error_bytes` (what was
/// cut is counted on the node's span).
pub(super) fn verdict(
    host: &NodeHost,
    outcome: Outcome,
    aftermath: Aftermath,
    limits: &NodeLimits,
) -> Result<NodeOutput, NodeFailure> {
    judge(outcome, aftermath, limits).map_err(|failure| {
        let max = usize::try_from(limits.max_error_bytes).unwrap_or(usize::MAX);
        let (failure, cut) = failure.capped(max);
        if cut > 0 {
            let cut = i64::try_from(cut).unwrap_or(i64::MAX);
            let node_span = host.capabilities.trace.node_span();
            node_span.set_attribute(KeyValue::new("kettle.error.cut_bytes", cut));
        }
        failure
    })
}

/// A fresh store for one execution, under the node's limits.
pub(super) fn new_store(
    engine: &Engine,
    node_name: String,
    capabilities: Box<NodeCapabilities>,
    limits: &NodeLimits,
    grants: &Grants,
) -> Result<Store<NodeHost>, NodeFailure> {
    let host = NodeHost::new(node_name, capabilities, limits, grants)
        .map_err(|message| NodeFailure::Sandbox { message })?;
    let mut store = Store::new(engine, host);
    store.limiter(|host| &mut host.limiter);
    arm(&mut store, limits)?;
    Ok(store)
}

/// Sets the store's instruction budget and time slicing for the next call.
pub(super) fn arm(store: &mut Store<NodeHost>, limits: &NodeLimits) -> Result<(), NodeFailure> {
    store
        .set_fuel(limits.fuel.unwrap_or(u64::MAX))
        .map_err(|e| NodeFailure::Sandbox {
            message: format!("{e:#}"),
        })?;
    // Guest code yields to the async runtime at every epoch tick, so a node that never calls
    // the host still lets the timeout in `call_run` fire. The first deadline is the next tick:
    // a new store's is the epoch already reached, which made every execution suspend its
    // fiber and yield once as soon as it started.
    store.set_epoch_deadline(1);
    store.epoch_deadline_async_yield_and_update(1);
    Ok(())
}

/// How much of a store's captured stdout and stderr was already sent to the log (a store
/// kept for several executions captures into the same pipes).
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Forwarded {
    stdout: usize,
    stderr: usize,
}

/// Instantiates the component and calls its `run`, within the node's time limit.
async fn call_run(
    store: &mut Store<NodeHost>,
    pre: &NodePre<NodeHost>,
    context: &NodeContext,
    state: &str,
    limits: &NodeLimits,
) -> Outcome {
    // Boxed: wasmtime's instantiation and call futures are kilobytes, which the timeout would
    // otherwise take by copy.
    let call = Box::pin(async {
        match pre.instantiate_async(&mut *store).await {
            Ok(node) => Outcome::Called(node.call_run(&mut *store, context, state).await),
            Err(e) => Outcome::Instantiate(e),
        }
    });
    // The deadline covers host calls too: an LLM call that never returns is dropped with it.
    tokio::time::timeout(limits.timeout(), call)
        .await
        .unwrap_or(Outcome::TimedOut)
}

/// Closes the spans the guest left open, forwards its captured output (what is new since
/// `forwarded`) to the log, and collects what the verdict needs from the capabilities.
pub(super) fn clean_up(
    host: &mut NodeHost,
    node: &str,
    outcome: &Outcome,
    forwarded: &mut Forwarded,
) -> Aftermath {
    let capabilities = &mut host.capabilities;
    let leaked_spans = capabilities.trace.close_leaked(outcome.why());
    let budget = &mut capabilities.log.budget;
    let stdout = host.stdout.contents();
    forward_output(
        node,
        "stdout",
        stdout.get(forwarded.stdout..).unwrap_or_default(),
        budget,
    );
    forwarded.stdout = stdout.len();
    let all_stderr = host.stderr.contents();
    let stderr = all_stderr.slice(forwarded.stderr.min(all_stderr.len())..);
    forwarded.stderr = all_stderr.len();
    forward_output(node, "stderr", &stderr, budget);
    let dropped = [
        ("kettle.log.dropped_lines", budget.dropped()),
        ("kettle.log.dropped_bytes", budget.dropped_bytes()),
        (
            "kettle.output.dropped_bytes",
            host.stdout.dropped() + host.stderr.dropped(),
        ),
    ];
    for (key, count) in dropped {
        if count > 0 {
            let count = i64::try_from(count).unwrap_or(i64::MAX);
            capabilities
                .trace
                .node_span()
                .set_attribute(KeyValue::new(key, count));
        }
    }
    Aftermath {
        leaked_spans,
        stderr,
        last_llm_error: capabilities.llm.quota.last_error().map(str::to_string),
        memory_refused: host.limiter.memory_refused,
        breach: capabilities.llm.quota.breach().cloned(),
    }
}

/// The execution's result, from its outcome and what the host learnt.
pub(super) fn judge(
    outcome: Outcome,
    aftermath: Aftermath,
    limits: &NodeLimits,
) -> Result<NodeOutput, NodeFailure> {
    match outcome {
        Outcome::TimedOut => Err(NodeFailure::Limit {
            limit: "timeout_ms",
            value: limits.timeout_ms,
            detail: "the execution did not finish in time (host calls included)".into(),
        }),
        Outcome::Instantiate(_) if aftermath.memory_refused => Err(memory_limit(limits)),
        Outcome::Instantiate(e) => Err(NodeFailure::Instantiate {
            message: format!("{e:#}"),
        }),
        Outcome::Called(called) => judge_call(called, aftermath, limits),
    }
}

/// The result of a `run` call that completed (returned, failed or trapped).
fn judge_call(
    called: wasmtime::Result<Result<String, NodeError>>,
    aftermath: Aftermath,
    limits: &NodeLimits,
) -> Result<NodeOutput, NodeFailure> {
    // A refused LLM call caused by a limit fails the execution, whatever the node did next.
    if let Some(breach) = aftermath.breach {
        return Err(NodeFailure::Limit {
            limit: breach.limit,
            value: breach.value,
            detail: "the node asked for more LLM use than it is allowed".into(),
        });
    }
    match called {
        Ok(Ok(update)) if update.len() as u64 > limits.max_output_bytes => {
            Err(NodeFailure::Limit {
                limit: "max_output_bytes",
                value: limits.max_output_bytes,
                detail: format!("the node returned {} bytes", update.len()),
            })
        }
        Ok(Ok(update)) => Ok(NodeOutput {
            update,
            leaked_spans: aftermath.leaked_spans,
        }),
        // A guest that catches the refusal (Python's MemoryError) still hit the limit.
        Ok(Err(_)) if aftermath.memory_refused => Err(NodeFailure::Limit {
            limit: "memory_mb",
            value: limits.memory_mb,
            detail: "the node asked for more memory and gave up when refused".into(),
        }),
        Ok(Err(error)) => Err(guest_failure(error, aftermath.last_llm_error.as_deref())),
        Err(trap) => Err(trap_failure(
            &trap,
            limits,
            aftermath.memory_refused,
            &aftermath.stderr,
        )),
    }
}

fn guest_failure(error: NodeError, last_llm_error: Option<&str>) -> NodeFailure {
    let (kind, message) = match error {
        NodeError::InvalidInput(m) => ("invalid_input".to_string(), m),
        // The provider's own verdict, when the node gave up after a failed call.
        NodeError::Llm(m) => (
            last_llm_error.map_or_else(|| "llm".to_string(), |e| format!("llm.{e}")),
            m,
        ),
        NodeError::Failed(m) => ("failed".to_string(), m),
    };
    // The message ends up on a terminal: what the node wrote stays one line of plain text.
    let message = crate::redact::controls(&message).into_owned();
    NodeFailure::Guest { kind, message }
}

fn trap_failure(
    trap: &wasmtime::Error,
    limits: &NodeLimits,
    memory_refused: bool,
    stderr: &[u8],
) -> NodeFailure {
    match trap.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => {
            return NodeFailure::Limit {
                limit: "fuel",
                value: limits.fuel.unwrap_or(u64::MAX),
                detail: "the node used up its instruction budget".into(),
            };
        }
        Some(Trap::StackOverflow) => {
            return NodeFailure::Trap {
                kind: "stack_overflow",
                message: "the node exhausted its call stack (unbounded recursion?)".into(),
            };
        }
        _ => {}
    }
    if memory_refused {
        return memory_limit(limits);
    }
    if let Some(how) = shadow_stack_overflow(trap) {
        return NodeFailure::Trap {
            kind: "stack_overflow",
            message: format!(
                "the node exhausted its stack in linear memory (unbounded recursion or large stack frames?): {how}"
            ),
        };
    }
    let mut message = trap.root_cause().to_string();
    let stderr = String::from_utf8_lossy(stderr);
    let last: Vec<&str> = stderr.lines().rev().take(5).collect();
    if !last.is_empty() {
        message.push_str("; the node's last stderr lines: ");
        let last = last.into_iter().rev().collect::<Vec<_>>().join(" | ");
        message.push_str(&crate::redact::controls(&last));
    }
    NodeFailure::Trap {
        kind: "trap",
        message,
    }
}

fn memory_limit(limits: &NodeLimits) -> NodeFailure {
    NodeFailure::Limit {
        limit: "memory_mb",
        value: limits.memory_mb,
        detail: "the node asked for more memory (all its memories and tables together) and crashed when refused".into(),
    }
}

/// Frames of the innermost function a backtrace must hold for an out-of-bounds access in it
/// to count as the end of a runaway recursion.
const RECURSION_FRAMES: usize = 8;

/// Whether an out-of-bounds access is a shadow-stack overflow, and why it is taken for one.
/// Compilers targeting wasm32 (Rust, C) keep the stack at the bottom of linear memory, growing
/// down: a stack pointer run past its bottom wraps to the top of the 32-bit address space. An
/// access there is one sign; a fault inside a function that recursed many times is the other
/// (the bulk-memory instructions that zero a large frame do not report their address).
fn shadow_stack_overflow(trap: &wasmtime::Error) -> Option<String> {
    if trap.downcast_ref::<Trap>() != Some(&Trap::MemoryOutOfBounds) {
        return None;
    }
    if let Some(address) = wrapped_fault_address(trap) {
        return Some(format!(
            "it accessed wasm address 0x{address:x}, below address 0"
        ));
    }
    let frames = trap.downcast_ref::<WasmBacktrace>()?.frames();
    let innermost = frames.first()?;
    let depth = frames
        .iter()
        .filter(|f| {
            f.func_index() == innermost.func_index() && Module::same(f.module(), innermost.module())
        })
        .count();
    (depth >= RECURSION_FRAMES).then(|| {
        let name = innermost.func_name().unwrap_or("<unnamed>");
        format!("an out-of-bounds access after {depth} nested calls of `{name}`")
    })
}

/// The address of a memory fault that wrapped below address 0, when wasmtime reports one.
fn wrapped_fault_address(trap: &wasmtime::Error) -> Option<u64> {
    // wasmtime describes the fault as "memory fault at wasm address 0x… in linear memory of
    // size 0x…"; the type that carries it is not public.
    trap.chain().find_map(|cause| {
        let text = cause.to_string();
        let rest = text.strip_prefix("memory fault at wasm address 0x")?;
        let (address, rest) = rest.split_once(' ')?;
        let size = rest.strip_prefix("in linear memory of size 0x")?;
        let address = u64::from_str_radix(address, 16).ok()?;
        let size = u64::from_str_radix(size.trim(), 16).ok()?;
        (address >= 1 << 31 && address >= size).then_some(address)
    })
}

/// Forwards captured output to the host's log, line by line, within the node's log budget.
fn forward_output(node: &str, stream: &str, bytes: &[u8], budget: &mut LogBudget) {
    for line in String::from_utf8_lossy(bytes).lines() {
        if let Some(line) = budget.admit(line) {
            tracing::info!(target: "kettle::node", node, stream, "{line}");
        }
    }
}
