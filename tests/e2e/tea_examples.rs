//! The Kettle versions of TEA examples (examples/tea/) give the results TEA documents.

use crate::support::{
    Scratch, assert_whole_trace, children, final_state, names, repo, span, stderr,
};
use serde_json::{Value, json};

fn run_example(scratch: &Scratch, name: &str, input: Value) -> std::process::Output {
    let agent = repo().join("examples/tea").join(name);
    scratch.run(&agent, &["--quiet", "--input", &input.to_string()])
}

#[test]
fn counter_loops_five_times_to_count_5_sum_15() {
    let scratch = Scratch::new();
    let output = run_example(&scratch, "counter.yaml", json!({"count": 0, "sum": 0}));
    assert_eq!(final_state(&output), json!({"count": 5, "sum": 15}));
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node = span(&spans, "node count_loop");
    assert_eq!(
        node.attributes["kettle.loop.exit_reason"],
        "condition_false"
    );
    assert_eq!(node.attribute_i64("kettle.loop.iterations"), Some(5));
    assert_eq!(
        names(&children(&spans, node)),
        [
            "iteration 1",
            "iteration 2",
            "iteration 3",
            "iteration 4",
            "iteration 5"
        ]
    );
}

#[test]
fn confidence_router_takes_the_first_matching_rule() {
    let scratch = Scratch::new();
    for (score, path) in [(0.95, "high"), (0.7, "low"), (0.2, "low")] {
        let output = run_example(&scratch, "confidence-router.yaml", json!({"score": score}));
        assert_eq!(final_state(&output), json!({"score": score, "path": path}));
    }
}

#[test]
fn batch_validator_cancels_after_the_invalid_item_and_reports() {
    // TEA's fail_fast: the items not finished when item 3 fails are cancelled, and the run
    // goes on to `report` with every item's result or error. Two items run at a time, on two
    // cores, so which of the others finished before item 3 failed varies; but item 3 starts
    // only once item 1 or item 2 has finished, so at least one of those two passed.
    let scratch = Scratch::new();
    let output = run_example(&scratch, "batch-validator.yaml", json!({}));
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let state: Value = serde_json::from_slice(&output.stdout).expect("state");
    let results = state["validation_results"].as_array().expect("results");
    assert_eq!(results.len(), 5);
    assert!(
        results[..2].iter().any(|r| r.get("state").is_some()),
        "{state}"
    );
    assert!(
        results[2]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.ends_with("Invalid value -50 for item 3")),
        "{state}"
    );
    for (index, result) in results.iter().enumerate().filter(|(i, _)| *i != 2) {
        assert_eq!(result["index"], index, "{state}");
        assert!(
            result.get("state").is_some() || result["error"]["kind"] == "cancelled",
            "{state}"
        );
    }
    let passed = results.iter().filter(|r| r.get("state").is_some()).count() as u64;
    assert_eq!(
        state["report"],
        json!({"passed_count": passed, "failed_count": 5 - passed})
    );
}

#[test]
fn document_processor_summarizes_every_document() {
    let scratch = Scratch::new();
    let state = final_state(&run_example(&scratch, "document-processor.yaml", json!({})));
    assert_eq!(state["total_processed"], 3);
    assert_eq!(
        state["document_summaries"],
        json!([
            {
                "id": "doc1",
                "title": "Introduction to AI",
                "keywords": ["artificial", "intelligence", "transforming", "industries..."],
                "word_count": 5,
                "status": "complete",
            },
            {
                "id": "doc2",
                "title": "Machine Learning Basics",
                "keywords": ["machine", "learning", "subset", "focuses"],
                "word_count": 10,
                "status": "complete",
            },
            {
                "id": "doc3",
                "title": "Deep Learning",
                "keywords": ["learning", "neural", "networks", "layers..."],
                "word_count": 8,
                "status": "complete",
            },
        ])
    );
    let spans = scratch.only_trace();
    assert_whole_trace(&spans);
    let node = span(&spans, "node process_documents");
    assert_eq!(children(&spans, node).len(), 3);
}
