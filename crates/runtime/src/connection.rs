//! Connection hygiene for the HTTP listener: how long a client may take to start and to finish
//! a request's head, how big the head may be, and how many connections may be open at once.
//!
//! These bound what one client costs the host whatever it sends (or does not send); what a
//! guest may do once a request is routed is [`crate::Limits`]'s business.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::task::AtomicWaker;
use std::future::Future;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// How long an open connection may wait for the first byte of its next request (a new
    /// connection, or a kept-alive one between requests).
    pub idle_timeout: Duration,
    /// How long a request's head (request line and headers) may take from its first byte.
    pub header_read_timeout: Duration,
    /// How long reading a request's body may take, in all.
    pub body_read_timeout: Duration,
    /// Largest request head (request line and headers); larger gets 431.
    pub max_header_bytes: usize,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_header_bytes: 32 << 10,
            max_connections: 10_000,
        }
    }
}

/// The smallest head buffer hyper accepts; the head cap is enforced on top of it.
const MIN_READ_BUFFER: usize = 8 << 10;

impl ConnectionLimits {
    /// hyper's read buffer: large enough for the biggest head allowed plus some body (and
    /// never under hyper's minimum).
    pub(crate) fn read_buffer_bytes(&self) -> usize {
        self.max_header_bytes.saturating_add(MIN_READ_BUFFER)
    }
}

/// Open connections, counted by the permits they hold.
pub(crate) struct ConnectionSlots(Arc<Semaphore>);

impl ConnectionSlots {
    pub(crate) fn new(limits: &ConnectionLimits) -> Self {
        Self(Arc::new(Semaphore::new(limits.max_connections.max(1))))
    }

    /// A slot for one more connection, held until the connection is dropped; none when full.
    pub(crate) fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }
}

/// Answers a connection beyond the cap and closes it: a client learns at once to come back
/// later instead of waiting in the kernel's backlog. Bounded in time, since the client may
/// not read.
pub(crate) async fn refuse(mut stream: TcpStream) {
    const BODY: &str = r#"{"error":{"code":"too_many_connections","message":"the server has too many open connections; retry shortly"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Where a connection is between requests, shared by its IO (which enforces the timers) and
/// its service (which sees where a request starts and its response is ready).
#[derive(Clone, Default)]
pub(crate) struct Phase(Arc<PhaseState>);

#[derive(Default)]
struct PhaseState {
    at: AtomicU8,
    /// The connection's reader, parked while a request's head or its serving went on. hyper
    /// reads again only when woken, so without this wake-up the idle timer was armed only
    /// when the head's timer fired: a kept-alive connection waited the head timeout plus the
    /// idle timeout for its next request.
    reader: AtomicWaker,
}

const WAITING: u8 = 0;
const IN_HEAD: u8 = 1;
const SERVING: u8 = 2;

impl Phase {
    /// The head is complete: the service has the request. Its body has a timer of its own.
    pub(crate) fn serving(&self) {
        self.0.at.store(SERVING, Ordering::Relaxed);
    }

    /// The response head is ready: from here the connection waits for its next request, and
    /// its reader arms the idle timer now.
    pub(crate) fn waiting(&self) {
        self.0.at.store(WAITING, Ordering::Relaxed);
        self.0.reader.wake();
    }

    fn get(&self) -> u8 {
        self.0.at.load(Ordering::Relaxed)
    }
}

/// A connection's socket, closed with `TimedOut` when the client is idle too long between
/// requests or too slow to send a request head.
///
/// hyper's own header timer starts when it begins to wait for a head, so it cannot tell a
/// kept-alive connection between requests from a client sending its head a byte at a time;
/// here the idle wait and the head get timers of their own.
pub(crate) struct TimedIo<T> {
    inner: T,
    phase: Phase,
    limits: Arc<ConnectionLimits>,
    timer: Pin<Box<Sleep>>,
    /// The phase and deadline `timer` is armed for.
    armed: Option<u8>,
}

impl<T> TimedIo<T> {
    pub(crate) fn new(inner: T, phase: Phase, limits: Arc<ConnectionLimits>) -> Self {
        let deadline = Instant::now() + limits.idle_timeout;
        Self {
            inner,
            phase,
            limits,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            armed: Some(WAITING),
        }
    }

    /// Arms the timer for the phase the connection is in, when that phase just began.
    fn arm(&mut self, phase: u8) {
        if self.armed == Some(phase) {
            return;
        }
        self.armed = Some(phase);
        let budget = match phase {
            WAITING => self.limits.idle_timeout,
            IN_HEAD => self.limits.header_read_timeout,
            _ => return,
        };
        self.timer.as_mut().reset(Instant::now() + budget);
    }

    /// The read found nothing: an error once the phase's time is up.
    fn poll_timer(&mut self, cx: &mut Context<'_>, phase: u8) -> Poll<io::Result<()>> {
        match self.timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                if phase == WAITING {
                    "idle connection closed"
                } else {
                    "request head not received in time"
                },
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for TimedIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let phase = self.phase.get();
        if phase == SERVING {
            self.armed = None;
            let read = Pin::new(&mut self.inner).poll_read(cx, buf);
            if read.is_pending() {
                self.phase.0.reader.register(cx.waker());
            }
            return read;
        }
        self.arm(phase);
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if phase == WAITING && buf.filled().len() > before {
                    // A request's first bytes: its head now has to arrive in time.
                    self.phase.0.at.store(IN_HEAD, Ordering::Relaxed);
                    self.arm(IN_HEAD);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending if phase == IN_HEAD => {
                self.phase.0.reader.register(cx.waker());
                self.poll_timer(cx, phase)
            }
            Poll::Pending => self.poll_timer(cx, phase),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for TimedIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
}
