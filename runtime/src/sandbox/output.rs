//! The capture of a node's stdout or stderr: bytes up to a cap are kept in memory, the rest are
//! dropped and counted. A write is never refused, since a failed write would make the guest's
//! own `println!` panic: output past the cap is a limit of the host's, not a node error.

use bytes::{Bytes, BytesMut};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// How much a guest may write in one go; it is always ready for more.
const WRITE_PERMIT: usize = 64 << 10;

/// One captured stream; clones share the same capture.
#[derive(Debug, Clone)]
pub struct CapturedOutput {
    cap: usize,
    inner: Arc<Mutex<Captured>>,
}

#[derive(Debug, Default)]
struct Captured {
    kept: BytesMut,
    dropped: u64,
}

impl CapturedOutput {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            inner: Arc::default(),
        }
    }

    fn accept(&self, bytes: &[u8]) {
        let mut captured = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.cap.saturating_sub(captured.kept.len());
        let kept = bytes.len().min(room);
        captured.kept.extend_from_slice(&bytes[..kept]);
        captured.dropped += (bytes.len() - kept) as u64;
    }

    /// The bytes kept.
    pub fn contents(&self) -> Bytes {
        let captured = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        captured.kept.clone().freeze()
    }

    /// Bytes written past the cap, and dropped.
    pub fn dropped(&self) -> u64 {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }
}

#[async_trait::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(WRITE_PERMIT)
    }
}

#[async_trait::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_past_the_cap_are_dropped_and_counted_never_refused() {
        let capture = CapturedOutput::new(8);
        let mut stream = capture.p2_stream();
        stream.write(Bytes::from_static(b"hello ")).unwrap();
        stream.write(Bytes::from_static(b"world, again")).unwrap();
        assert!(stream.check_write().unwrap() > 0, "always ready for more");
        assert_eq!(&capture.contents()[..], b"hello wo");
        assert_eq!(capture.dropped(), 10);
    }
}
