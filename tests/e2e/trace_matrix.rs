//! The trace-integrity matrix: each case runs an agent with both the file and the OTLP
//! exporter (to a real OTLP/HTTP receiver decoding protobuf) and checks the same promises on
//! both copies of the trace: one trace id, every parent present, the expected span names and
//! counts under the right parents, and GenAI attributes of the right types.
//!

use crate::support::otlp_receiver::{Mode, OtlpReceiver};
use crate::support::{Scratch, assert_whole_trace, children, names, repo, stderr};
use kettle::telemetry::SpanRecord;
use std::collections::BTreeSet;

/// One row of the matrix.
struct Case<'a> {
    /// The agent file, with `{shapes}` standing for the trace-shapes test node's folder.
    agent: &'a str,
    /// Whether the run is meant to succeed.
    succeeds: bool,
    /// Checks specific to the case, run on the file copy and on the OTLP copy.
    check: fn(&Trace),
}

/// One copy of a run's trace.
struct Trace {
    source: &'static str,
    spans: Vec<SpanRecord>,
}

impl Trace {
    fn named(&self, name: &str) -> Vec<&SpanRecord> {
        self.spans.iter().filter(|s| s.name == name).collect()
    }

    fn one(&self, name: &str) -> &SpanRecord {
        let found = self.named(name);
        assert_eq!(found.len(), 1, "[{}] spans named `{name}`", self.source);
        found[0]
    }

    fn children_of(&self, parent: &SpanRecord) -> Vec<&SpanRecord> {
        children(&self.spans, parent)
    }

    fn count(&self, name: &str) -> usize {
        self.named(name).len()
    }
}

fn run_case(case: &Case) {
    let scratch = Scratch::new();
    let receiver = OtlpReceiver::start(Mode::Accept);
    let shapes = repo().join("tests/nodes/trace-shapes");
    let yaml = case
        .agent
        .replace("{shapes}", &shapes.display().to_string());
    let agent = scratch.agent("agent.yaml", &yaml);
    let output = scratch.run(
        &agent,
        &[
            "--trace-exporter",
            "file,otlp",
            "--trace-endpoint",
            &receiver.endpoint(),
        ],
    );
    assert_eq!(
        output.status.success(),
        case.succeeds,
        "exit status {}:\n{}",
        output.status,
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("warning:"),
        "no span was dropped:\n{}",
        stderr(&output)
    );

    let file = scratch.only_trace();
    let root = assert_whole_trace(&file);
    let run_id = root.attributes["kettle.run.id"]
        .as_str()
        .expect("the root carries the run id")
        .to_string();
    // The summary says every span reached the collector (none lost, none left in the spool).
    assert!(
        stderr(&output).contains(&format!("delivered {} spans to ", file.len())),
        "the summary claims each span delivered:\n{}",
        stderr(&output)
    );
    let otlp = receiver.run(&run_id);
    // The same spans reached both exporters, and only this run's spans reached the receiver.
    assert_eq!(
        span_ids(&otlp),
        span_ids(&file),
        "OTLP and file copies differ:\n{}",
        stderr(&output)
    );
    assert_eq!(receiver.spans().len(), file.len());
    for export in receiver.exports() {
        assert_eq!(export.path, "/v1/traces");
        assert_eq!(export.content_type, "application/x-protobuf");
        assert_eq!(export.service_names, ["kettle"]);
    }

    for trace in [
        Trace {
            source: "file",
            spans: file,
        },
        Trace {
            source: "otlp",
            spans: otlp,
        },
    ] {
        let root = assert_whole_trace(&trace.spans);
        assert_eq!(root.kind, "internal");
        assert_eq!(root.attributes["gen_ai.operation.name"], "invoke_agent");
        assert!(root.attributes["input.value"].is_string());
        assert!(root.attributes["output.value"].is_string());
        for span in &trace.spans {
            assert_eq!(
                span.attributes["kettle.run.id"], run_id,
                "[{}] `{}` carries its run id",
                trace.source, span.name
            );
            assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        }
        for chat in trace
            .spans
            .iter()
            .filter(|s| s.name.starts_with("chat ") && s.status.code != "error")
        {
            assert_chat_types(trace.source, chat);
        }
        (case.check)(&trace);
    }
}

fn span_ids(spans: &[SpanRecord]) -> BTreeSet<String> {
    spans.iter().map(|s| s.span_id.clone()).collect()
}

/// GenAI attributes of a successful `chat` span, with their OpenTelemetry types.
fn assert_chat_types(source: &str, chat: &SpanRecord) {
    let a = &chat.attributes;
    assert_eq!(
        chat.kind, "client",
        "[{source}] chat spans are CLIENT spans"
    );
    assert_eq!(a["gen_ai.operation.name"], "chat");
    assert_eq!(a["gen_ai.provider.name"], "mock");
    assert_eq!(a["gen_ai.system"], "mock");
    assert_eq!(a["gen_ai.request.model"], "mock-1");
    assert_eq!(a["gen_ai.response.model"], "mock-1");
    assert!(
        a["gen_ai.response.id"]
            .as_str()
            .is_some_and(|id| id.starts_with("mock-")),
        "[{source}] response id: {:?}",
        a.get("gen_ai.response.id")
    );
    assert_eq!(
        a["gen_ai.response.finish_reasons"],
        serde_json::json!(["stop"])
    );
    for key in ["gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"] {
        assert!(
            a[key].is_i64(),
            "[{source}] {key} is an integer: {:?}",
            a[key]
        );
    }
    // The trace-shapes node sets these; the built-in llm.call node of `across` does not.
    if a.contains_key("gen_ai.request.temperature") {
        assert!(a["gen_ai.request.temperature"].is_f64());
        assert_eq!(a["gen_ai.request.temperature"], 0.5);
        assert_eq!(a["gen_ai.request.max_tokens"], 50);
        assert!(a["gen_ai.request.max_tokens"].is_i64());
        assert_eq!(a["gen_ai.request.top_p"], 0.9);
        assert!(a["gen_ai.request.top_p"].is_f64());
    }
    assert!(
        !a.contains_key("gen_ai.input.messages"),
        "content is not captured unless asked"
    );
}

/// A node span's `chat` children: `n` of them.
fn assert_calls_under(trace: &Trace, parent: &SpanRecord, n: usize) {
    let kids = trace.children_of(parent);
    assert_eq!(
        names(&kids),
        vec!["chat mock-1".to_string(); n],
        "[{}] the LLM calls are children of `{}`",
        trace.source,
        parent.name
    );
}

fn calls_in_one_node(n: usize) -> String {
    format!(
        "name: calls\nnodes:\n  - name: shapes\n    component: {{shapes}}\n    config: {{calls: {n}}}\n"
    )
}

fn check_calls(trace: &Trace) {
    let node = trace.one("node shapes");
    let n = trace.count("chat mock-1");
    assert_calls_under(trace, node, n);
    assert_eq!(trace.spans.len(), 2 + n);
}

#[test]
fn one_llm_call_in_a_node() {
    run_case(&Case {
        agent: &calls_in_one_node(1),
        succeeds: true,
        check: |t| {
            assert_eq!(t.count("chat mock-1"), 1);
            check_calls(t);
        },
    });
}

#[test]
fn two_llm_calls_in_a_node() {
    run_case(&Case {
        agent: &calls_in_one_node(2),
        succeeds: true,
        check: |t| {
            assert_eq!(t.count("chat mock-1"), 2);
            check_calls(t);
        },
    });
}

#[test]
fn ten_llm_calls_in_a_node() {
    run_case(&Case {
        agent: &calls_in_one_node(10),
        succeeds: true,
        check: |t| {
            assert_eq!(t.count("chat mock-1"), 10);
            check_calls(t);
        },
    });
}

#[test]
fn llm_calls_across_nodes() {
    let agent = "\
name: across
nodes:
  - name: first
    component: {shapes}
    config: {calls: 2}
  - name: ask
    uses: llm.call
    with:
      prompt: \"How many answers so far? {{ state.first_answers | length }}\"
    output: asked
  - name: last
    component: {shapes}
    config: {calls: 1}
edges:
  - {from: __start__, to: first}
  - {from: first, to: ask}
  - {from: ask, to: last}
";
    run_case(&Case {
        agent,
        succeeds: true,
        check: |t| {
            let root = assert_whole_trace(&t.spans);
            assert_eq!(
                names(&t.children_of(root)),
                ["node first", "node ask", "node last"]
            );
            assert_calls_under(t, t.one("node first"), 2);
            assert_calls_under(t, t.one("node ask"), 1);
            assert_calls_under(t, t.one("node last"), 1);
            assert_eq!(t.spans.len(), 1 + 3 + 4);
        },
    });
}

#[test]
fn failed_llm_calls_are_error_spans_with_their_type() {
    run_case(&Case {
        agent: "name: failing\nnodes:\n  - name: shapes\n    component: {shapes}\n    config: {calls: 1, failing_calls: 2}\n",
        succeeds: true,
        check: |t| {
            let node = t.one("node shapes");
            assert_calls_under(t, node, 3);
            let failed: Vec<_> = t
                .spans
                .iter()
                .filter(|s| s.status.code == "error")
                .collect();
            assert_eq!(failed.len(), 2, "[{}]", t.source);
            for span in failed {
                assert_eq!(span.name, "chat mock-1");
                assert_eq!(span.attributes["error.type"], "invalid_request");
                assert_eq!(
                    span.status.message.as_deref(),
                    Some("invalid request: the request has no messages")
                );
                assert!(!span.attributes.contains_key("gen_ai.usage.input_tokens"));
            }
            assert_eq!(node.status.code, "ok");
        },
    });
}

#[test]
fn nested_guest_spans() {
    run_case(&Case {
        agent: "name: nested\nnodes:\n  - name: shapes\n    component: {shapes}\n    config: {depth: 3, calls: 2}\n",
        succeeds: true,
        check: |t| {
            let node = t.one("node shapes");
            let (l1, l2, l3) = (t.one("level 1"), t.one("level 2"), t.one("level 3"));
            assert_eq!(names(&t.children_of(node)), ["level 1"]);
            assert_eq!(names(&t.children_of(l1)), ["level 2"]);
            assert_eq!(names(&t.children_of(l2)), ["level 3"]);
            assert_calls_under(t, l3, 2);
            for (depth, level) in [l1, l2, l3].into_iter().enumerate() {
                assert_eq!(level.attributes["test.level"], depth as i64 + 1);
                assert!(level.attributes["test.level"].is_i64());
                assert!(!level.attributes.contains_key("kettle.span.leaked"));
                assert_eq!(level.status.code, "unset");
                assert_eq!(level.attributes["kettle.span.origin"], "guest");
            }
            assert_eq!(t.spans.len(), 2 + 3 + 2);
        },
    });
}

#[test]
fn a_leaked_guest_span() {
    let leaky = repo().join("tests/nodes/leaky-span");
    let agent = format!(
        "name: leaky\nnodes:\n  - name: leaky\n    component: {}\n",
        leaky.display()
    );
    run_case(&Case {
        agent: &agent,
        succeeds: true,
        check: |t| {
            let node = t.one("node leaky");
            assert_eq!(node.attributes["kettle.node.leaked_spans"], 2);
            let (outer, inner) = (t.one("outer"), t.one("inner"));
            assert_eq!(names(&t.children_of(node)), ["outer"]);
            assert_eq!(names(&t.children_of(outer)), ["inner"]);
            assert_eq!(names(&t.children_of(inner)), ["chat mock-1", "closed"]);
            for leaked in [outer, inner] {
                assert_eq!(leaked.attributes["kettle.span.leaked"], true);
                assert_eq!(leaked.status.code, "error");
            }
            assert_eq!(t.spans.len(), 6);
        },
    });
}

#[test]
fn a_guest_trap_in_the_middle_of_a_span() {
    run_case(&Case {
        agent: "name: trap\nnodes:\n  - name: shapes\n    component: {shapes}\n    config: {depth: 2, calls: 1, trap: true}\n",
        succeeds: false,
        check: |t| {
            let root = assert_whole_trace(&t.spans);
            assert_eq!(root.status.code, "error");
            let node = t.one("node shapes");
            assert_eq!(node.status.code, "error");
            assert_eq!(node.attributes["error.type"], "trap");
            assert_eq!(node.attributes["kettle.node.leaked_spans"], 2);
            let (l1, l2) = (t.one("level 1"), t.one("level 2"));
            assert_eq!(names(&t.children_of(node)), ["level 1"]);
            assert_eq!(names(&t.children_of(l1)), ["level 2"]);
            assert_calls_under(t, l2, 1);
            for leaked in [l1, l2] {
                assert_eq!(leaked.attributes["kettle.span.leaked"], true);
                assert_eq!(leaked.status.code, "error");
                assert!(
                    leaked
                        .status
                        .message
                        .as_deref()
                        .is_some_and(|m| m.contains("crashed")),
                    "{:?}",
                    leaked.status
                );
                assert!(leaked.end_time_unix_nano <= node.end_time_unix_nano);
            }
            assert_eq!(t.spans.len(), 5);
        },
    });
}

#[test]
fn a_million_guest_spans_and_huge_attributes_hit_the_node_caps() {
    let agent = "\
name: flood
settings:
  tracing:
    max_spans_per_node: 100
    max_attribute_bytes_per_node: 50000
nodes:
  - name: shapes
    component: {shapes}
    config: {flood: 1000000, big_attribute: 100000, attribute_repeats: 50, calls: 1}
";
    run_case(&Case {
        agent,
        succeeds: true,
        check: |t| {
            let node = t.one("node shapes");
            assert_eq!(
                t.count("flood"),
                100,
                "[{}] spans past the cap are not exported",
                t.source
            );
            assert_eq!(node.attributes["kettle.node.dropped_spans"], 999_900);
            // 100 span names (5 bytes each), then 12 attributes of 4096 + key bytes fit.
            let big: Vec<_> = node
                .attributes
                .iter()
                .filter(|(k, _)| k.starts_with("test.big."))
                .collect();
            assert_eq!(big.len(), 12, "[{}]", t.source);
            for (_, value) in big {
                let value = value.as_str().expect("text");
                assert!(value.starts_with(&"x".repeat(4096)));
                assert!(value.ends_with("…[95904 more bytes]"), "{}", &value[4090..]);
            }
            assert_eq!(node.attributes["kettle.node.dropped_attributes"], 38);
            let kids = t.children_of(node);
            assert_eq!(kids.iter().filter(|s| s.name == "flood").count(), 100);
            assert_eq!(kids.last().map(|s| s.name.as_str()), Some("chat mock-1"));
            assert_eq!(t.spans.len(), 2 + 100 + 1);
        },
    });
}

#[test]
fn a_parallel_fan_out() {
    run_case(&Case {
        agent: "name: fanout
nodes:
  - name: fork
    run: {type: expression, value: \"1\", output_key: forked}
  - name: a
    component: {shapes}
    config: {calls: 2}
  - name: b
    component: {shapes}
    config: {calls: 2}
  - name: join
    fan_in: true
    run: {type: expression, value: \"parallel_results | length\", output_key: n}
edges:
  - {from: fork, to: a, type: parallel, fan_in: join}
  - {from: fork, to: b, type: parallel, fan_in: join}
  - {from: a, to: join}
  - {from: b, to: join}
",
        succeeds: true,
        check: |t| {
            let group = t.one("parallel fork");
            let mut branches = names(&t.children_of(group));
            branches.sort();
            assert_eq!(branches, ["node a", "node b"], "[{}]", t.source);
            assert_calls_under(t, t.one("node a"), 2);
            assert_calls_under(t, t.one("node b"), 2);
            // root, fork, the group, two branches, four calls, the fan-in node.
            assert_eq!(t.spans.len(), 10, "[{}]", t.source);
        },
    });
}

#[test]
fn a_dynamic_parallel_fan_out() {
    run_case(&Case {
        agent: "name: dynamic
nodes:
  - name: each
    type: dynamic_parallel
    items: \"{{ [1, 2, 3] }}\"
    component: {shapes}
    config: {calls: 1}
    output: results
",
        succeeds: true,
        check: |t| {
            let node = t.one("node each");
            let mut items = names(&t.children_of(node));
            items.sort();
            assert_eq!(items, ["item 0", "item 1", "item 2"], "[{}]", t.source);
            for item in t.children_of(node) {
                assert_calls_under(t, item, 1);
            }
            assert_eq!(t.spans.len(), 1 + 1 + 3 + 3, "[{}]", t.source);
        },
    });
}

#[test]
fn a_node_killed_by_its_time_limit_during_an_llm_call() {
    use crate::support::openai_server::{Behaviour, FakeOpenAi};
    let server = FakeOpenAi::start(Behaviour::Hang);
    let agent = format!(
        "name: killed
settings:
  llm: {{provider: openai, model: mock-1, base_url: '{}'}}
nodes:
  - name: shapes
    component: {{shapes}}
    config: {{depth: 1, calls: 1}}
    limits: {{timeout_ms: 1000}}
",
        server.base_url()
    );
    run_case(&Case {
        agent: &agent,
        succeeds: false,
        check: |t| {
            let node = t.one("node shapes");
            assert_eq!(node.status.code, "error", "[{}]", t.source);
            assert_eq!(node.attributes["error.type"], "limit.timeout_ms");
            let level = t.one("level 1");
            assert_eq!(
                level.attributes["kettle.span.leaked"], true,
                "[{}] closed by the host",
                t.source
            );
            let calls = t.children_of(level);
            assert_eq!(names(&calls), ["chat mock-1"], "[{}]", t.source);
            assert_eq!(calls[0].status.code, "error");
            assert_eq!(calls[0].attributes["kettle.cancelled"], true);
        },
    });
}
