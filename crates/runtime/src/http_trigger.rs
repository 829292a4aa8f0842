//! The HTTP trigger: accept connections within [`ConnectionLimits`], answer Spin's well-known
//! paths, route, admit a request within its component's concurrency cap, cap bodies, present
//! the request to the guest as Spin does, give every request an id (answered in
//! `x-request-id`), and shut down gracefully.

use crate::app::{App, LoadedComponent};
use crate::body::{error_response, full_body};
use crate::connection::{self, ConnectionLimits, ConnectionSlots, Phase, TimedIo};
use crate::observe::{self, RequestId};
use crate::routes::RouteMatch;
use crate::spin_headers::{self, SpinRequestInfo};
use anyhow::Result;
use bytes::Bytes;
use http::{header, HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// How long in-flight requests may take to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// Headers that describe one hop, not the request; Spin removes them before the guest sees it.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "http2-settings",
];

/// The route table as Spin prints it at startup.
pub fn describe_routes(app: &App, base: &str) -> Vec<String> {
    app.router()
        .routes()
        .map(|(route, component)| {
            let suffix = if route.is_wildcard() {
                " (wildcard)"
            } else {
                ""
            };
            format!("  {component}: {base}{}{suffix}", route.component_route())
        })
        .collect()
}

/// Where connections are served: the runtime that accepts them, or one single-threaded runtime
/// per thread, handed connections in turn.
///
/// A connection and every instance it runs (its chained calls too) stay on one thread of a
/// worker: no request crosses threads. Measured against tokio's multi-threaded scheduler on the
/// same two cores (BENCHMARKS.md, tuning log): 23 % less CPU per request on a trivial route,
/// +40 % req/s there and about +20 % on `GET /api/cars/{id}`. The price: a connection stays on
/// its thread, so a few long-lived connections can load the threads unevenly.
pub struct Workers {
    handles: Vec<Handle>,
    threads: Vec<(oneshot::Sender<()>, std::thread::JoinHandle<()>)>,
    next: AtomicUsize,
}

impl Workers {
    /// Serve on the runtime that calls [`serve`] (tests and benches).
    pub fn current() -> Self {
        Self {
            handles: vec![Handle::current()],
            threads: Vec::new(),
            next: AtomicUsize::new(0),
        }
    }

    /// `count` threads (at least one), each running a single-threaded runtime until dropped.
    pub fn start(count: usize) -> Result<Self> {
        let mut workers = Self {
            handles: Vec::new(),
            threads: Vec::new(),
            next: AtomicUsize::new(0),
        };
        for i in 0..count.max(1) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            workers.handles.push(runtime.handle().clone());
            let (stop, stopped) = oneshot::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("http-worker-{i}"))
                .spawn(move || {
                    runtime.block_on(async {
                        let _ = stopped.await;
                    })
                })?;
            workers.threads.push((stop, thread));
        }
        Ok(workers)
    }

    /// How many runtimes serve connections.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    fn next(&self) -> &Handle {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.handles.len();
        &self.handles[i]
    }
}

impl Drop for Workers {
    /// Stops the threads; whatever still runs on them is dropped with their runtimes.
    fn drop(&mut self) {
        for (stop, thread) in self.threads.drain(..) {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish (up to the grace period).
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    workers: &Workers,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let graceful = GracefulShutdown::new();
    let slots = ConnectionSlots::new(&limits);
    let limits = Arc::new(limits);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        tracing::warn!("accept failed: {e}");
                        continue;
                    }
                };
                let Some(slot) = slots.take() else {
                    app.note_refused_connection();
                    tokio::spawn(connection::refuse(stream));
                    continue;
                };
                let _ = stream.set_nodelay(true);
                // The socket moves to the worker's own reactor.
                let stream = match stream.into_std() {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::warn!("cannot hand over the connection from {peer}: {e}");
                        continue;
                    }
                };
                let app = app.clone();
                let limits = limits.clone();
                let watcher = graceful.watcher();
                workers.next().spawn(async move {
                    let _slot = slot;
                    let stream = match tokio::net::TcpStream::from_std(stream) {
                        Ok(stream) => stream,
                        Err(e) => {
                            tracing::warn!("cannot serve the connection from {peer}: {e}");
                            return;
                        }
                    };
                    let phase = Phase::default();
                    let io = TimedIo::new(stream, phase.clone(), limits.clone());
                    let mut builder = http1::Builder::new();
                    builder
                        .keep_alive(true)
                        .max_buf_size(limits.read_buffer_bytes())
                        .max_header_size(limits.max_header_bytes);
                    let service = service_fn(move |req| {
                        phase.serving();
                        let phase = phase.clone();
                        let served = handle(app.clone(), limits.clone(), req, peer);
                        async move {
                            let response = served.await;
                            phase.waiting();
                            response
                        }
                    });
                    let conn = builder.serve_connection(TokioIo::new(io), service);
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!("connection from {peer} ended: {e}");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("shutting down: finishing in-flight requests");
    tokio::select! {
        _ = graceful.shutdown() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("grace period over, closing anyway"),
    }
    Ok(())
}

async fn handle(
    app: Arc<App>,
    limits: Arc<ConnectionLimits>,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Result<Response<HyperOutgoingBody>, Infallible> {
    Ok(route_and_serve(app, &limits, req, client).await)
}

/// Every answer carries the request's id, also those the host gives itself.
async fn route_and_serve(
    app: Arc<App>,
    limits: &ConnectionLimits,
    req: Request<Incoming>,
    client: SocketAddr,
) -> Response<HyperOutgoingBody> {
    let id = RequestId::of(req.headers());
    let mut response = route(app, limits, req, client, &id).await;
    id.set(response.headers_mut());
    response
}

async fn route(
    app: Arc<App>,
    limits: &ConnectionLimits,
    req: Request<Incoming>,
    client: SocketAddr,
    id: &RequestId,
) -> Response<HyperOutgoingBody> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/.well-known/spin/health" => {
            return Response::new(full_body(Bytes::from_static(b"OK")));
        }
        "/.well-known/spin/info" => {
            let body = serde_json::json!({ "name": app.name, "version": app.version }).to_string();
            return json(StatusCode::OK, body);
        }
        _ => {}
    }
    if let Some(bad) = req.headers().iter().find(|(_, v)| v.to_str().is_err()) {
        let message = format!("header `{}` is not valid UTF-8 text", bad.0);
        return error_response(400, "invalid_header", &message);
    }
    let Some(host) = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .map(str::to_string)
    else {
        return error_response(400, "missing_host", "the request has no Host header");
    };
    // The guest rebuilds its URL from Host and the path: anything but an authority there
    // would make it route a different path than the host routed and logged.
    if !is_authority(&host) {
        return error_response(
            400,
            "invalid_host",
            "the Host header must be host[:port], nothing else",
        );
    }
    // The manifest check guarantees every route names a loaded component.
    let Some((m, loaded)) = app
        .router()
        .route(&path)
        .and_then(|m| app.component(m.component).map(|c| (m, c)))
    else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(full_body(Bytes::new()))
            .expect("static response parts are valid");
    };
    // Recorded from here on, so a 413 counts against the component whose route it targeted.
    let method = req.method().clone();
    let config = loaded.config.clone();
    let has_body = has_body(req.headers());
    let work = async {
        // Admitted before the body is read: a busy component's queue holds no bodies.
        let _admitted = match config.admission.as_ref() {
            Some(admission) => match admission.enter(app.limits.request_timeout).await {
                Ok(permit) => Some(permit),
                Err(busy) => {
                    config.metrics.concurrency_limit_hit();
                    let response = busy_response(&config.id, busy);
                    // The body was never read, so the next request on this connection would
                    // start inside it: say that the connection ends here.
                    return if has_body {
                        closing(response)
                    } else {
                        response
                    };
                }
            },
            None => None,
        };
        forward(&app, limits, &m, loaded, req, &host, client, id).await
    };
    observe::request(&config, id, &method, &path, work).await
}

/// True for `host[:port]`: a registered name, an IPv4 address or a bracketed IPv6 address,
/// with an optional decimal port; no user info, path, query or fragment.
fn is_authority(value: &str) -> bool {
    let Ok(authority) = value.parse::<http::uri::Authority>() else {
        return false;
    };
    if authority.as_str() != value || value.contains('@') {
        return false;
    }
    let host = authority.host();
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
    };
    let port_ok = match value
        .strip_prefix(host)
        .and_then(|rest| rest.strip_prefix(':'))
    {
        Some(port) => authority.port_u16().is_some() && port.bytes().all(|b| b.is_ascii_digit()),
        None => value == host,
    };
    host_ok && port_ok
}

fn busy_response(component: &str, busy: crate::admission::Busy) -> Response<HyperOutgoingBody> {
    let mut response = error_response(
        503,
        "component_busy",
        &format!("{component} is at its concurrency limit ({busy}); retry shortly"),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, http::HeaderValue::from_static("1"));
    response
}

/// Reads the body within the cap and presents the request to the guest as Spin does.
#[allow(clippy::too_many_arguments)]
async fn forward(
    app: &Arc<App>,
    limits: &ConnectionLimits,
    m: &RouteMatch<'_>,
    loaded: Arc<LoadedComponent>,
    req: Request<Incoming>,
    host: &str,
    client: SocketAddr,
    id: &RequestId,
) -> Response<HyperOutgoingBody> {
    let limit = app.limits.max_body_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return closing(too_large(limit));
    }
    let (mut parts, body) = req.into_parts();
    let read = tokio::time::timeout(
        limits.body_read_timeout,
        Limited::new(body, limit).collect(),
    );
    let body = match read.await {
        // The body is cut short in each of these: the connection cannot carry another request.
        Err(_elapsed) => {
            return closing(error_response(
                408,
                "request_timeout",
                &format!(
                    "the request body did not arrive within {} ms",
                    limits.body_read_timeout.as_millis()
                ),
            ))
        }
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
            return closing(too_large(limit))
        }
        Ok(Err(e)) => {
            return closing(error_response(
                400,
                "bad_request",
                &format!("cannot read the request body: {e}"),
            ))
        }
    };

    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_string();
    let full_url = format!("http://{host}{path_and_query}");
    parts.uri = match full_url.parse() {
        Ok(uri) => uri,
        Err(_) => {
            return error_response(
                400,
                "bad_request",
                "the request target or Host header is invalid",
            )
        }
    };
    strip_hop_by_hop(&mut parts.headers);
    let info = SpinRequestInfo::inbound(m, full_url, client.to_string());
    spin_headers::apply(&mut parts.headers, &info);
    id.set(&mut parts.headers);
    let body = Full::new(body)
        .map_err(|never| match never {})
        .boxed_unsync();
    app.clone()
        .serve(loaded, Request::from_parts(parts, body), id.clone())
        .await
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
        .collect();
    for name in HOP_BY_HOP.iter().map(|s| s.to_string()).chain(listed) {
        headers.remove(name.as_str());
    }
    headers.remove(header::HOST);
}

/// True when the request announces a body (a non-zero length, or chunks).
fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim() != "0")
}

/// `response` with `Connection: close`: answered before its request's body was read to the
/// end, so the client must not send another request on this connection (hyper closes it).
fn closing(mut response: Response<HyperOutgoingBody>) -> Response<HyperOutgoingBody> {
    response
        .headers_mut()
        .insert(header::CONNECTION, http::HeaderValue::from_static("close"));
    response
}

fn too_large(limit: usize) -> Response<HyperOutgoingBody> {
    error_response(
        413,
        "payload_too_large",
        &format!("the request body is larger than {limit} bytes"),
    )
}

fn json(status: StatusCode, body: String) -> Response<HyperOutgoingBody> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(full_body(Bytes::from(body)))
        .expect("static response parts are valid")
}
