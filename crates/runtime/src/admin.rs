//! The host's admin endpoint, for hot swap: `PUT /components/<id>` with a `.wasm` body
//! replaces that component while the app serves (see [`App::swap`]); `GET /components` lists
//! them. It has no authentication, so it is only ever bound to a loopback address: whoever can
//! reach it can already replace the files the host runs.

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

use crate::app::{error_response, full_body, App};
use crate::compile::CacheOutcome;

/// The largest component accepted (ours are about 1 MB).
const MAX_COMPONENT_BYTES: usize = 64 << 20;

/// Serves the admin endpoint on `listener` until `shutdown` resolves. Refuses a listener
/// that is not on a loopback address.
pub async fn serve(
    app: Arc<App>,
    listener: TcpListener,
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
                let service = service_fn(move |request| handle(app.clone(), request));
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
    request: Request<Incoming>,
) -> Result<Response<HyperOutgoingBody>, Infallible> {
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
