//! Splits a streamed HTTP body into messages: Server-Sent Events (OpenAI, Azure, Anthropic)
//! or newline-delimited JSON (Ollama). Bytes arrive in arbitrary pieces; a message is only
//! handed out once it is complete.

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

#[derive(Debug)]
pub struct Deframer {
    framing: Framing,
    buffer: Vec<u8>,
    event: Option<String>,
    data: Vec<String>,
}

impl Deframer {
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            buffer: Vec::new(),
            event: None,
            data: Vec::new(),
        }
    }

    /// Adds bytes and returns the messages they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Frame> {
        self.buffer.extend_from_slice(bytes);
        let mut frames = Vec::new();
        while let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buffer.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            self.line(line, &mut frames);
        }
        frames
    }

    /// The message left when the body ends without a final blank line.
    pub fn finish(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            let rest = String::from_utf8_lossy(&rest).trim_end().to_string();
            self.line(&rest, &mut frames);
        }
        self.line("", &mut frames);
        frames
    }

    fn line(&mut self, line: &str, frames: &mut Vec<Frame>) {
        match self.framing {
            Framing::NdJson => {
                if !line.trim().is_empty() {
                    frames.push(Frame {
                        event: None,
                        data: line.to_string(),
                    });
                }
            }
            Framing::Sse => {
                if line.is_empty() {
                    if !self.data.is_empty() {
                        frames.push(Frame {
                            event: self.event.take(),
                            data: std::mem::take(&mut self.data).join("\n"),
                        });
                    }
                    self.event = None;
                } else if let Some(data) = field(line, "data") {
                    self.data.push(data.to_string());
                } else if let Some(event) = field(line, "event") {
                    self.event = Some(event.to_string());
                }
                // Comments (`: ping`), `id:` and `retry:` lines carry nothing Kettle uses.
            }
        }
    }
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(name)?.strip_prefix(':')?;
    Some(rest.strip_prefix(' ').unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_across_arbitrary_splits() {
        let body = b"event: message_start\ndata: {\"a\":1}\n\n: ping\ndata: [DONE]\r\n\r\n";
        for split in 0..body.len() {
            let mut d = Deframer::new(Framing::Sse);
            let mut frames = d.push(&body[..split]);
            frames.extend(d.push(&body[split..]));
            frames.extend(d.finish());
            assert_eq!(
                frames,
                vec![
                    Frame {
                        event: Some("message_start".into()),
                        data: "{\"a\":1}".into()
                    },
                    Frame {
                        event: None,
                        data: "[DONE]".into()
                    },
                ],
                "split at {split}"
            );
        }
    }

    #[test]
    fn ndjson_without_final_newline() {
        let mut d = Deframer::new(Framing::NdJson);
        let mut frames = d.push(b"{\"x\":1}\n{\"x\"");
        frames.extend(d.push(b":2}"));
        frames.extend(d.finish());
        let data: Vec<&str> = frames.iter().map(|f| f.data.as_str()).collect();
        assert_eq!(data, ["{\"x\":1}", "{\"x\":2}"]);
    }
}
