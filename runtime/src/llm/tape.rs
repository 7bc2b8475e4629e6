//! Record and replay (`kettle run --record FILE` / `--replay FILE`): every LLM call of a run,
//! request and outcome, one JSON line each. Secrets never reach the file: secret headers are
//! redacted, and so is any API key found anywhere in a line. A replay answers each call from
//! the recording of the same request (the n-th identical request gets the n-th answer) and
//! makes no network call; a call the recording lacks fails with `not recorded`.

use super::types::{ChatRequest, ChatResponse, LlmError, StreamItem};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One recorded call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TapeEntry {
    /// The provider's name in `settings.llm`.
    pub provider: String,
    pub stream: bool,
    /// The request with the agent's defaults applied (model, temperature).
    pub request: ChatRequest,
    /// The HTTP request sent, secrets redacted (absent for the mock provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ChatResponse>,
    /// A stream's text deltas, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<LlmError>,
}

impl TapeEntry {
    fn key(&self) -> String {
        key(&self.provider, self.stream, &self.request)
    }

    /// The recorded outcome as stream items (deltas, then the end or the error).
    pub fn items(&self) -> VecDeque<Result<StreamItem, LlmError>> {
        let mut items: VecDeque<_> = self
            .deltas
            .iter()
            .map(|d| Ok(StreamItem::Delta(d.clone())))
            .collect();
        match (&self.error, &self.response) {
            (Some(e), _) => items.push_back(Err(e.clone())),
            (None, Some(r)) => items.push_back(Ok(StreamItem::End(r.clone()))),
            (None, None) => items.push_back(Err(LlmError::NotRecorded(
                "the recording of this stream is incomplete".into(),
            ))),
        }
        items
    }

    pub fn outcome(&self) -> Result<ChatResponse, LlmError> {
        match (&self.error, &self.response) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(r)) => Ok(r.clone()),
            (None, None) => Err(LlmError::NotRecorded(
                "the recording of this call has no outcome".into(),
            )),
        }
    }
}

fn key(provider: &str, stream: bool, request: &ChatRequest) -> String {
    json!({"provider": provider, "stream": stream, "request": request}).to_string()
}

#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    #[error("cannot write the recording {}: {source}", path.display())]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read the recording {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}:{line}: not a recorded LLM call ({message}); was it written by `kettle run --record`?", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
}

/// Where the calls of a run go besides the provider.
#[derive(Debug)]
pub enum Tape {
    Record(std::sync::Arc<Recorder>),
    Replay(Replayer),
}

#[derive(Debug)]
pub struct Recorder {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Recorder {
    /// Creates (or truncates) `path`; `secrets` (and every other secret the process-wide
    /// redactor knows) are redacted wherever they appear.
    pub fn create(path: &Path, secrets: Vec<String>) -> Result<Self, TapeError> {
        let file = std::fs::File::create(path).map_err(|source| TapeError::Create {
            path: path.into(),
            source,
        })?;
        for secret in &secrets {
            crate::redact::register(secret);
        }
        Ok(Self {
            path: path.into(),
            file: Mutex::new(file),
        })
    }

    /// Appends one call; a failure to write is logged, never fails the call.
    pub fn write(&self, entry: &TapeEntry) {
        let line = match serde_json::to_string(entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::warn!("cannot record an LLM call: {e}");
                return;
            }
        };
        let mut line = crate::redact::string(line);
        line.push('\n');
        let Ok(mut file) = self.file.lock() else {
            return;
        };
        if let Err(e) = file.write_all(line.as_bytes()).and_then(|()| file.flush()) {
            tracing::warn!("cannot write to {}: {e}", self.path.display());
        }
    }
}

#[derive(Debug)]
pub struct Replayer {
    path: PathBuf,
    calls: Mutex<HashMap<String, VecDeque<TapeEntry>>>,
}

impl Replayer {
    pub fn open(path: &Path) -> Result<Self, TapeError> {
        let text = std::fs::read_to_string(path).map_err(|source| TapeError::Read {
            path: path.into(),
            source,
        })?;
        let mut calls: HashMap<String, VecDeque<TapeEntry>> = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let entry: TapeEntry = serde_json::from_str(line).map_err(|e| TapeError::Parse {
                path: path.into(),
                line: index + 1,
                message: e.to_string(),
            })?;
            calls.entry(entry.key()).or_default().push_back(entry);
        }
        Ok(Self {
            path: path.into(),
            calls: Mutex::new(calls),
        })
    }

    /// The recording of the next call like this one.
    pub fn take(
        &self,
        provider: &str,
        stream: bool,
        request: &ChatRequest,
    ) -> Result<TapeEntry, LlmError> {
        let mut calls = self
            .calls
            .lock()
            .map_err(|_| LlmError::NotRecorded("the recording is unusable".into()))?;
        if let Some(entry) = calls
            .get_mut(&key(provider, stream, request))
            .and_then(VecDeque::pop_front)
        {
            return Ok(entry);
        }
        let left: usize = calls.values().map(VecDeque::len).sum();
        let last = request
            .messages
            .last()
            .map(|m| m.content.chars().take(80).collect::<String>())
            .unwrap_or_default();
        Err(LlmError::NotRecorded(format!(
            "{} has no {} to provider `{provider}` with model `{}` ending in {last:?} ({left} recorded calls left unused); the agent or its input changed since the recording: record it again with --record",
            self.path.display(),
            if stream { "stream" } else { "call" },
            request.model.as_deref().unwrap_or("?"),
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{ChatMessage, Role, Usage};

    fn entry(text: &str, answer: &str) -> TapeEntry {
        TapeEntry {
            provider: "main".into(),
            stream: false,
            request: ChatRequest {
                messages: vec![ChatMessage::new(Role::User, text)],
                model: Some("m".into()),
                temperature: serde_json::Number::from_f64(0.2),
                ..ChatRequest::default()
            },
            http: Some(json!({"headers": {"authorization": "Bearer sk-secret-key-1"}})),
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

    #[test]
    fn recorded_calls_replay_in_order_and_keys_are_redacted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tape.jsonl");
        let recorder = Recorder::create(&path, vec!["sk-secret-key-1".into()]).unwrap();
        recorder.write(&entry("hi", "one"));
        recorder.write(&entry("hi", "two"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("sk-secret-key-1"));
        assert!(text.contains("Bearer [REDACTED]"));

        let replayer = Replayer::open(&path).unwrap();
        let request = entry("hi", "").request;
        let answers: Vec<String> = (0..2)
            .map(|_| {
                replayer
                    .take("main", false, &request)
                    .unwrap()
                    .outcome()
                    .unwrap()
                    .content
            })
            .collect();
        assert_eq!(answers, ["one", "two"]);
        let miss = replayer.take("main", false, &request).unwrap_err();
        assert!(matches!(miss, LlmError::NotRecorded(m) if m.contains("0 recorded calls left")));
        assert!(replayer.take("main", true, &request).is_err());
    }
}
