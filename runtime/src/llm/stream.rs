//! A streamed answer, whatever produced it (a provider over HTTP, the mock, a replay), and its
//! recording when the run is recorded.

use super::http::HttpStream;
use super::tape::{Recorder, TapeEntry};
use super::types::{LlmError, StreamItem};
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Debug)]
enum Source {
    /// Known in advance: the mock provider, a replay.
    Items(VecDeque<Result<StreamItem, LlmError>>),
    Http(Box<HttpStream>),
}

/// Text deltas, then [`StreamItem::End`] with the whole answer, then `None`.
#[derive(Debug)]
pub struct ChatStream {
    source: Source,
    recording: Option<(Arc<Recorder>, TapeEntry)>,
    finished: bool,
}

impl ChatStream {
    pub(super) fn items(items: VecDeque<Result<StreamItem, LlmError>>) -> Self {
        Self {
            source: Source::Items(items),
            recording: None,
            finished: false,
        }
    }

    pub(super) fn http(stream: HttpStream) -> Self {
        Self {
            source: Source::Http(Box::new(stream)),
            recording: None,
            finished: false,
        }
    }

    /// A stream answered from a recording (a checkpointed node execution's tape).
    pub fn from_tape(entry: &TapeEntry) -> Self {
        Self::items(entry.items())
    }

    /// Records this stream (written when it ends, with an error or not).
    pub(super) fn recorded(mut self, recorder: Arc<Recorder>, entry: TapeEntry) -> Self {
        self.recording = Some((recorder, entry));
        self
    }

    /// For a stream from a provider: from the start of the HTTP attempt that gave it (before
    /// the response's headers) to its first chunk. `None` for a mock or replayed stream.
    pub fn time_to_first_chunk(&self) -> Option<std::time::Duration> {
        match &self.source {
            Source::Http(stream) => stream.time_to_first_chunk(),
            Source::Items(_) => None,
        }
    }

    pub async fn next(&mut self) -> Result<Option<StreamItem>, LlmError> {
        if self.finished {
            return Ok(None);
        }
        let item = match &mut self.source {
            Source::Items(items) => items.pop_front().transpose(),
            Source::Http(stream) => stream.next().await,
        }
        .map_err(LlmError::redacted);
        let ended = !matches!(item, Ok(Some(StreamItem::Delta(_))));
        if ended {
            self.finished = true;
        }
        if let Some((recorder, entry)) = &mut self.recording {
            match &item {
                Ok(Some(StreamItem::Delta(d))) => entry.deltas.push(d.clone()),
                Ok(Some(StreamItem::End(r))) => entry.response = Some(r.clone()),
                Ok(None) => {}
                Err(e) => entry.error = Some(e.clone()),
            }
            if ended {
                recorder.write(entry);
                self.recording = None;
            }
        }
        item
    }
}
