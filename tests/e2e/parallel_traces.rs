//! Every branch of a wide fan-out stays inside the run's one trace: 2, 16 and 128 parallel
//! branches and a 50-item `dynamic_parallel`, each branch a component node making two LLM
//! calls. One trace id, every parent present, span counts exact, every span where the engine
//! put it (whichever worker thread the branch happened to run on).

use crate::support::openai_server::{Behaviour, FakeOpenAi};
use crate::support::{Scratch, assert_whole_trace, children, final_state, names, repo, span};
use kettle::telemetry::SpanRecord;
use serde_json::{Value, json};
use std::collections::HashSet;

fn summarize() -> String {
    repo()
        .join("examples/hello/nodes/summarize")
        .display()
        .to_string()
}

/// `fork` fans out to `branches` copies of the two-call node, which join at `join`.
fn fan_out_agent(branches: usize) -> String {
    let mut yaml = String::from(
        "name: fan-out\nnodes:\n  - name: fork\n    run: {type: expression, value: \"'go'\", output_key: phase}\n",
    );
    for i in 0..branches {
        yaml.push_str(&format!(
            "  - name: b{i}\n    component: {}\n    config: {{default_topic: \"topic {i}\"}}\n",
            summarize()
        ));
    }
    yaml.push_str(
        "  - name: join\n    fan_in: true\n    run: {type: expression, value: \"parallel_results | map(attribute='topic') | list\", output_key: topics}\nedges:\n",
    );
    for i in 0..branches {
        yaml.push_str(&format!(
            "  - {{from: fork, to: b{i}, type: parallel, fan_in: join}}\n  - {{from: b{i}, to: join}}\n"
        ));
    }
    yaml
}

fn outline(topic: &str) -> String {
    format!("[mock] Write a three-point outline about {topic}.")
}

fn summary(topic: &str) -> String {
    format!(
        "[mock] Summarize this outline in one sentence: {}",
        outline(topic)
    )
}

fn check_fan_out(branches: usize) {
    let scratch = Scratch::new();
    let agent = scratch.agent("agent.yaml", &fan_out_agent(branches));
    let state = final_state(&scratch.run(&agent, &["--quiet"]));

    let topics: Vec<String> = (0..branches).map(|i| format!("topic {i}")).collect();
    assert_eq!(
        state["topics"],
        json!(topics),
        "branch states in edge order"
    );
    let results = state["parallel_results"].as_array().expect("results");
    assert_eq!(results.len(), branches);
    for (i, result) in results.iter().enumerate() {
        let topic = format!("topic {i}");
        assert_eq!(
            result,
            &json!({
                "phase": "go",
                "topic": topic,
                "outline": outline(&topic),
                "summary": summary(&topic),
            })
        );
    }

    let spans = scratch.only_trace();
    // root, fork, the parallel span, the fan-in node, and per branch its node and two calls.
    assert_eq!(spans.len(), 4 + 3 * branches);
    let root = assert_whole_trace(&spans);
    assert_eq!(
        names(&children(&spans, root)),
        ["node fork", "parallel fork", "node join"]
    );
    let group = span(&spans, "parallel fork");
    assert_eq!(
        group.attribute_i64("kettle.parallel.branches"),
        Some(branches as i64)
    );
    let branch_spans = children(&spans, group);
    let mut branch_names: Vec<String> = names(&branch_spans);
    branch_names.sort();
    let mut expected: Vec<String> = (0..branches).map(|i| format!("node b{i}")).collect();
    expected.sort();
    assert_eq!(branch_names, expected);
    for branch in &branch_spans {
        let calls = children(&spans, branch);
        assert_eq!(
            names(&calls),
            ["chat mock-1", "chat mock-1"],
            "{}",
            branch.name
        );
        let topic = format!("topic {}", &branch.name["node b".len()..]);
        assert_eq!(branch.attributes["hello.topic"], Value::from(topic));
        for call in calls {
            assert!(call.start_time_unix_nano >= branch.start_time_unix_nano);
            assert!(call.end_time_unix_nano <= branch.end_time_unix_nano);
        }
    }
    let join = span(&spans, "node join");
    assert!(join.start_time_unix_nano >= group.end_time_unix_nano);
}

#[test]
fn two_branches() {
    check_fan_out(2);
}

#[test]
fn sixteen_branches() {
    check_fan_out(16);
}

#[test]
fn a_hundred_and_twenty_eight_branches() {
    check_fan_out(128);
}

#[test]
fn dynamic_parallel_over_fifty_items() {
    let scratch = Scratch::new();
    let agent = scratch.agent(
        "agent.yaml",
        &format!(
            "name: fifty\nnodes:\n  - name: each\n    type: dynamic_parallel\n    items: \"{{{{ state.topics }}}}\"\n    item_var: topic\n    index_var: i\n    max_concurrency: 20\n    component: {}\n    output: results\n",
            summarize()
        ),
    );
    let topics: Vec<String> = (0..50).map(|i| format!("item {i}")).collect();
    let input = json!({ "topics": topics }).to_string();
    let state = final_state(&scratch.run(&agent, &["--quiet", "--input", &input]));
    let results = state["results"].as_array().expect("results");
    assert_eq!(results.len(), 50);
    for (i, result) in results.iter().enumerate() {
        let topic = format!("item {i}");
        assert_eq!(
            result,
            &json!({
                "index": i,
                "item": topic,
                "state": {
                    "topics": topics,
                    "topic": topic,
                    "i": i,
                    "outline": outline(&topic),
                    "summary": summary(&topic),
                },
            })
        );
    }

    let spans = scratch.only_trace();
    // root, the node, and per item its span and two calls.
    assert_eq!(spans.len(), 2 + 3 * 50);
    let root = assert_whole_trace(&spans);
    assert_eq!(names(&children(&spans, root)), ["node each"]);
    let node = span(&spans, "node each");
    let items: Vec<&SpanRecord> = children(&spans, node);
    assert_eq!(items.len(), 50);
    let indexes: HashSet<i64> = items
        .iter()
        .map(|s| s.attribute_i64("kettle.parallel.index").expect("index"))
        .collect();
    assert_eq!(indexes, (0..50).collect::<HashSet<i64>>());
    for item in items {
        let index = item.attribute_i64("kettle.parallel.index").expect("index");
        assert_eq!(item.name, format!("item {index}"));
        assert_eq!(
            names(&children(&spans, item)),
            ["chat mock-1", "chat mock-1"]
        );
    }
}

/// An agent whose LLM calls go to `server`, with a short timeout so that a run that never
/// reaches the server's gate fails instead of waiting.
fn with_server(yaml: &str, server: &FakeOpenAi) -> String {
    yaml.replacen(
        "nodes:\n",
        &format!(
            "settings:\n  llm: {{provider: openai, model: gpt-4o-mini, base_url: {}, api_key_env: KETTLE_TEST_KEY, timeout_ms: 20000}}\nnodes:\n",
            server.base_url()
        ),
        1,
    )
}

fn run_with_key(scratch: &Scratch, agent: &std::path::Path, input: &str) -> std::process::Output {
    scratch
        .kettle()
        .env("KETTLE_TEST_KEY", "sk-test")
        .arg("run")
        .arg(agent)
        .args(["--quiet", "--no-trace", "--input", input])
        .output()
        .expect("kettle runs")
}

#[test]
fn branches_are_in_flight_at_the_same_time() {
    // The server answers nobody until 4 calls wait at once: only concurrent branches finish.
    let server = FakeOpenAi::start(Behaviour::GateAt(4));
    let scratch = Scratch::new();
    let agent = scratch.agent("agent.yaml", &with_server(&fan_out_agent(4), &server));
    let state = final_state(&run_with_key(&scratch, &agent, "{}"));
    assert_eq!(
        state["topics"],
        json!(["topic 0", "topic 1", "topic 2", "topic 3"])
    );
    assert_eq!(server.requests().len(), 8);
    assert_eq!(server.max_in_flight(), 4);
}

#[test]
fn max_concurrency_bounds_the_items_in_flight() {
    let server = FakeOpenAi::start(Behaviour::GateAt(2));
    let scratch = Scratch::new();
    let yaml = format!(
        "name: bounded\nnodes:\n  - name: each\n    type: dynamic_parallel\n    items: \"{{{{ state.topics }}}}\"\n    item_var: topic\n    max_concurrency: 2\n    component: {}\n",
        summarize()
    );
    let agent = scratch.agent("agent.yaml", &with_server(&yaml, &server));
    let input = json!({"topics": ["a", "b", "c", "d", "e", "f"]}).to_string();
    let state = final_state(&run_with_key(&scratch, &agent, &input));
    let results = state["parallel_results"].as_array().expect("results");
    assert_eq!(results.len(), 6);
    assert_eq!(
        results[5]["state"]["outline"],
        "echo: Write a three-point outline about f."
    );
    assert_eq!(server.requests().len(), 12);
    assert_eq!(server.max_in_flight(), 2);
}
