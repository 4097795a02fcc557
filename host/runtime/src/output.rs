//! Capture of a guest's stdout and stderr.
//!
//! Actors should log through the logging import, but `println!` and, above
//! all, Rust's panic message go to stdout/stderr. Both are captured into a
//! small bounded buffer per instance and turned into log lines after each
//! call (stdout as INFO, stderr as WARN), so a panic's message reaches the
//! trap report and the host's logs instead of being lost.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Bytes kept per stream between two drains; the rest is dropped and
/// counted.
const CAPTURE_CAPACITY: usize = 64 * 1024;

#[derive(Default)]
struct Buffer {
    bytes: Vec<u8>,
    dropped: usize,
}

/// A guest output stream backed by a bounded in-memory buffer.
#[derive(Clone, Default)]
pub(crate) struct OutputCapture {
    inner: Arc<Mutex<Buffer>>,
}

impl OutputCapture {
    /// Takes everything written since the last call, with the number of
    /// bytes that did not fit.
    pub(crate) fn drain(&self) -> (Vec<u8>, usize) {
        match self.inner.lock() {
            Ok(mut buf) if !buf.bytes.is_empty() || buf.dropped > 0 => {
                let dropped = std::mem::take(&mut buf.dropped);
                (std::mem::take(&mut buf.bytes), dropped)
            }
            _ => (Vec::new(), 0),
        }
    }

    fn append(&self, data: &[u8]) {
        if let Ok(mut buf) = self.inner.lock() {
            let room = CAPTURE_CAPACITY.saturating_sub(buf.bytes.len());
            let take = room.min(data.len());
            buf.bytes.extend_from_slice(&data[..take]);
            buf.dropped += data.len() - take;
        }
    }
}

impl IsTerminal for OutputCapture {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for OutputCapture {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

impl OutputStream for OutputCapture {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        // Always accept: what does not fit is dropped and counted, so a
        // chatty guest can neither block nor fail on its stdout.
        Ok(CAPTURE_CAPACITY)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for OutputCapture {
    async fn ready(&mut self) {}
}

impl AsyncWrite for OutputCapture {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_what_fits_and_counts_the_rest() {
        let capture = OutputCapture::default();
        let big = vec![b'x'; CAPTURE_CAPACITY + 10];
        capture.append(&big);
        let (bytes, dropped) = capture.drain();
        assert_eq!(bytes.len(), CAPTURE_CAPACITY);
        assert_eq!(dropped, 10);
        assert_eq!(capture.drain(), (Vec::new(), 0));
    }
}
