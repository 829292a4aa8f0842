//! A guest's stdout and stderr, passed to the host's own line by line.
//!
//! A guest's `eprintln!` reaches the host as several writes (the text, then the newline), each
//! flushed. Written through as they come, the lines of instances running at the same time
//! interleave mid-line in the host's output. Here each instance's stream keeps the bytes of its
//! unfinished line and hands whole lines to the host's stream in one write; what is left when
//! the instance ends (a last line without its newline) is written then.

use bytes::Bytes;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError, StreamResult};

/// A line longer than this is written in pieces of this size rather than held whole.
const LONGEST_LINE: usize = 64 * 1024;

/// Which of the host's streams a guest stream writes to.
#[derive(Clone, Copy)]
pub(crate) enum GuestOutput {
    Stdout,
    Stderr,
}

impl GuestOutput {
    fn write_all(self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            GuestOutput::Stdout => std::io::stdout().lock().write_all(bytes),
            GuestOutput::Stderr => std::io::stderr().lock().write_all(bytes),
        }
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        match self {
            GuestOutput::Stdout => std::io::IsTerminal::is_terminal(&std::io::stdout()),
            GuestOutput::Stderr => std::io::IsTerminal::is_terminal(&std::io::stderr()),
        }
    }
}

impl StdoutStream for GuestOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(LineStream::new(Sink::Host(*self)))
    }

    // The components this host runs are WASIp2 ones; the async stream is the host's own,
    // unbuffered.
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        match self {
            GuestOutput::Stdout => Box::new(tokio::io::stdout()),
            GuestOutput::Stderr => Box::new(tokio::io::stderr()),
        }
    }
}

/// Where a guest stream's lines go.
enum Sink {
    Host(GuestOutput),
    /// Each write kept apart, for the tests.
    #[cfg(test)]
    Writes(std::sync::Arc<std::sync::Mutex<Vec<Vec<u8>>>>),
}

impl Sink {
    fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Host(to) => to.write_all(bytes),
            #[cfg(test)]
            Sink::Writes(writes) => {
                writes.lock().unwrap().push(bytes.to_vec());
                Ok(())
            }
        }
    }
}

/// One guest stream: the unfinished line it holds.
struct LineStream {
    to: Sink,
    line: Vec<u8>,
}

impl LineStream {
    fn new(to: Sink) -> Self {
        Self {
            to,
            line: Vec::new(),
        }
    }

    /// Writes out every whole line held (and a too-long unfinished one).
    fn pass_whole_lines(&mut self) -> StreamResult<()> {
        let whole = match self.line.iter().rposition(|&b| b == b'\n') {
            Some(last) => last + 1,
            None if self.line.len() >= LONGEST_LINE => self.line.len(),
            None => return Ok(()),
        };
        let result = self.to.write_all(&self.line[..whole]);
        self.line.drain(..whole);
        result.map_err(|e| StreamError::LastOperationFailed(e.into()))
    }
}

impl OutputStream for LineStream {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.line.extend_from_slice(&bytes);
        self.pass_whole_lines()
    }

    // A guest flushes after every write: an unfinished line stays held, or the interleaving
    // this stream exists to prevent would come back.
    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(LONGEST_LINE)
    }
}

impl Pollable for LineStream {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(std::future::ready(()))
    }
}

impl Drop for LineStream {
    fn drop(&mut self) {
        if !self.line.is_empty() {
            self.line.push(b'\n');
            // The instance is gone: nobody is left to tell of a failed write.
            let _ = self.to.write_all(&self.line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn stream() -> (LineStream, Arc<Mutex<Vec<Vec<u8>>>>) {
        let writes = Arc::new(Mutex::new(Vec::new()));
        (LineStream::new(Sink::Writes(writes.clone())), writes)
    }

    fn written(writes: &Mutex<Vec<Vec<u8>>>) -> Vec<String> {
        let writes = writes.lock().unwrap();
        writes
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect()
    }

    #[test]
    fn a_line_written_in_pieces_and_flushed_between_is_passed_whole_once() {
        let (mut out, writes) = stream();
        for piece in ["refused a payment event", ": not signed", "\n"] {
            out.write(Bytes::from(piece)).unwrap();
            out.flush().unwrap();
        }
        out.write(Bytes::from("two\nlines\nand a st")).unwrap();
        assert_eq!(
            written(&writes),
            ["refused a payment event: not signed\n", "two\nlines\n"]
        );
        drop(out);
        assert_eq!(
            written(&writes)[2],
            "and a st\n",
            "the rest, when the instance ends"
        );
    }

    #[test]
    fn a_line_longer_than_the_cap_is_passed_in_pieces() {
        let (mut out, writes) = stream();
        out.write(Bytes::from(vec![b'x'; LONGEST_LINE + 10]))
            .unwrap();
        assert_eq!(written(&writes), ["x".repeat(LONGEST_LINE + 10)]);
        out.write(Bytes::from("end\n")).unwrap();
        drop(out);
        assert_eq!(written(&writes).len(), 2);
        assert_eq!(written(&writes)[1], "end\n");
    }
}
