//! The host's admin endpoint, for hot swap: `PUT /components/<id>` with a `.wasm` body
//! replaces that component while the app serves (see [`App::swap`]); `GET /components` lists
//! them. A swapped-in component keeps the old one's variables (its secrets too), so every
//! request must carry the endpoint's token (`Authorization: Bearer <token>`), and a `Host`
//! that is not a loopback name is refused (a browser led there by DNS rebinding sends its
//! own). It only ever listens on a loopback address.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use anyhow::{bail, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::app::App;
use crate::body::{error_response, full_body};
use crate::compile::CacheOutcome;

/// The largest component accepted (ours are about 1 MB).
const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// The secret every admin request must present. Shorter than 32 characters is refused.
#[derive(Clone)]
pub struct AdminToken(Arc<str>);

impl AdminToken {
    pub fn new(token: &str) -> Result<Self> {
        if token.len() < 32 || !token.bytes().all(|b| b.is_ascii_graphic()) {
            bail!("the admin token must be at least 32 visible ASCII characters");
        }
        Ok(Self(token.into()))
    }

    /// Compares in time independent of where the two first differ.
    fn admits(&self, presented: &[u8]) -> bool {
        let expected = self.0.as_bytes();
        expected.len() == presented.len()
            && expected
                .iter()
                .zip(presented)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// Serves the admin endpoint on `listener` until `shutdown` resolves. Refuses a listener
/// that is not on a loopback address.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    token: AdminToken,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let address = listener.local_addr()?;
    if !address.ip().is_loopback() {
        bail!("the admin endpoint must listen on a loopback address, not {address}");
    }
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let app = app.clone();
                let token = token.clone();
                let service = service_fn(move |request| handle(app.clone(), token.clone(), request));
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = &mut shutdown => return Ok(()),
        }
    }
}

async fn handle(
    app: Arc<App>,
    token: AdminToken,
    request: Request<Incoming>,
) -> Result<Response<HyperOutgoingBody>, Infallible> {
    if !request
        .headers()
        .get(hyper::header::HOST)
        .and_then(|host| host.to_str().ok())
        .is_some_and(is_loopback_host)
    {
        return Ok(error_response(
            403,
            "forbidden_host",
            "the admin endpoint answers only to a loopback Host",
        ));
    }
    let presented = request
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "));
    if !presented.is_some_and(|presented| token.admits(presented)) {
        let mut refused = error_response(
            401,
            "unauthorized",
            "the admin endpoint needs its token: Authorization: Bearer <token>",
        );
        refused.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            hyper::header::HeaderValue::from_static("Bearer"),
        );
        return Ok(refused);
    }
    let path = request.uri().path().to_owned();
    let target = path.strip_prefix("/components/").map(str::to_owned);
    Ok(match (request.method().clone(), path.as_str(), target) {
        (Method::GET, "/components", _) => json(
            StatusCode::OK,
            serde_json::json!({ "components": app.component_ids() }),
        ),
        (Method::PUT, _, Some(id)) if !id.is_empty() && !id.contains('/') => {
            swap(app, &id, request).await
        }
        _ => error_response(404, "not_found", &format!("no admin resource at {path}")),
    })
}

async fn swap(app: Arc<App>, id: &str, request: Request<Incoming>) -> Response<HyperOutgoingBody> {
    let wasm = match Limited::new(request.into_body(), MAX_COMPONENT_BYTES)
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(error) => return error_response(413, "payload_too_large", &error.to_string()),
    };
    let id_owned = id.to_owned();
    // Compiling takes a core for a while: keep it off the async workers.
    let swapped = tokio::task::spawn_blocking(move || app.swap(&id_owned, &wasm)).await;
    match swapped {
        Ok(Ok(report)) => json(
            StatusCode::OK,
            serde_json::json!({
                "component": report.component,
                "outcome": match report.outcome {
                    CacheOutcome::Compiled => "compiled",
                    CacheOutcome::Cached => "cached",
                },
                "millis": report.millis,
            }),
        ),
        Ok(Err(error)) => {
            tracing::error!(
                component = id,
                "swap refused, the previous version keeps serving: {error:#}"
            );
            let status = if app_has_no(&error) { 404 } else { 422 };
            error_response(status, "swap_refused", &format!("{error:#}"))
        }
        Err(join) => error_response(500, "swap_failed", &join.to_string()),
    }
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    };
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = name
        .strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(name);
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

fn app_has_no(error: &anyhow::Error) -> bool {
    error.to_string().starts_with("the app has no component")
}

fn json(status: StatusCode, value: serde_json::Value) -> Response<HyperOutgoingBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full_body(Bytes::from(value.to_string())))
        .expect("static response parts are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_are_admitted() {
        for host in [
            "127.0.0.1:4000",
            "localhost:1",
            "LOCALHOST",
            "[::1]:9",
            "127.1.2.3",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "evil.example:4000",
            "10.0.0.1",
            "[::2]:1",
            "127.0.0.1.nip.io",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn the_token_must_match_exactly_and_be_long() {
        let token = AdminToken::new(&"a".repeat(40)).unwrap();
        assert!(token.admits("a".repeat(40).as_bytes()));
        assert!(!token.admits("a".repeat(39).as_bytes()));
        assert!(!token.admits(format!("{}b", "a".repeat(39)).as_bytes()));
        assert!(AdminToken::new("short").is_err());
    }
}
