//! The `llm` import: chat completions performed by the host, each one a `chat {model}` span
//! parented under the node's innermost open span, within the node's quota and the run's budget.

mod call;
mod convert;
mod host;
mod quota;
mod stream;
mod usage;
mod watch;

pub use call::{traced_call, traced_stream};
pub use quota::{LimitBreach, LlmGrant, LlmQuota, RunBudget};
pub use stream::{GuestStream, TracedStream};
pub use usage::{LlmUsage, ProviderCalls};
pub use watch::{CallEnded, LlmWatcher, NodeWatch};

use super::capability::{Capability, CapabilityView, NodeSetup, RunSetup};
use super::trace::NodeTrace;
use crate::checkpoint::ExecutionTape;
use crate::llm::LlmClient;
use crate::telemetry::ContentPolicy;
use std::sync::Arc;
use wasmtime::component::{HasData, Linker, ResourceTable};

/// The run's LLM client, budget and usage counters, shared by its nodes.
#[derive(Debug, Clone)]
pub struct RunLlm {
    pub client: Arc<LlmClient>,
    pub usage: Arc<LlmUsage>,
    pub budget: RunBudget,
    pub content: ContentPolicy,
    /// Told each streamed delta and each call's latency (the run's progress events).
    pub watcher: Option<Arc<dyn LlmWatcher>>,
}

impl RunLlm {
    /// The run's watcher, bound to node `node`'s calls.
    pub fn watch(&self, node: &str) -> Option<NodeWatch> {
        self.watcher.clone().map(|w| NodeWatch::new(w, node))
    }

    /// The LLM allowance of one execution of a node.
    pub fn quota(&self, node: &NodeSetup<'_>) -> LlmQuota {
        LlmQuota::new(
            node.limits.max_llm_calls,
            node.limits.max_llm_tokens,
            node.llm.models.clone(),
            node.llm.providers.clone(),
            self.budget,
        )
    }
}

/// Per-node LLM state, kept in the node's `Store`.
#[derive(Debug)]
pub struct NodeLlm {
    pub client: Arc<LlmClient>,
    pub usage: Arc<LlmUsage>,
    pub quota: LlmQuota,
    /// Whether prompts and answers go on the `chat` spans.
    pub content: ContentPolicy,
    /// The execution's LLM tape in a durable run (see `checkpoint::ExecutionTape`).
    pub tape: Option<Arc<ExecutionTape>>,
    /// The run's watcher, bound to this node.
    pub watch: Option<NodeWatch>,
}

/// What the `llm` import sees of the store: its own state, the resource table (streams) and,
/// read-only, the node's trace.
pub struct LlmCtx<'a> {
    pub llm: &'a mut NodeLlm,
    pub trace: &'a NodeTrace,
    pub table: &'a mut ResourceTable,
}

/// The `llm` capability; also names [`LlmCtx`] for `add_to_linker`.
pub struct LlmCapability;

impl HasData for LlmCapability {
    type Data<'a> = LlmCtx<'a>;
}

impl Capability for LlmCapability {
    type RunState = RunLlm;
    type NodeState = NodeLlm;

    fn configure(run: &RunSetup<'_>) -> RunLlm {
        RunLlm {
            client: run.llm.clone(),
            usage: Arc::new(LlmUsage::default()),
            budget: run.budget,
            content: run.content,
            watcher: run.llm_watcher.clone(),
        }
    }

    fn prepare(run: &RunLlm, node: &NodeSetup<'_>) -> NodeLlm {
        NodeLlm {
            client: run.client.clone(),
            usage: run.usage.clone(),
            quota: run.quota(node),
            content: run.content,
            tape: node.tape.clone(),
            watch: run.watch(node.node),
        }
    }

    fn link<T: CapabilityView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
        super::bindings::llm::add_to_linker::<T, LlmCapability>(linker, llm_ctx::<T>)
    }
}

fn llm_ctx<T: CapabilityView>(host: &mut T) -> LlmCtx<'_> {
    let view = host.capabilities();
    LlmCtx {
        llm: &mut view.states.llm,
        trace: &view.states.trace,
        table: view.table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities::bindings::llm as wit;
    use crate::capabilities::test_support::{RUN_ID, TestTrace, attribute};
    use crate::spec::NodeLimits;
    use crate::telemetry::{SpanCaps, SpanHandle};
    use opentelemetry::trace::SpanKind;
    use std::sync::atomic::Ordering;
    use wit::Host as _;

    fn run_llm(test: &TestTrace, budget: RunBudget) -> RunLlm {
        LlmCapability::configure(&RunSetup {
            run_id: RUN_ID,
            llm: &Arc::new(LlmClient::mock()),
            budget,
            tracer: &test.tracer,
            span_caps: SpanCaps::default(),
            max_spans: 100,
            content: ContentPolicy::default(),
            answer: None,
            llm_watcher: None,
        })
    }

    fn ctx<'a>(
        llm: &'a mut NodeLlm,
        trace: &'a NodeTrace,
        table: &'a mut ResourceTable,
    ) -> LlmCtx<'a> {
        LlmCtx { llm, trace, table }
    }

    fn node_llm(run: &RunLlm, span: &SpanHandle, max_llm_calls: Option<u64>) -> NodeLlm {
        let limits = NodeLimits {
            max_llm_calls,
            ..NodeLimits::default()
        };
        LlmCapability::prepare(
            run,
            &NodeSetup {
                node: "ask",
                span,
                limits: &limits,
                llm: &LlmGrant::default(),
                tape: None,
            },
        )
    }

    fn hello() -> wit::Request {
        wit::Request {
            messages: vec![wit::Message {
                role: wit::Role::User,
                content: "hello there".into(),
            }],
            model: None,
            temperature: None,
            max_tokens: None,
            stop: Vec::new(),
            extra: None,
        }
    }

    #[test]
    fn nodes_share_the_runs_usage_and_budget_but_not_their_quota() {
        let test = TestTrace::new();
        let span = test.node_span();
        let budget = RunBudget {
            max_llm_calls: Some(2),
            max_llm_tokens: None,
        };
        let run = run_llm(&test, budget);
        let (mut a, mut b) = (node_llm(&run, &span, Some(1)), node_llm(&run, &span, None));
        assert!(Arc::ptr_eq(&a.usage, &run.usage) && Arc::ptr_eq(&b.usage, &run.usage));
        let request = crate::llm::ChatRequest {
            messages: vec![crate::llm::ChatMessage::new(crate::llm::Role::User, "hi")],
            ..Default::default()
        };
        // Node a: its own max_llm_calls=1.
        assert!(a.quota.admit(&a.client, &request, &a.usage).is_ok());
        assert!(a.quota.admit(&a.client, &request, &a.usage).is_err());
        assert_eq!(a.quota.breach().map(|l| l.limit), Some("max_llm_calls"));
        // Node b has no limit of its own, but the run's budget counts node a's call.
        assert!(b.quota.admit(&b.client, &request, &b.usage).is_ok());
        assert_eq!(
            run.usage.calls.load(Ordering::Relaxed),
            2,
            "admitted calls count"
        );
        assert!(b.quota.admit(&b.client, &request, &b.usage).is_err());
        assert_eq!(
            b.quota.breach().map(|l| l.limit),
            Some("budget.max_llm_calls")
        );
    }

    #[tokio::test]
    async fn a_guest_call_is_a_chat_span_under_the_node_and_counts_against_its_quota() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let run = run_llm(&test, RunBudget::default());
        let mut llm = node_llm(&run, &node_span, Some(1));
        let trace = NodeTrace::new(test.tracer.clone(), node_span.clone());
        let mut table = ResourceTable::new();
        let mut ctx = ctx(&mut llm, &trace, &mut table);

        let response = ctx.call(hello()).await.unwrap().unwrap();
        assert_eq!(response.content, "[mock] hello there");
        assert_eq!(response.model, "mock-1");
        match ctx.call(hello()).await.unwrap() {
            Err(wit::LlmError::Denied(message)) => {
                assert_eq!(message, "max_llm_calls=1 is used up (1 used)")
            }
            other => panic!("expected a denial, got {other:?}"),
        }
        assert_eq!(
            run.usage.calls.load(Ordering::Relaxed),
            1,
            "a denied call is not made"
        );
        assert_eq!(llm.quota.breach().map(|b| b.limit), Some("max_llm_calls"));
        drop(trace);
        node_span.end();

        let chats: Vec<_> = test
            .ended()
            .into_iter()
            .filter(|s| s.name.starts_with("chat "))
            .collect();
        assert_eq!(chats.len(), 1);
        let chat = &chats[0];
        assert_eq!(chat.name, "chat mock-1");
        assert_eq!(chat.span_kind, SpanKind::Client);
        assert_eq!(
            chat.parent_span_id,
            test.span("node test").span_context.span_id()
        );
        assert_eq!(attribute(chat, "kettle.llm.provider"), Some("mock".into()));
    }

    fn tell_me() -> wit::ChatRequest {
        wit::ChatRequest {
            messages: vec![wit::ChatMessage {
                role: wit::Role::User,
                content: "tell me a story".into(),
                tool_calls: Vec::new(),
                tool_call_id: None,
            }],
            model: None,
            temperature: None,
            max_tokens: None,
            stop: Vec::new(),
            seed: None,
            tools: Vec::new(),
            tool_choice: None,
            response_format: None,
            provider: None,
            extra: None,
        }
    }

    #[tokio::test]
    async fn a_streams_tokens_count_for_the_node_and_a_dropped_stream_counts_as_a_call() {
        use wasmtime::component::Resource;
        use wit::HostChatStream as _;
        let test = TestTrace::new();
        let node_span = test.node_span();
        let run = run_llm(&test, RunBudget::default());
        let limits = NodeLimits {
            max_llm_tokens: Some(1),
            ..NodeLimits::default()
        };
        let mut llm = LlmCapability::prepare(
            &run,
            &NodeSetup {
                node: "ask",
                span: &node_span,
                limits: &limits,
                llm: &LlmGrant::default(),
                tape: None,
            },
        );
        let trace = NodeTrace::new(test.tracer.clone(), node_span.clone());
        let mut table = ResourceTable::new();
        let mut ctx = ctx(&mut llm, &trace, &mut table);

        // Read to its end: its tokens count against max_llm_tokens.
        let stream = ctx.stream(tell_me()).await.unwrap().unwrap();
        while let Some(event) = ctx
            .next(Resource::new_borrow(stream.rep()))
            .await
            .unwrap()
            .unwrap()
        {
            if matches!(event, wit::StreamEvent::End(_)) {
                break;
            }
        }
        ctx.drop(stream).unwrap();
        match ctx.stream(tell_me()).await.unwrap() {
            Err(wit::LlmError::Denied(message)) => {
                assert!(
                    message.starts_with("max_llm_tokens=1 is used up"),
                    "{message}"
                )
            }
            other => panic!("expected a denial, got {other:?}"),
        }

        // Dropped after one delta: a call, and one token, of the run.
        let mut fresh = node_llm(&run, &node_span, None);
        let mut ctx = super::LlmCtx {
            llm: &mut fresh,
            trace: &trace,
            table: &mut table,
        };
        let stream = ctx.stream(tell_me()).await.unwrap().unwrap();
        let first = ctx.next(Resource::new_borrow(stream.rep())).await.unwrap();
        assert!(matches!(first, Ok(Some(wit::StreamEvent::Delta(_)))));
        let output_before = run.usage.output_tokens.load(Ordering::Relaxed);
        ctx.drop(stream).unwrap();
        assert_eq!(run.usage.calls.load(Ordering::Relaxed), 2);
        assert_eq!(run.usage.failed_calls.load(Ordering::Relaxed), 1);
        assert_eq!(
            run.usage.output_tokens.load(Ordering::Relaxed),
            output_before + 1
        );
    }

    /// What a watcher was told, in order.
    #[derive(Default)]
    struct Told(std::sync::Mutex<Vec<String>>);

    impl LlmWatcher for Told {
        fn delta(&self, node: &str, text: &str) {
            self.0.lock().unwrap().push(format!("{node} delta {text}"));
        }

        fn ended(&self, call: &CallEnded<'_>) {
            self.0.lock().unwrap().push(format!(
                "{} ended {}/{} ok={}",
                call.node, call.provider, call.model, call.ok
            ));
        }
    }

    #[tokio::test]
    async fn the_runs_watcher_is_told_each_delta_in_order_then_the_calls_end() {
        use wasmtime::component::Resource;
        use wit::HostChatStream as _;
        let test = TestTrace::new();
        let node_span = test.node_span();
        let told = Arc::new(Told::default());
        let run = LlmCapability::configure(&RunSetup {
            run_id: RUN_ID,
            llm: &Arc::new(LlmClient::mock()),
            budget: RunBudget::default(),
            tracer: &test.tracer,
            span_caps: SpanCaps::default(),
            max_spans: 100,
            content: ContentPolicy::default(),
            answer: None,
            llm_watcher: Some(told.clone()),
        });
        let mut llm = node_llm(&run, &node_span, None);
        let trace = NodeTrace::new(test.tracer.clone(), node_span.clone());
        let mut table = ResourceTable::new();
        let mut ctx = ctx(&mut llm, &trace, &mut table);

        let stream = ctx.stream(tell_me()).await.unwrap().unwrap();
        let mut deltas = Vec::new();
        while let Some(event) = ctx
            .next(Resource::new_borrow(stream.rep()))
            .await
            .unwrap()
            .unwrap()
        {
            match event {
                wit::StreamEvent::Delta(text) => deltas.push(format!("ask delta {text}")),
                wit::StreamEvent::End(_) => break,
            }
        }
        ctx.drop(stream).unwrap();
        ctx.call(hello()).await.unwrap().unwrap();

        assert!(deltas.len() > 1, "the mock streams word by word");
        let mut expected = deltas;
        expected.push("ask ended mock/mock-1 ok=true".into());
        expected.push("ask ended mock/mock-1 ok=true".into());
        assert_eq!(*told.0.lock().unwrap(), expected);
    }

    #[tokio::test]
    async fn a_request_the_host_cannot_parse_is_the_guests_error() {
        let test = TestTrace::new();
        let node_span = test.node_span();
        let run = run_llm(&test, RunBudget::default());
        let mut llm = node_llm(&run, &node_span, None);
        let trace = NodeTrace::new(test.tracer.clone(), node_span.clone());
        let mut table = ResourceTable::new();
        let mut ctx = ctx(&mut llm, &trace, &mut table);
        let request = wit::Request {
            extra: Some("[1, 2]".into()),
            ..hello()
        };
        match ctx.call(request).await.unwrap() {
            Err(wit::LlmError::InvalidRequest(message)) => {
                assert_eq!(message, "`extra` must be a JSON object")
            }
            other => panic!("expected an invalid request, got {other:?}"),
        }
        assert_eq!(run.usage.calls.load(Ordering::Relaxed), 0);
    }
}
