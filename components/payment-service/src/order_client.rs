//! Reads the order to pay from order-service as the caller: `GET
//! {order_service_url}/api/orders/{id}` (service chaining in one host), and once more with
//! `POST .../payment-check` after the payment is claimed, just before charging. order-service
//! answers 404 for another user's order, so ownership is decided there.

use api::money::Money;
use api::upstream::{Reply, Service, Upstream};
use spin_sdk::http::Method;
use uuid::Uuid;

use crate::domain::OrderToPay;
use crate::error::PaymentError;

pub const ORDER_SERVICE: Service = Service {
    name: "order-service",
    failed: "order_service_failed",
    unavailable: "order_service_unavailable",
    timeout: "order_service_timeout",
};

pub async fn fetch_order(
    orders: &Upstream,
    order_id: Uuid,
    authorization: Option<&str>,
) -> Result<OrderToPay, PaymentError> {
    let reply = orders
        .get(&format!("/api/orders/{order_id}"), authorization)
        .await?;
    interpret(order_id, &reply)
}

/// The order as it is now, read by a write that makes every cancellation which read the
/// order earlier fail (see order-service's `change_status` for why payments need it).
pub async fn check_before_charge(
    orders: &Upstream,
    order_id: Uuid,
    authorization: Option<&str>,
) -> Result<OrderToPay, PaymentError> {
    let reply = orders
        .send(
            Method::Post,
            &format!("/api/orders/{order_id}/payment-check"),
            authorization,
            None,
        )
        .await?;
    interpret(order_id, &reply)
}

pub fn interpret(order_id: Uuid, reply: &Reply) -> Result<OrderToPay, PaymentError> {
    #[derive(serde::Deserialize)]
    struct OrderBody {
        id: Uuid,
        user_id: Uuid,
        status: String,
        total: serde_json::Value,
    }
    match reply.status {
        200 => {
            let order = reply.json::<OrderBody>()?;
            let total = Money::parse_json("total", &order.total)
                .map_err(|error| reply.failed(format!("order {}: {error}", order.id)))?;
            Ok(OrderToPay {
                id: order.id,
                user_id: order.user_id,
                status: order.status,
                total,
            })
        }
        404 if reply.error_code().as_deref() == Some("order_not_found") => {
            Err(PaymentError::OrderNotFound(order_id))
        }
        _ => Err(reply.unexpected().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::ApiError;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            service: ORDER_SERVICE,
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    const ORDER: &str = "550e8400-e29b-41d4-a716-446655440000";

    #[test]
    fn an_order_is_read_with_its_exact_total() {
        let body = format!(
            r#"{{"id":"{ORDER}","user_id":"{ORDER}","status":"created","total":1499.99,"items":[]}}"#
        );
        let order = interpret(ORDER.parse().unwrap(), &reply(200, &body)).unwrap();
        assert_eq!(order.total.kopecks(), 149_999);
    }

    #[test]
    fn a_missing_or_foreign_order_is_404_and_the_rest_502() {
        let missing = reply(
            404,
            r#"{"error":{"code":"order_not_found","message":"no"}}"#,
        );
        let error = ApiError::from(interpret(ORDER.parse().unwrap(), &missing).unwrap_err());
        assert_eq!((error.status, error.code), (404, "order_not_found"));
        for (status, body) in [(500, ""), (404, ""), (200, "{}"), (401, "{}")] {
            let error = ApiError::from(
                interpret(ORDER.parse().unwrap(), &reply(status, body)).unwrap_err(),
            );
            assert_eq!((error.status, error.code), (502, "order_service_failed"));
        }
    }
}
