//! Splits a streamed HTTP body into messages: Server-Sent Events (OpenAI, Azure, Anthropic)
//! or newline-delimited JSON (Ollama). Bytes arrive in arbitrary pieces; a message is only
//! handed out once it is complete.
//!
//! Server-Sent Events are decoded by the `sse-stream` crate: it follows the WHATWG grammar
//! (CRLF, LF and bare CR line endings, a CR and its LF split across reads, multi-line `data:`,
//! comments, a leading BOM), works on bytes without first decoding the whole stream as UTF-8,
//! and is maintained (it is the decoder of the official MCP Rust SDK). `eventsource-stream`,
//! the other candidate, covers the same grammar but has seen no release since 2022 and needs
//! every chunk decoded as UTF-8 first. Neither reads NDJSON, which stays a short line splitter
//! here.

use super::types::LlmError;
use bytes::Bytes;
use futures::stream::{BoxStream, StreamExt};
use sse_stream::SseByteStream;
use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Sse,
    NdJson,
}

/// One complete message: for SSE its `event:` name and joined `data:` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub event: Option<String>,
    pub data: String,
}

/// A body's bytes as they arrive; an error ends the body.
pub type Body = BoxStream<'static, Result<Bytes, LlmError>>;

/// The messages of one streamed body.
pub struct Frames {
    source: Source,
}

enum Source {
    Sse(SseByteStream<Body>),
    NdJson {
        body: Body,
        lines: NdJsonLines,
        ended: bool,
    },
}

impl std::fmt::Debug for Frames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let framing = match self.source {
            Source::Sse(_) => Framing::Sse,
            Source::NdJson { .. } => Framing::NdJson,
        };
        f.debug_struct("Frames").field("framing", &framing).finish()
    }
}

impl Frames {
    pub fn new(framing: Framing, body: Body) -> Self {
        let source = match framing {
            // A last event the server did not close with a blank line is still handed out
            // (the standard would drop it): the blank line is added at the end of the body.
            Framing::Sse => Source::Sse(SseByteStream::new(
                body.chain(futures::stream::once(async {
                    Ok(Bytes::from_static(b"\n\n"))
                }))
                .boxed(),
            )),
            Framing::NdJson => Source::NdJson {
                body,
                lines: NdJsonLines::default(),
                ended: false,
            },
        };
        Self { source }
    }

    /// The next complete message, or `None` once the body has ended.
    pub async fn next(&mut self) -> Result<Option<Frame>, LlmError> {
        match &mut self.source {
            Source::Sse(events) => loop {
                match events.next().await {
                    None => return Ok(None),
                    Some(Ok(event)) => {
                        // A block with no `data:` line (only `event:`, `id:` or `retry:`)
                        // carries nothing Kettle uses.
                        if let Some(data) = event.data {
                            return Ok(Some(Frame {
                                event: event.event,
                                data,
                            }));
                        }
                    }
                    Some(Err(error)) => return Err(sse_error(error)),
                }
            },
            Source::NdJson { body, lines, ended } => loop {
                if let Some(frame) = lines.pending.pop_front() {
                    return Ok(Some(frame));
                }
                if *ended {
                    return Ok(None);
                }
                match body.next().await {
                    Some(Ok(bytes)) => lines.push(&bytes),
                    Some(Err(error)) => return Err(error),
                    None => {
                        *ended = true;
                        lines.finish();
                    }
                }
            },
        }
    }
}

/// The body's own error when the decoder passes one on, else the decoder's.
fn sse_error(error: sse_stream::Error) -> LlmError {
    match error {
        sse_stream::Error::Body(inner) => match inner.downcast::<LlmError>() {
            Ok(error) => *error,
            Err(other) => LlmError::Provider(format!("the stream broke off: {other}")),
        },
        other => LlmError::Provider(format!(
            "the stream is not valid server-sent events: {other}"
        )),
    }
}

/// Newline-delimited JSON: one message per non-blank line.
#[derive(Debug, Default)]
struct NdJsonLines {
    buffer: Vec<u8>,
    pending: VecDeque<Frame>,
}

impl NdJsonLines {
    fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            self.line(&line);
        }
    }

    /// The line left when the body ends without a final newline.
    fn finish(&mut self) {
        let rest = std::mem::take(&mut self.buffer);
        self.line(&rest);
    }

    fn line(&mut self, line: &[u8]) {
        let line = String::from_utf8_lossy(line);
        let line = line.trim();
        if !line.is_empty() {
            self.pending.push_back(Frame {
                event: None,
                data: line.to_string(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames of a body that arrives in the pieces `chunks`.
    fn frames(framing: Framing, chunks: Vec<&'static [u8]>) -> Result<Vec<Frame>, LlmError> {
        let body = futures::stream::iter(chunks.into_iter().map(|c| Ok(Bytes::from_static(c))));
        let mut frames = Frames::new(framing, body.boxed());
        futures::executor::block_on(async {
            let mut out = Vec::new();
            while let Some(frame) = frames.next().await? {
                out.push(frame);
            }
            Ok(out)
        })
    }

    fn data(frames: &[Frame]) -> Vec<&str> {
        frames.iter().map(|f| f.data.as_str()).collect()
    }

    /// `body` cut in two at every byte gives `expected`.
    fn assert_frames_at_every_split(body: &'static [u8], expected: &[Frame]) {
        for split in 0..body.len() {
            let frames = frames(Framing::Sse, vec![&body[..split], &body[split..]]).expect("ok");
            assert_eq!(frames, expected, "split at {split}");
        }
    }

    #[test]
    fn sse_across_arbitrary_splits() {
        let body: &'static [u8] =
            b"event: message_start\ndata: {\"a\":1}\n\n: ping\ndata: [DONE]\r\n\r\n";
        assert_frames_at_every_split(
            body,
            &[
                Frame {
                    event: Some("message_start".into()),
                    data: "{\"a\":1}".into(),
                },
                Frame {
                    event: None,
                    data: "[DONE]".into(),
                },
            ],
        );
    }

    #[test]
    fn sse_with_bare_cr_line_endings() {
        let body: &'static [u8] =
            b"event: delta\rdata: one\rdata: two\r\r: ping\r\rdata: [DONE]\r\r";
        assert_frames_at_every_split(
            body,
            &[
                Frame {
                    event: Some("delta".into()),
                    data: "one\ntwo".into(),
                },
                Frame {
                    event: None,
                    data: "[DONE]".into(),
                },
            ],
        );
    }

    #[test]
    fn sse_mixed_line_endings_and_multi_line_data() {
        let frames = frames(
            Framing::Sse,
            vec![b"data: a\r\ndata: b\rdata: c\n\r\nevent: only-metadata\n\ndata:\n\n"],
        )
        .expect("ok");
        assert_eq!(data(&frames), ["a\nb\nc", ""]);
    }

    #[test]
    fn sse_last_event_without_blank_line_is_kept() {
        let two = frames(Framing::Sse, vec![b"data: 1\n\ndata: 2"]).expect("ok");
        assert_eq!(data(&two), ["1", "2"]);
        let cr = frames(Framing::Sse, vec![b"data: 1\r"]).expect("ok");
        assert_eq!(data(&cr), ["1"]);
    }

    #[test]
    fn a_body_error_comes_out_as_itself() {
        let body = futures::stream::iter([
            Ok(Bytes::from_static(b"data: 1\n\n")),
            Err(LlmError::Timeout("stalled".into())),
        ]);
        for framing in [Framing::Sse, Framing::NdJson] {
            let mut frames = Frames::new(framing, body.clone().boxed());
            let (first, second) =
                futures::executor::block_on(async { (frames.next().await, frames.next().await) });
            assert!(first.is_ok_and(|f| f.is_some()), "{framing:?}");
            assert_eq!(
                second,
                Err(LlmError::Timeout("stalled".into())),
                "{framing:?}"
            );
        }
    }

    #[test]
    fn ndjson_without_final_newline() {
        let frames = frames(Framing::NdJson, vec![b"{\"x\":1}\n{\"x\"", b":2}"]).expect("ok");
        assert_eq!(data(&frames), ["{\"x\":1}", "{\"x\":2}"]);
    }
}
