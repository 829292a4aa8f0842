//! Bodies and answers the host writes itself (errors, metrics, the admin endpoint), as
//! opposed to the ones guests stream.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// The API's error shape, `{"error":{"code","message"}}`, for answers the host gives itself.
pub fn error_response(status: u16, code: &str, message: &str) -> http::Response<HyperOutgoingBody> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(full_body(Bytes::from(body)))
        .expect("static response parts are valid")
}

pub fn full_body(bytes: Bytes) -> HyperOutgoingBody {
    Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync()
}
