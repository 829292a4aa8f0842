//! Asks payment-service about an order's payment as the caller (service chaining in one
//! host): `GET {payment_service_url}/api/payments?order_id=&status=pending,succeeded,refunded`,
//! the order's newest such payment (a live one, pending or succeeded, is always the newest: no
//! payment is claimed while it lives, and a refund moves that very payment), and `POST
//! .../api/payments/{id}/refund` to give a succeeded one back when the order is cancelled.

use api::upstream::{Reply, Service, Upstream};
use api::ApiError;
use spin_sdk::http::Method;
use uuid::Uuid;

pub const PAYMENT_SERVICE: Service = Service {
    name: "payment-service",
    failed: "payment_service_failed",
    unavailable: "payment_service_unavailable",
    timeout: "payment_service_timeout",
};

/// The order's newest payment that is not declined, and how far it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holding {
    /// Being charged (or an attempt died mid-way and waits for its lease).
    Pending(Uuid),
    /// Charged: refunded before the order is cancelled.
    Succeeded(Uuid),
    /// Refunded: it holds nothing, but its refund is asked for once more, which finishes one
    /// whose bonuses did not come back (and costs a lookup otherwise).
    Refunded(Uuid),
}

/// The order's newest pending, succeeded or refunded payment, if it has one.
pub async fn holding(
    payments: &Upstream,
    order_id: Uuid,
    authorization: Option<&str>,
) -> Result<Option<Holding>, ApiError> {
    let path =
        format!("/api/payments?order_id={order_id}&status=pending,succeeded,refunded&limit=1");
    interpret(&payments.get(&path, authorization).await?)
}

pub fn interpret(reply: &Reply) -> Result<Option<Holding>, ApiError> {
    #[derive(serde::Deserialize)]
    struct Page {
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        id: Uuid,
        status: Option<String>,
    }
    match reply.status {
        // The filter is checked again: a payment of an unknown status counts as pending,
        // which holds the order until it is known.
        200 => {
            Ok(reply
                .json::<Page>()?
                .items
                .iter()
                .find_map(|item| match item.status.as_deref() {
                    Some("declined") => None,
                    Some("refunded") => Some(Holding::Refunded(item.id)),
                    Some("succeeded") => Some(Holding::Succeeded(item.id)),
                    _ => Some(Holding::Pending(item.id)),
                }))
        }
        _ => Err(reply.unexpected()),
    }
}

/// How a refund request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refund {
    /// Refunded (now or before).
    Done,
    /// payment-service refused it (409): the payment or its order moved on meanwhile.
    Refused,
}

/// Refunds the order's succeeded payment `payment_id`.
pub async fn refund(
    payments: &Upstream,
    payment_id: Uuid,
    authorization: Option<&str>,
) -> Result<Refund, ApiError> {
    let path = format!("/api/payments/{payment_id}/refund");
    let reply = payments
        .send(Method::Post, &path, authorization, None)
        .await?;
    interpret_refund(&reply)
}

pub fn interpret_refund(reply: &Reply) -> Result<Refund, ApiError> {
    match reply.status {
        200 => Ok(Refund::Done),
        409 => Ok(Refund::Refused),
        // bonus-service failing after the refund was recorded is payment-service's 502: a
        // repeated cancellation asks again, and the refund is finished then.
        _ => Err(reply.unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            service: PAYMENT_SERVICE,
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    const ID: &str = "550e8400-e29b-41d4-a716-446655440000";

    fn page(status: &str) -> String {
        format!(r#"{{"items":[{{"id":"{ID}","status":"{status}"}}],"next_cursor":null}}"#)
    }

    #[test]
    fn a_listed_pending_or_succeeded_payment_holds_the_order() {
        let id: Uuid = ID.parse().unwrap();
        assert_eq!(
            interpret(&reply(200, &page("pending"))).unwrap(),
            Some(Holding::Pending(id))
        );
        assert_eq!(
            interpret(&reply(200, &page("succeeded"))).unwrap(),
            Some(Holding::Succeeded(id))
        );
        assert_eq!(interpret(&reply(200, &page("declined"))).unwrap(), None);
        assert_eq!(
            interpret(&reply(200, &page("refunded"))).unwrap(),
            Some(Holding::Refunded(id))
        );
        let unknown = format!(r#"{{"items":[{{"id":"{ID}"}}],"next_cursor":null}}"#);
        assert_eq!(
            interpret(&reply(200, &unknown)).unwrap(),
            Some(Holding::Pending(id))
        );
        assert_eq!(
            interpret(&reply(200, r#"{"items":[],"next_cursor":null}"#)).unwrap(),
            None
        );
        let error = interpret(&reply(500, "")).unwrap_err();
        assert_eq!((error.status, error.code), (502, "payment_service_failed"));
    }

    #[test]
    fn a_refund_is_done_refused_or_an_error() {
        assert_eq!(interpret_refund(&reply(200, "{}")).unwrap(), Refund::Done);
        let refused = r#"{"error":{"code":"payment_pending","message":"no"}}"#;
        assert_eq!(
            interpret_refund(&reply(409, refused)).unwrap(),
            Refund::Refused
        );
        let error = interpret_refund(&reply(500, "")).unwrap_err();
        assert_eq!((error.status, error.code), (502, "payment_service_failed"));
    }
}
