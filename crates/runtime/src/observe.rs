//! Request ids and the record of each request: a request routed to a component gets an id (a
//! sane client `x-request-id`, else a new uuid), a tracing span, one log line and its metrics;
//! chained calls carry the caller's id. The id only correlates log lines: nothing trusts it.

use std::cell::Cell;
use std::future::Future;
use std::time::Instant;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response};
use tracing::field::Empty;
use tracing::Instrument;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::component::ComponentConfig;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longer client ids are replaced: they would only bloat every log line.
const MAX_LEN: usize = 128;

/// A request's id: 1 to 128 visible ASCII characters, so it is safe in a header and a log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// `value` as an id, when it is one.
    pub fn parse(value: &HeaderValue) -> Option<Self> {
        let bytes = value.as_bytes();
        let sane = (1..=MAX_LEN).contains(&bytes.len()) && bytes.iter().all(u8::is_ascii_graphic);
        sane.then(|| Self(value.clone()))
    }

    /// A new id (a uuid v4).
    pub fn generate() -> Self {
        let uuid = uuid::Builder::from_random_bytes(random_bytes()).into_uuid();
        let mut buffer = uuid::Uuid::encode_buffer();
        let text = uuid.hyphenated().encode_lower(&mut buffer);
        Self(HeaderValue::from_str(text).expect("a uuid is a valid header value"))
    }

    /// The id of a request with these headers: its (first) `x-request-id` when sane, else new.
    pub fn of(headers: &HeaderMap) -> Self {
        headers
            .get(&REQUEST_ID)
            .and_then(Self::parse)
            .unwrap_or_else(Self::generate)
    }

    pub fn as_str(&self) -> &str {
        self.0
            .to_str()
            .expect("an id is visible ASCII, checked when made")
    }

    /// Sets `x-request-id` to this id, replacing any value there.
    pub fn set(&self, headers: &mut HeaderMap) {
        headers.insert(REQUEST_ID, self.0.clone());
    }
}

/// 128 bits from a per-thread splitmix64 seeded once by the OS. `Uuid::new_v4` asks the OS on
/// every call, which cost about a tenth of the host-only path's throughput; an id that only
/// correlates log lines needs to be unique, not secret.
fn random_bytes() -> [u8; 16] {
    thread_local! {
        static STATE: Cell<u64> = Cell::new(uuid::Uuid::new_v4().as_u64_pair().0);
    }
    STATE.with(|state| {
        let next = || {
            let s = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
            state.set(s);
            let z = (s ^ (s >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        let (high, low) = (next(), next());
        ((u128::from(high) << 64) | u128::from(low)).to_be_bytes()
    })
}

/// Runs `work`, the handling of one request to `component`, inside a span carrying the request
/// id; then counts it in the component's metrics and logs one line for it.
pub(crate) async fn request(
    component: &ComponentConfig,
    id: &RequestId,
    method: &Method,
    path: &str,
    work: impl Future<Output = Response<HyperOutgoingBody>>,
) -> Response<HyperOutgoingBody> {
    let span = tracing::info_span!(
        "request",
        request_id = %id.as_str(),
        %method,
        path = %path,
        component = %component.id,
        status = Empty,
        duration_ms = Empty,
    );
    let started = Instant::now();
    let response = work.instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    component.metrics.observe(status, elapsed);
    let duration_ms = elapsed.as_micros() as f64 / 1000.0;
    span.record("status", status);
    span.record("duration_ms", duration_ms);
    // Logged outside the request's own span, so the line stands alone; a chained call's line
    // still sits in its caller's span, which names the calling component.
    tracing::info!(
        request_id = %id.as_str(),
        %method,
        path = %path,
        component = %component.id,
        status,
        duration_ms,
        "request"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(bytes: &[u8]) -> HeaderValue {
        HeaderValue::from_bytes(bytes).unwrap()
    }

    #[test]
    fn sane_client_ids_are_kept() {
        for ok in [
            "abc".to_owned(),
            "relay-6b1f2c1e-0001-4000-8000-000000000001".to_owned(),
            "A".repeat(128),
            "!~{}[]:;/=".to_owned(),
        ] {
            let id = RequestId::parse(&value(ok.as_bytes())).expect(&ok);
            assert_eq!(id.as_str(), ok);
        }
    }

    #[test]
    fn empty_long_spaced_tabbed_and_non_ascii_ids_are_refused() {
        let long = "A".repeat(129);
        for bad in [
            &b""[..],
            long.as_bytes(),
            b"two words",
            b"tab\there",
            "ид".as_bytes(),
            b"\xff\xfe",
        ] {
            assert!(
                RequestId::parse(&value(bad)).is_none(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn a_request_without_a_sane_id_gets_a_fresh_uuid() {
        let mut headers = HeaderMap::new();
        let first = RequestId::of(&headers);
        assert!(uuid::Uuid::parse_str(first.as_str()).is_ok());
        assert_ne!(first, RequestId::of(&headers));
        let v4 = uuid::Uuid::parse_str(first.as_str()).unwrap();
        assert_eq!(v4.get_version(), Some(uuid::Version::Random));
        assert_eq!(v4.get_variant(), uuid::Variant::RFC4122);
        let many: std::collections::HashSet<String> = (0..10_000)
            .map(|_| RequestId::generate().as_str().to_owned())
            .collect();
        assert_eq!(many.len(), 10_000);
        headers.insert(REQUEST_ID, value(b"has space"));
        let replaced = RequestId::of(&headers);
        assert!(uuid::Uuid::parse_str(replaced.as_str()).is_ok());
        headers.append(REQUEST_ID, value(b"second"));
        replaced.set(&mut headers);
        assert_eq!(headers.get_all(REQUEST_ID).iter().count(), 1);
        assert_eq!(RequestId::of(&headers), replaced);
    }
}
