//! `allowed_outbound_hosts`: parsing Spin's `scheme://host:port` patterns and checking a
//! destination against them. Every outbound capability (HTTP, chaining, Postgres) asks here;
//! outbound HTTP and service chaining are dispatched from here too.

use crate::app::{App, ComponentConfig, CHAINING_SUFFIX};
use crate::limits::{OUTBOUND_ANSWER_RESERVE, OUTBOUND_CONNECT_TIMEOUT};
use crate::observe::{RequestId, REQUEST_ID};
use anyhow::{bail, Context, Result};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain, not the bare domain.
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHosts {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        let entries = entries
            .iter()
            .map(|e| {
                parse_entry(e.as_ref()).with_context(|| {
                    format!("invalid allowed_outbound_hosts entry `{}`", e.as_ref())
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { entries })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|e| {
            e.scheme.as_deref().is_none_or(|s| s == scheme)
                && match &e.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Suffix(suffix) => {
                        host.len() > suffix.len() + 1
                            && host.ends_with(suffix.as_str())
                            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    }
                }
                && match e.port {
                    PortPattern::Any => true,
                    PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
                }
        })
    }
}

fn parse_entry(entry: &str) -> Result<AllowedHost> {
    let Some((scheme, rest)) = entry.split_once("://") else {
        bail!("expected scheme://host[:port]");
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        bail!("a path is not allowed");
    }
    let scheme = match scheme {
        "*" => None,
        s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
            Some(s.to_ascii_lowercase())
        }
        _ => bail!("invalid scheme"),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host = match host {
        "*" => HostPattern::Any,
        h if h.starts_with("*.") => HostPattern::Suffix(h[2..].to_ascii_lowercase()),
        "" => bail!("missing host"),
        h if h.contains('*') => bail!("`*` is only allowed as the whole host or as `*.` prefix"),
        h => HostPattern::Exact(h.to_ascii_lowercase()),
    };
    let port = match port {
        Some("*") => PortPattern::Any,
        Some(p) => match p.split_once("..") {
            Some((lo, hi)) => PortPattern::Range(lo.parse()?, hi.parse()?),
            None => {
                let p: u16 = p.parse().context("invalid port")?;
                PortPattern::Range(p, p)
            }
        },
        None => match scheme.as_deref().and_then(default_port) {
            Some(p) => PortPattern::Range(p, p),
            None => bail!("a port is required for this scheme"),
        },
    };
    Ok(AllowedHost { scheme, host, port })
}

/// The `wasi:http/outgoing-handler` policy of one instance: refuse what is not allowed,
/// serve `http://<component>.spin.internal` in-process, send the rest over the network, and
/// give every request the id of the one the instance serves unless the guest set its own.
pub struct OutboundHttp {
    app: Arc<App>,
    component: Arc<ComponentConfig>,
    request_id: RequestId,
    /// When the instance's request (or message) started: its deadline is
    /// `limits.request_timeout` later.
    started: Instant,
}

impl OutboundHttp {
    pub(crate) fn new(
        app: Arc<App>,
        component: Arc<ComponentConfig>,
        request_id: RequestId,
    ) -> Self {
        Self {
            app,
            component,
            request_id,
            started: Instant::now(),
        }
    }

    /// How long an outbound request may wait for its answer: until
    /// [`OUTBOUND_ANSWER_RESERVE`] before the instance's own deadline.
    fn answer_budget(&self) -> Duration {
        (self.started + self.app.limits.request_timeout)
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
            let app = self.app.clone();
            let target = target.to_string();
            // Called from the guest's task, so the current span is the caller's request: the
            // chained request's span nests under it. The callee has a deadline of its own;
            // the caller stops waiting for its answer in time to answer itself.
            return Box::new(
                async move {
                    let response =
                        tokio::time::timeout(budget, app.serve_chained(&target, request))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_hosts_use_the_scheme_default_port() {
        let a = AllowedHosts::parse(&[
            "http://car-service.spin.internal",
            "postgres://127.0.0.1:5432",
        ])
        .unwrap();
        assert!(a.allows("http", "car-service.spin.internal", 80));
        assert!(!a.allows("https", "car-service.spin.internal", 443));
        assert!(!a.allows("http", "car-service.spin.internal", 8080));
        assert!(a.allows("postgres", "127.0.0.1", 5432));
        assert!(!a.allows("postgres", "10.0.0.1", 5432));
        assert!(!a.allows("http", "example.com", 80));
    }

    #[test]
    fn wildcards_for_scheme_host_subdomain_and_port() {
        let a = AllowedHosts::parse(&[
            "http://*.spin.internal",
            "*://db.local:*",
            "https://*:8000..8010",
        ])
        .unwrap();
        assert!(a.allows("http", "anything.spin.internal", 80));
        assert!(!a.allows("http", "spin.internal", 80));
        assert!(!a.allows("http", "evilspin.internal", 80));
        assert!(a.allows("redis", "db.local", 1));
        assert!(a.allows("https", "x.y", 8005));
        assert!(!a.allows("https", "x.y", 8011));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            "car-service",
            "http://",
            "http://a/b",
            "http://a*b",
            "foo://host",
        ] {
            assert!(AllowedHosts::parse(&[bad]).is_err(), "{bad}");
        }
        assert!(!AllowedHosts::default().allows("http", "x", 80));
    }
}
