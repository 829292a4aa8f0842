//! Calls from one component to another through `wasi:http/outgoing-handler`: Spin service
//! chaining (`http://<component>.spin.internal`, no TCP) in one host, a Service URL across
//! pods. The base URL comes from a variable, the caller's `Authorization` goes along, and
//! every way the call can fail maps to 502/503/504 with the upstream's own error codes.

use serde::de::DeserializeOwned;
use spin_sdk::http::{send, ErrorCode, Method, Request, Response, SendError};

use crate::error::ApiError;

/// Another component and the error codes its failures answer with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// As people call it: `car-service`.
    pub name: &'static str,
    /// 502: it answered with a failure or a body we cannot read.
    pub failed: &'static str,
    /// 503: the request could not be made (refused, unknown host, not allowed).
    pub unavailable: &'static str,
    /// 504: it did not answer in time.
    pub timeout: &'static str,
}

/// Where a [`Service`] answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    pub service: Service,
    base_url: String,
}

impl Upstream {
    /// The service at the URL in Spin variable `variable` (e.g. `car_service_url`), which must
    /// be `http://` or `https://`; the manifest must also list it in `allowed_outbound_hosts`.
    pub fn from_variable(service: Service, variable: &str) -> Result<Self, ApiError> {
        let url = crate::config::variable(variable)?;
        Self::new(service, &url).ok_or_else(|| {
            ApiError::configuration(format!(
                "the Spin variable `{variable}` must be an http:// or https:// URL"
            ))
        })
    }

    pub fn new(service: Service, base_url: &str) -> Option<Self> {
        let valid = base_url.starts_with("http://") || base_url.starts_with("https://");
        valid.then(|| Self {
            service,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// `GET {base}{path}` with the caller's `Authorization` header (if any).
    pub async fn get(&self, path: &str, authorization: Option<&str>) -> Result<Reply, ApiError> {
        self.send(Method::Get, path, authorization, None).await
    }

    /// `method {base}{path}` with an optional JSON body. Any answer is a [`Reply`], whatever
    /// its status; only a call that got no answer is an error here.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        authorization: Option<&str>,
        json_body: Option<Vec<u8>>,
    ) -> Result<Reply, ApiError> {
        let url = format!("{}{path}", self.base_url);
        let mut request = Request::builder();
        request
            .method(method.clone())
            .uri(&url)
            .header("accept", "application/json");
        if let Some(authorization) = authorization {
            request.header("authorization", authorization);
        }
        if let Some(body) = json_body {
            request
                .header("content-type", "application/json")
                .body(body);
        }
        let response: Response = send(request.build())
            .await
            .map_err(|error| self.send_failed(&format!("{method} {url}"), error))?;
        Ok(Reply {
            service: self.service,
            status: *response.status(),
            body: response.into_body(),
        })
    }

    /// `send` failed: the request never got an answer. A timeout waiting for it is 504;
    /// everything else (denied by `allowed_outbound_hosts`, refused, unknown host, a broken
    /// URL) means the service could not be reached: 503. A body cut off mid-way is the
    /// service failing: 502.
    pub fn send_failed(&self, what: &str, error: SendError) -> ApiError {
        let service = self.service;
        let detail = format!("{what}: {error:?}");
        match error {
            SendError::Http(
                ErrorCode::ConnectionReadTimeout
                | ErrorCode::HttpResponseTimeout
                | ErrorCode::ConnectionWriteTimeout,
            ) => ApiError::gateway_timeout(
                service.timeout,
                format!("{} did not answer in time", service.name),
            ),
            SendError::ResponseConversion(_) => {
                ApiError::bad_gateway(service.failed, format!("{} failed to answer", service.name))
            }
            SendError::Http(_) | SendError::RequestConversion(_) | SendError::Io(_) => {
                ApiError::unavailable(
                    service.unavailable,
                    format!("{} is unavailable", service.name),
                )
            }
        }
        .with_detail(detail)
    }
}

/// What a service answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub service: Service,
    pub status: u16,
    pub body: Vec<u8>,
}

impl Reply {
    /// The `error.code` of a body in the shared error shape.
    pub fn error_code(&self) -> Option<String> {
        let body: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        body["error"]["code"].as_str().map(str::to_owned)
    }

    /// The body as `T`; a body that is not one is the service failing (502).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        serde_json::from_slice(&self.body).map_err(|error| {
            self.failed(format!(
                "answered {} with an unreadable body: {error}",
                self.status
            ))
        })
    }

    /// 502 in the service's code, with `detail` for the log.
    pub fn failed(&self, detail: impl std::fmt::Display) -> ApiError {
        ApiError::bad_gateway(
            self.service.failed,
            format!("{} failed to answer", self.service.name),
        )
        .with_detail(format!("{}: {detail}", self.service.name))
    }

    /// An answer the caller did not expect, as the caller's error (its status and the start
    /// of its body go to the log). The service unavailable (503) or out of time (504) stays
    /// so, in the service's codes, and a database found unavailable behind it keeps its own
    /// code, `database_unavailable`: the client is told to retry, not that something broke.
    /// Any other answer is the service failing: 502.
    pub fn unexpected(&self) -> ApiError {
        let answered = format!(
            "answered {}: {}",
            self.status,
            String::from_utf8_lossy(&self.body[..self.body.len().min(512)])
        );
        let service = self.service;
        match self.status {
            503 if self.error_code().as_deref() == Some("database_unavailable") => {
                ApiError::unavailable("database_unavailable", "the database is unavailable")
            }
            503 => ApiError::unavailable(
                service.unavailable,
                format!("{} is unavailable", service.name),
            ),
            504 => ApiError::gateway_timeout(
                service.timeout,
                format!("{} did not answer in time", service.name),
            ),
            _ => return self.failed(answered),
        }
        .with_detail(format!("{}: {answered}", service.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CARS: Service = Service {
        name: "car-service",
        failed: "car_service_failed",
        unavailable: "car_service_unavailable",
        timeout: "car_service_timeout",
    };

    fn upstream() -> Upstream {
        Upstream::new(CARS, "http://car-service.spin.internal/").unwrap()
    }

    #[test]
    fn only_http_urls_are_accepted_and_the_slash_is_trimmed() {
        assert_eq!(upstream().base_url, "http://car-service.spin.internal");
        assert!(Upstream::new(CARS, "https://cars.example").is_some());
        assert!(Upstream::new(CARS, "car-service.spin.internal").is_none());
        assert!(Upstream::new(CARS, "ftp://x").is_none());
    }

    #[test]
    fn unreachable_is_503_and_slow_is_504_in_the_service_codes() {
        for code in [
            ErrorCode::HttpRequestDenied,
            ErrorCode::ConnectionRefused,
            ErrorCode::DestinationNotFound,
            ErrorCode::InternalError(Some("unknown component".into())),
        ] {
            let error = upstream().send_failed("GET x", SendError::Http(code));
            assert_eq!((error.status, error.code), (503, "car_service_unavailable"));
        }
        let error =
            upstream().send_failed("GET x", SendError::Http(ErrorCode::HttpResponseTimeout));
        assert_eq!((error.status, error.code), (504, "car_service_timeout"));
    }

    #[test]
    fn replies_read_error_codes_and_bodies() {
        let reply = |status, body: &str| Reply {
            service: CARS,
            status,
            body: body.as_bytes().to_vec(),
        };
        let missing = reply(404, r#"{"error":{"code":"car_not_found","message":"no"}}"#);
        assert_eq!(missing.error_code().as_deref(), Some("car_not_found"));
        assert_eq!(reply(404, "").error_code(), None);
        #[derive(Debug, serde::Deserialize)]
        struct Car {
            #[allow(dead_code)]
            id: u32,
        }
        let error = reply(200, "<html>").json::<Car>().unwrap_err();
        assert_eq!((error.status, error.code), (502, "car_service_failed"));
        assert_eq!(reply(500, "boom").unexpected().status, 502);
    }

    #[test]
    fn an_unavailable_or_late_service_stays_503_or_504() {
        let reply = |status, body: &str| Reply {
            service: CARS,
            status,
            body: body.as_bytes().to_vec(),
        };
        let error = |reply: Reply| {
            let error = reply.unexpected();
            (error.status, error.code)
        };
        let database = r#"{"error":{"code":"database_unavailable","message":"x"}}"#;
        assert_eq!(error(reply(503, database)), (503, "database_unavailable"));
        assert_eq!(error(reply(503, "")), (503, "car_service_unavailable"));
        let late = r#"{"error":{"code":"deadline_exceeded","message":"x"}}"#;
        assert_eq!(error(reply(504, late)), (504, "car_service_timeout"));
        assert_eq!(error(reply(502, database)), (502, "car_service_failed"));
    }
}
