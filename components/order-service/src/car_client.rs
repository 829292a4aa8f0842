//! Asks car-service whether a car exists and whom it belongs to: `GET
//! {car_service_url}/api/cars/{id}` through `wasi:http/outgoing-handler`. In one host that
//! is Spin service chaining (`http://car-service.spin.internal`, no TCP); on Kubernetes the
//! car SpinApp's Service URL. The host must list the URL in `allowed_outbound_hosts`.

use spin_sdk::http::{send, ErrorCode, Request, Response, SendError};
use uuid::Uuid;

use crate::error::OrderError;

/// What order-service needs to know about a car.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarRef {
    pub owner_id: Uuid,
}

/// Looks the car up, forwarding the caller's `Authorization` header so that car-service
/// answers 404 for a car the caller does not own.
pub async fn fetch_car(
    base_url: &str,
    car_id: Uuid,
    authorization: Option<&str>,
) -> Result<CarRef, OrderError> {
    let url = format!("{}/api/cars/{car_id}", base_url.trim_end_matches('/'));
    let mut request = Request::get(&url);
    request.header("accept", "application/json");
    if let Some(authorization) = authorization {
        request.header("authorization", authorization);
    }
    let response: Response = send(request.build())
        .await
        .map_err(|error| classify_send_error(&url, error))?;
    interpret(car_id, *response.status(), response.body())
}

/// Reads car-service's answer: 200 with the car, 404 `car_not_found` for no such car.
/// Anything else is car-service failing, including a 404 without that code (the URL
/// reached something that is not car-service's car route: a misconfiguration, not a
/// missing car) and other 4xx (our request is well-formed by construction).
pub fn interpret(car_id: Uuid, status: u16, body: &[u8]) -> Result<CarRef, OrderError> {
    match status {
        200 => {
            #[derive(serde::Deserialize)]
            struct CarBody {
                owner_id: Uuid,
            }
            serde_json::from_slice::<CarBody>(body)
                .map(|car| CarRef {
                    owner_id: car.owner_id,
                })
                .map_err(|error| {
                    OrderError::CarServiceFailed(format!(
                        "car-service answered 200 with an unreadable car: {error}"
                    ))
                })
        }
        404 if error_code(body).as_deref() == Some("car_not_found") => {
            Err(OrderError::CarNotFound(car_id))
        }
        status => Err(OrderError::CarServiceFailed(format!(
            "car-service answered {status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(512)])
        ))),
    }
}

/// The `error.code` of a body in the shared error shape.
fn error_code(body: &[u8]) -> Option<String> {
    let body: serde_json::Value = serde_json::from_slice(body).ok()?;
    body["error"]["code"].as_str().map(str::to_owned)
}

/// `send` failed: the request never got an answer. A timeout waiting for the answer is
/// 504; everything else (denied by `allowed_outbound_hosts`, refused, unknown host, a
/// broken URL) means car-service could not be reached: 503. A body cut off mid-way is
/// car-service failing: 502.
fn classify_send_error(url: &str, error: SendError) -> OrderError {
    let detail = format!("GET {url}: {error:?}");
    match error {
        SendError::Http(
            ErrorCode::ConnectionReadTimeout
            | ErrorCode::HttpResponseTimeout
            | ErrorCode::ConnectionWriteTimeout,
        ) => OrderError::CarServiceTimeout(detail),
        SendError::ResponseConversion(_) => OrderError::CarServiceFailed(detail),
        SendError::Http(_) | SendError::RequestConversion(_) | SendError::Io(_) => {
            OrderError::CarServiceUnavailable(detail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::ApiError;

    const CAR: &str = "550e8400-e29b-41d4-a716-446655440000";
    const OWNER: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

    fn car_id() -> Uuid {
        CAR.parse().unwrap()
    }

    fn api_error(result: Result<CarRef, OrderError>) -> ApiError {
        ApiError::from(result.unwrap_err())
    }

    #[test]
    fn ok_answer_yields_the_owner() {
        let body = format!(r#"{{"id":"{CAR}","owner_id":"{OWNER}","vin":"XTA210930V0123456"}}"#);
        let car = interpret(car_id(), 200, body.as_bytes()).unwrap();
        assert_eq!(car.owner_id.to_string(), OWNER);
    }

    #[test]
    fn not_found_answer_is_car_not_found() {
        let body = br#"{"error":{"code":"car_not_found","message":"no car with id ..."}}"#;
        let error = api_error(interpret(car_id(), 404, body));
        assert_eq!((error.status, error.code), (404, "car_not_found"));
        assert_eq!(error.message, format!("no car with id {CAR}"));
    }

    #[test]
    fn server_errors_and_unreadable_bodies_are_bad_gateway() {
        for (status, body) in [
            (500, &b""[..]),
            (503, b"{\"error\":{}}"),
            (401, b""),
            (404, b""),
            (404, b"{\"error\":{\"code\":\"not_found\"}}"),
            (200, b"<html>"),
            (200, b"{\"owner_id\":\"nope\"}"),
            (200, b"{}"),
        ] {
            let error = api_error(interpret(car_id(), status, body));
            assert_eq!(
                (error.status, error.code),
                (502, "car_service_failed"),
                "{status}"
            );
        }
    }

    #[test]
    fn unreachable_car_service_is_unavailable() {
        for code in [
            ErrorCode::HttpRequestDenied,
            ErrorCode::ConnectionRefused,
            ErrorCode::DestinationNotFound,
            ErrorCode::InternalError(Some("unknown component".into())),
        ] {
            let error = ApiError::from(classify_send_error("http://x", SendError::Http(code)));
            assert_eq!((error.status, error.code), (503, "car_service_unavailable"));
        }
    }

    #[test]
    fn slow_car_service_is_gateway_timeout() {
        let error = ApiError::from(classify_send_error(
            "http://x",
            SendError::Http(ErrorCode::HttpResponseTimeout),
        ));
        assert_eq!((error.status, error.code), (504, "car_service_timeout"));
    }
}
