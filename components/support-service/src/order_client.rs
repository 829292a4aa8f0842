//! Asks order-service whether an order exists and is the caller's: `GET
//! {order_service_url}/api/orders/{id}` with the caller's token (`api::upstream`). In one
//! host that is Spin service chaining (`http://order-service.spin.internal`, no TCP); on
//! Kubernetes the order SpinApp's Service URL.

use api::upstream::{Reply, Service, Upstream};
use uuid::Uuid;

use crate::error::SupportError;

pub const ORDER_SERVICE: Service = Service {
    name: "order-service",
    failed: "order_service_failed",
    unavailable: "order_service_unavailable",
    timeout: "order_service_timeout",
};

/// Looks the order up as the caller: order-service answers 404 for an order that is not
/// theirs (staff see every order).
pub async fn check_order(
    orders: &Upstream,
    order_id: Uuid,
    authorization: Option<&str>,
) -> Result<(), SupportError> {
    let reply = orders
        .get(&format!("/api/orders/{order_id}"), authorization)
        .await?;
    interpret(order_id, &reply)
}

/// Reads order-service's answer: 200 with that order, 404 `order_not_found` for no such
/// order of the caller's. Anything else is order-service failing, including a 404 without
/// that code (the URL reached something that is not order-service's order route: a
/// misconfiguration, not a missing order), a 401 (the two components disagree on the token
/// key) and an order with another id.
pub fn interpret(order_id: Uuid, reply: &Reply) -> Result<(), SupportError> {
    #[derive(serde::Deserialize)]
    struct OrderBody {
        id: Uuid,
    }
    match reply.status {
        200 => {
            let order = reply.json::<OrderBody>()?;
            if order.id == order_id {
                Ok(())
            } else {
                Err(reply
                    .failed(format!("asked for order {order_id}, got {}", order.id))
                    .into())
            }
        }
        404 if reply.error_code().as_deref() == Some("order_not_found") => {
            Err(SupportError::UnknownOrder(order_id))
        }
        _ => Err(reply.unexpected().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::ApiError;

    const ORDER: &str = "550e8400-e29b-41d4-a716-446655440000";

    fn order_id() -> Uuid {
        ORDER.parse().unwrap()
    }

    fn reply(status: u16, body: &[u8]) -> Reply {
        Reply {
            service: ORDER_SERVICE,
            status,
            body: body.to_vec(),
        }
    }

    fn api_error(result: Result<(), SupportError>) -> ApiError {
        ApiError::from(result.unwrap_err())
    }

    #[test]
    fn ok_answer_with_the_order_accepts_it() {
        let body = format!(r#"{{"id":"{ORDER}","status":"created","description":"ТО"}}"#);
        assert!(interpret(order_id(), &reply(200, body.as_bytes())).is_ok());
    }

    #[test]
    fn order_not_found_is_passed_on_as_order_not_found() {
        let body = br#"{"error":{"code":"order_not_found","message":"no order with id ..."}}"#;
        let error = api_error(interpret(order_id(), &reply(404, body)));
        assert_eq!((error.status, error.code), (404, "order_not_found"));
    }

    #[test]
    fn server_errors_and_unreadable_bodies_are_bad_gateway() {
        let other = r#"{"id":"3fa85f64-5717-4562-b3fc-2c963f66afa6"}"#;
        for (status, body) in [
            (500, &b""[..]),
            (401, b"{\"error\":{\"code\":\"invalid_token\"}}"),
            (404, b""),
            (404, b"{\"error\":{\"code\":\"not_found\"}}"),
            (200, b"<html>"),
            (200, b"{}"),
            (200, other.as_bytes()),
        ] {
            let error = api_error(interpret(order_id(), &reply(status, body)));
            assert_eq!(
                (error.status, error.code),
                (502, "order_service_failed"),
                "{status}"
            );
        }
    }
}
