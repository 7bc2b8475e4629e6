//! Misbehaviours aimed at the limits' accounting: LLM streams read to their end or dropped,
//! huge error messages and log lines, floods of stdout, and deep recursion with large frames.

use kettle_guest::bindings::kettle::node::types::NodeError;
use kettle_guest::llm::{self, ChatRequest, StreamEvent};
use kettle_guest::log;
use serde_json::{Value, json};
use std::hint::black_box;

/// The modes this module runs.
pub const MODES: &[&str] = &[
    "stream-to-end",
    "stream-drop",
    "huge-error",
    "huge-log-lines",
    "print-flood",
    "deep-frames",
];

/// Runs one of [`MODES`].
pub fn run(mode: &str, config: &Value) -> Result<String, NodeError> {
    let count =
        |key: &str, default: u64| config.get(key).and_then(Value::as_u64).unwrap_or(default);
    match mode {
        "stream-to-end" => streams(count("n", 100), true),
        "stream-drop" => streams(count("n", 20), false),
        "huge-error" => Err(NodeError::Failed(
            "e".repeat(count("bytes", 10 << 20) as usize),
        )),
        "huge-log-lines" => {
            let line = "l".repeat(count("bytes", 10 << 20) as usize);
            let lines = count("lines", 100);
            for _ in 0..lines {
                log::info(&line);
            }
            Ok(json!({ "logged": lines }).to_string())
        }
        "print-flood" => {
            let line = "p".repeat(1023);
            let lines = count("lines", 1024);
            for _ in 0..lines {
                println!("{line}");
                eprintln!("{line}");
            }
            Ok(json!({ "printed": lines }).to_string())
        }
        "deep-frames" => Ok(json!({ "depth": deep_frames(0) }).to_string()),
        other => Err(NodeError::InvalidInput(format!(
            "not a limit mode: `{other}`"
        ))),
    }
}

/// Opens `n` streams, each read to its end or dropped after its first delta; stops at the
/// first refusal and reports it as the node's own failure.
fn streams(n: u64, to_end: bool) -> Result<String, NodeError> {
    let mut tokens = 0u64;
    for opened in 0..n {
        let mut stream = match llm::stream(ChatRequest::user("tell me a long story")) {
            Ok(stream) => stream,
            Err(e) => {
                return Err(NodeError::Llm(format!("stream {opened} refused: {e}")));
            }
        };
        loop {
            match stream.next_event() {
                Ok(Some(StreamEvent::Delta(_))) if !to_end => break,
                Ok(Some(StreamEvent::Delta(_))) => {}
                Ok(Some(StreamEvent::End(response))) => {
                    tokens += u64::from(response.usage.input_tokens + response.usage.output_tokens);
                    break;
                }
                Ok(None) => break,
                Err(e) => return Err(NodeError::Llm(e.to_string())),
            }
        }
    }
    Ok(json!({ "streams": n, "tokens": tokens }).to_string())
}

/// Recursion whose frames hold 16 KiB each in linear memory: the shadow stack (256 KiB as
/// `kettle build` links a Rust node) runs out, 16 frames deep, long before the wasm call
/// stack does.
fn deep_frames(n: u64) -> u64 {
    let mut frame = [0u8; 16 << 10];
    frame[black_box(n as usize) % frame.len()] = 1;
    black_box(&mut frame);
    if black_box(n) == u64::MAX {
        0
    } else {
        u64::from(frame[0]) + deep_frames(n + 1) + 1
    }
}
