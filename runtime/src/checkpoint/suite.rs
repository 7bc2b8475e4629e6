//! The test suite every checkpoint store must pass, run against each implementation.

use super::*;
use crate::llm::{ChatMessage, ChatRequest, ChatResponse, Role, TapeEntry, Usage};
use serde_json::json;
use std::collections::BTreeMap;

pub(crate) fn record(run_id: &str, created_ms: u64) -> RunRecord {
    RunRecord {
        run_id: run_id.into(),
        agent: "fanout".into(),
        agent_file: "/agents/fanout.yaml".into(),
        status: RunStatus::Running,
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        root_span_id: "b7ad6b7169203331".into(),
        created_ms,
        updated_ms: created_ms,
        checkpoints: 0,
    }
}

fn checkpoint(run_id: &str, reason: &str, steps: u32, status: RunStatus) -> Checkpoint {
    let branch = PathPos {
        items: BTreeMap::from([(1, json!({"index": 1, "item": "b", "state": {"x": 1}}))]),
        ..PathPos::new(
            serde_json::from_value(json!({"topic": "tea"})).unwrap(),
            Some("ask".into()),
        )
    };
    Checkpoint {
        run_id: run_id.into(),
        seq: 0,
        reason: reason.into(),
        position: PathPos {
            group: Some(GroupPos {
                fork: "split".into(),
                fan_in: "join".into(),
                branches: vec![
                    branch.clone(),
                    PathPos::new(Default::default(), Some("join".into())),
                ],
            }),
            done: 2,
            ..PathPos::new(Default::default(), Some("join".into()))
        },
        steps,
        usage: UsageUsed {
            calls: 3,
            input_tokens: 30,
            output_tokens: 12,
        },
        trace_id: "0af7651916cd43dd8448eb211c80319c".into(),
        root_span_id: "b7ad6b7169203331".into(),
        status,
        interrupt: None,
        parent_seq: None,
    }
}

fn call(prompt: &str, answer: &str) -> TapeEntry {
    TapeEntry {
        provider: "main".into(),
        stream: false,
        request: ChatRequest {
            messages: vec![ChatMessage::new(Role::User, prompt)],
            model: Some("m".into()),
            ..ChatRequest::default()
        },
        http: None,
        response: Some(ChatResponse {
            id: None,
            content: answer.into(),
            model: "m".into(),
            finish_reason: "stop".into(),
            usage: Usage::default(),
            tool_calls: Vec::new(),
        }),
        deltas: Vec::new(),
        error: None,
    }
}

/// Runs every check on `store`, which must be empty.
pub fn store_suite(store: Arc<dyn CheckpointStore>) {
    // Runs: created, listed newest first, status updated.
    store.put_run(&record("run-a", 1000)).unwrap();
    store.put_run(&record("run-b", 2000)).unwrap();
    let listed: Vec<String> = store
        .runs()
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(listed, ["run-b", "run-a"]);
    assert!(store.run("nope").unwrap().is_none());
    assert!(store.checkpoint("run-a", None).unwrap().is_none());

    // Checkpoints: numbered in order, read back exactly, the latest by default.
    let first = checkpoint("run-a", "after node split", 1, RunStatus::Running);
    let second = checkpoint("run-a", "fan-in join", 3, RunStatus::Interrupted);
    assert_eq!(store.save(&first).unwrap(), 1);
    assert_eq!(store.save(&second).unwrap(), 2);
    let latest = store.checkpoint("run-a", None).unwrap().unwrap();
    assert_eq!(
        latest,
        Checkpoint {
            seq: 2,
            ..second.clone()
        }
    );
    let earlier = store.checkpoint("run-a", Some(1)).unwrap().unwrap();
    assert_eq!(earlier, Checkpoint { seq: 1, ..first });
    assert!(store.checkpoint("run-a", Some(9)).unwrap().is_none());
    let run = store.run("run-a").unwrap().unwrap();
    assert_eq!((run.checkpoints, run.status), (2, RunStatus::Interrupted));
    let history: Vec<(u64, String)> = store
        .history("run-a")
        .unwrap()
        .into_iter()
        .map(|c| (c.seq, c.reason))
        .collect();
    assert_eq!(
        history,
        [
            (1, "after node split".to_string()),
            (2, "fan-in join".to_string())
        ]
    );
    // A checkpoint of a run the store does not know is refused.
    assert!(
        store
            .save(&checkpoint("ghost", "x", 1, RunStatus::Running))
            .is_err()
    );

    // Re-putting a run (a resume) keeps its checkpoints and takes its new status.
    store
        .put_run(&RunRecord {
            status: RunStatus::Running,
            ..record("run-a", 1000)
        })
        .unwrap();
    let run = store.run("run-a").unwrap().unwrap();
    assert_eq!((run.checkpoints, run.status), (2, RunStatus::Running));
    store.set_status("run-a", RunStatus::Completed).unwrap();
    assert_eq!(
        store.run("run-a").unwrap().unwrap().status,
        RunStatus::Completed
    );

    // Tapes: per execution, in ordinal order, replaced at the same ordinal.
    store
        .record_call("run-a", "r:0:ask#1", 1, &call("two", "2"))
        .unwrap();
    store
        .record_call("run-a", "r:0:ask#1", 0, &call("one", "1"))
        .unwrap();
    store
        .record_call("run-a", "r:1:ask#1", 0, &call("other", "o"))
        .unwrap();
    let answers = |exec: &str| -> Vec<String> {
        store
            .calls("run-a", exec)
            .unwrap()
            .into_iter()
            .map(|e| e.response.unwrap().content)
            .collect()
    };
    assert_eq!(answers("r:0:ask#1"), ["1", "2"]);
    store
        .record_call("run-a", "r:0:ask#1", 1, &call("two", "2b"))
        .unwrap();
    assert_eq!(answers("r:0:ask#1"), ["1", "2b"]);
    assert!(store.calls("run-b", "r:0:ask#1").unwrap().is_empty());

    // An execution's tape replays the recorded calls in order; the first differing call and
    // every call after it go to the provider.
    let tape = ExecutionTape::open(store.clone(), "run-a", "r:0:ask#1".into());
    let request = |p: &str| call(p, "").request;
    assert!(
        matches!(tape.turn("main", false, &request("one")), TapeTurn::Replay(e) if e.response.as_ref().unwrap().content == "1")
    );
    assert!(matches!(
        tape.turn("main", false, &request("changed")),
        TapeTurn::Call(1)
    ));
    assert!(matches!(
        tape.turn("main", false, &request("two")),
        TapeTurn::Call(2)
    ));
    let streamed = ExecutionTape::open(store.clone(), "run-a", "r:0:ask#1".into());
    assert!(matches!(
        streamed.turn("main", true, &request("one")),
        TapeTurn::Call(0)
    ));
}

#[test]
fn sqlite_store_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("nested/state.db")).unwrap();
    store_suite(Arc::new(store));
}

#[test]
fn sqlite_checkpoints_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.put_run(&record("run-a", 1)).unwrap();
        store
            .save(&checkpoint("run-a", "after node a", 1, RunStatus::Running))
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.checkpoint("run-a", None).unwrap().unwrap().reason,
        "after node a"
    );
}
