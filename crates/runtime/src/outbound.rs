//! `wasi:http/outgoing-handler` for guests: the destination is checked against the
//! component's `allowed_outbound_hosts`, `http://<component>.spin.internal` is served in-process
//! through a [`Chaining`] handle, and the rest goes over the network with the host's timeouts.

use crate::allowed_hosts::default_port;
use crate::component::ComponentConfig;
use crate::limits::{OUTBOUND_ANSWER_RESERVE, OUTBOUND_CONNECT_TIMEOUT};
use crate::observe::{RequestId, REQUEST_ID};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

/// `http://<component-id>.spin.internal` reaches a component of the same app in-process.
pub const CHAINING_SUFFIX: &str = ".spin.internal";

/// What a chained request resolves to: the callee's response, or why there is none.
pub type ChainedResponse =
    Pin<Box<dyn Future<Output = Result<http::Response<WasiBody>, HttpError>> + Send>>;

/// The one way an instance reaches the rest of its app: serve `request` in the component
/// `target` (the host part before [`CHAINING_SUFFIX`]). The app implements it; this module
/// knows nothing else about the app.
pub trait Chaining: Send + Sync {
    fn serve_chained(
        self: Arc<Self>,
        target: String,
        request: http::Request<WasiBody>,
    ) -> ChainedResponse;
}

/// The `wasi:http/outgoing-handler` policy of one instance: refuse what is not allowed,
/// serve `http://<component>.spin.internal` in-process, send the rest over the network, and
/// give every request the id of the one the instance serves unless the guest set its own.
pub struct OutboundHttp {
    chaining: Arc<dyn Chaining>,
    component: Arc<ComponentConfig>,
    request_id: RequestId,
    /// The instance's own deadline, counted from `started`.
    request_timeout: Duration,
    /// When the instance's request (or message) started: its deadline is
    /// `limits.request_timeout` later.
    started: Instant,
}

impl OutboundHttp {
    pub(crate) fn new(
        chaining: Arc<dyn Chaining>,
        component: Arc<ComponentConfig>,
        request_id: RequestId,
        request_timeout: Duration,
    ) -> Self {
        Self {
            chaining,
            component,
            request_id,
            request_timeout,
            started: Instant::now(),
        }
    }

    /// A reused instance starts its next request: its calls carry that request's id, and its
    /// deadline counts from now.
    pub(crate) fn begin(&mut self, request_id: RequestId) {
        self.request_id = request_id;
        self.started = Instant::now();
    }

    /// How long an outbound request may wait for its answer: until
    /// [`OUTBOUND_ANSWER_RESERVE`] before the instance's own deadline.
    fn answer_budget(&self) -> Duration {
        (self.started + self.request_timeout)
            .saturating_duration_since(Instant::now())
            .saturating_sub(OUTBOUND_ANSWER_RESERVE)
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

fn done() -> Box<dyn Future<Output = Result<(), HttpError>> + Send> {
    Box::new(async { Ok(()) })
}

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        mut request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _body_done: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> SendFuture {
        // A guest that forwards its own id (or another sane one) keeps it; otherwise the
        // callee's log lines carry the caller's.
        let headers = request.headers_mut();
        if headers
            .get(&REQUEST_ID)
            .and_then(RequestId::parse)
            .is_none()
        {
            self.request_id.set(headers);
        }
        let uri = request.uri();
        let scheme = uri.scheme_str().unwrap_or("").to_ascii_lowercase();
        let Some(host) = uri.host().map(str::to_ascii_lowercase) else {
            tracing::error!(
                component = %self.component.id,
                "outbound request without a host refused (use an absolute URL)"
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        };
        let port = uri
            .port_u16()
            .or_else(|| default_port(&scheme))
            .unwrap_or(0);
        if !self.component.allowed_hosts.allows(&scheme, &host, port) {
            tracing::error!(
                component = %self.component.id,
                "outbound request to {scheme}://{host}:{port} refused: it is not in allowed_outbound_hosts; \
                 to allow it add \"{scheme}://{host}:{port}\" to [component.{}] allowed_outbound_hosts",
                self.component.id
            );
            return Box::new(async { Err(HttpError::HttpRequestDenied) });
        }
        let budget = self.answer_budget();
        if let Some(target) = host.strip_suffix(CHAINING_SUFFIX) {
            let chained = self
                .chaining
                .clone()
                .serve_chained(target.to_owned(), request);
            // Called from the guest's task, so the current span is the caller's request: the
            // chained request's span nests under it. The callee has a deadline of its own;
            // the caller stops waiting for its answer in time to answer itself.
            return Box::new(
                async move {
                    let response = tokio::time::timeout(budget, chained)
                        .await
                        .map_err(|_| HttpError::ConnectionReadTimeout)??;
                    Ok((response, done()))
                }
                .in_current_span(),
            );
        }
        // The guest's own timeouts where it set them, ours where it did not, none beyond the
        // budget: without one, wasmtime-wasi-http would wait 600 s.
        let asked = options.unwrap_or_default();
        let options = Some(RequestOptions {
            connect_timeout: Some(
                asked
                    .connect_timeout
                    .unwrap_or(OUTBOUND_CONNECT_TIMEOUT)
                    .min(budget),
            ),
            first_byte_timeout: Some(asked.first_byte_timeout.unwrap_or(budget).min(budget)),
            between_bytes_timeout: Some(asked.between_bytes_timeout.unwrap_or(budget).min(budget)),
        });
        Box::new(async move {
            let (response, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                response.map(http_body_util::BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = _> + Send>,
            ))
        })
    }
}
