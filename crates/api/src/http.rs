//! The Spin HTTP edge: errors and values become `spin_sdk::http::Response`s with a JSON body,
//! request bodies become JSON, and routing misses answer in the shared error shape
//! (spin-sdk's `Router` would answer them in plain text).

use serde::de::DeserializeOwned;
use serde::Serialize;
use spin_sdk::http::{IntoResponse, Params, Request, Response, Router};

use crate::error::ApiError;
use crate::json::{self, Object};

const JSON: &str = "application/json";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A 5xx means something on our side or a dependency failed: leave a trace in the
        // component's log (Spin writes stderr to `.spin/logs/<component>_stderr.txt`).
        if self.status >= 500 {
            eprintln!("{self}");
        }
        let mut response = Response::builder()
            .status(self.status)
            .header("content-type", JSON)
            .body(self.to_json())
            .build();
        if self.status == 401 {
            // RFC 6750 §3: say which scheme to use, and why a presented token failed.
            let challenge = match self.code {
                "missing_token" => "Bearer".to_owned(),
                _ => "Bearer error=\"invalid_token\"".to_owned(),
            };
            response.set_header("www-authenticate", challenge);
        }
        response
    }
}

/// A JSON response with `status`.
pub fn json_response<T: Serialize + ?Sized>(status: u16, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => Response::builder()
            .status(status)
            .header("content-type", JSON)
            .body(body)
            .build(),
        Err(error) => ApiError::internal("the response could not be encoded")
            .with_detail(error)
            .into_response(),
    }
}

/// The request body deserialized as `T` (see [`json::parse_json`] for the statuses).
pub fn read_json<T: DeserializeOwned>(request: &Request) -> Result<T, ApiError> {
    json::parse_json(request.body())
}

/// The request body as a JSON object, for domain parsers that report every bad field.
pub fn read_json_object(request: &Request) -> Result<Object, ApiError> {
    json::parse_json_object(request.body())
}

/// Router fallback for paths no route matches: 404 `not_found`.
pub fn not_found(request: Request, _params: Params) -> Response {
    ApiError::route_not_found(request.path()).into_response()
}

/// Router handler for a known path hit with a method it does not serve: 405 with `allow`
/// (e.g. `"GET"` or `"GET, POST"`) in the `Allow` header, as RFC 9110 asks.
pub fn method_not_allowed(allow: &'static str) -> impl Fn(Request, Params) -> Response {
    move |request, _params| {
        let method = request.method().to_string();
        let mut response = ApiError::method_not_allowed(&method, request.path()).into_response();
        response.set_header("allow", allow);
        response
    }
}

/// Router handler for `GET /api/<prefix>/health`: 200 `{"status":"ok","service":...}` once the
/// component's database (the `postgres_url` variable) answers a query; 503 when it does not.
/// Public: load balancers and `detailing doctor` call it without a token.
pub fn health(service: &'static str) -> impl Fn(Request, Params) -> Response {
    move |_request, _params| {
        let checked = crate::config::variable("postgres_url")
            .and_then(|url| crate::db::open(&url))
            .and_then(|db| crate::db::ping(&db));
        match checked {
            Ok(()) => json_response(
                200,
                &serde_json::json!({"status": "ok", "service": service}),
            ),
            Err(error) => error.into_response(),
        }
    }
}

/// Router handler for `GET /api/<prefix>/health/live`: 200 `{"status":"ok","service":...}`
/// without touching any dependency. Liveness (the instance loads and answers) as opposed to
/// readiness (`health`, which needs PostgreSQL); also the cheapest component route there is.
pub fn live(service: &'static str) -> impl Fn(Request, Params) -> Response {
    move |_request, _params| {
        json_response(
            200,
            &serde_json::json!({"status": "ok", "service": service}),
        )
    }
}

/// Registers a component's public probes under `base` (e.g. `/api/cars`): `GET <base>/health`
/// (readiness) and `GET <base>/health/live` (liveness), each 405 for any other method.
pub fn health_routes(router: &mut Router, base: &str, service: &'static str) {
    let ready = format!("{base}/health");
    let live_path = format!("{base}/health/live");
    router.get(&ready, health(service));
    router.get(&live_path, live(service));
    router.any(&ready, method_not_allowed("GET"));
    router.any(&live_path, method_not_allowed("GET"));
}

#[cfg(test)]
mod tests {
    use spin_sdk::http::{Method, Router};

    use super::*;
    use crate::testing::call;

    #[test]
    fn liveness_answers_without_the_host_and_other_methods_are_405() {
        let mut router = Router::new();
        health_routes(&mut router, "/api/things", "thing-service");
        let (status, _, body) = call(&router, Method::Get, "/api/things/health/live", "");
        assert_eq!(status, 200);
        assert_eq!(
            body,
            serde_json::json!({"status": "ok", "service": "thing-service"})
        );
        for path in ["/api/things/health", "/api/things/health/live"] {
            let (status, allow, body) = call(&router, Method::Post, path, "");
            assert_eq!(status, 405, "{path}");
            assert_eq!(allow.as_deref(), Some("GET"));
            assert_eq!(body["error"]["code"], "method_not_allowed");
        }
    }
}
