//! The Spin HTTP edge: errors and values become `spin_sdk::http::Response`s with a JSON body,
//! request bodies become JSON, and routing misses answer in the shared error shape
//! (spin-sdk's `Router` would answer them in plain text).

use serde::de::DeserializeOwned;
use serde::Serialize;
use spin_sdk::http::{IntoResponse, Params, Request, Response};

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
