//! Asks payment-service whether a payment holds an order: `GET
//! {payment_service_url}/api/payments?order_id=&status=pending,succeeded` as the caller
//! (service chaining in one host). Such an order cannot be cancelled until refunds exist.

use api::upstream::{Reply, Service, Upstream};
use api::ApiError;
use uuid::Uuid;

pub const PAYMENT_SERVICE: Service = Service {
    name: "payment-service",
    failed: "payment_service_failed",
    unavailable: "payment_service_unavailable",
    timeout: "payment_service_timeout",
};

/// Whether the order has a pending (being charged) or succeeded payment.
pub async fn holds_order(
    payments: &Upstream,
    order_id: Uuid,
    authorization: Option<&str>,
) -> Result<bool, ApiError> {
    let path = format!("/api/payments?order_id={order_id}&status=pending,succeeded&limit=1");
    interpret(&payments.get(&path, authorization).await?)
}

pub fn interpret(reply: &Reply) -> Result<bool, ApiError> {
    #[derive(serde::Deserialize)]
    struct Page {
        items: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        status: Option<String>,
    }
    match reply.status {
        // The filter is checked again: a payment without a known status counts as holding.
        200 => Ok(reply
            .json::<Page>()?
            .items
            .iter()
            .any(|item| item.status.as_deref() != Some("declined"))),
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

    #[test]
    fn a_listed_pending_or_succeeded_payment_holds_the_order() {
        for status in ["pending", "succeeded"] {
            let body =
                format!(r#"{{"items":[{{"id":"x","status":"{status}"}}],"next_cursor":null}}"#);
            assert!(interpret(&reply(200, &body)).unwrap(), "{status}");
        }
        let declined = r#"{"items":[{"id":"x","status":"declined"}],"next_cursor":null}"#;
        assert!(!interpret(&reply(200, declined)).unwrap());
        assert!(interpret(&reply(200, r#"{"items":[{"id":"x"}],"next_cursor":null}"#)).unwrap());
        assert!(!interpret(&reply(200, r#"{"items":[],"next_cursor":null}"#)).unwrap());
        let error = interpret(&reply(500, "")).unwrap_err();
        assert_eq!((error.status, error.code), (502, "payment_service_failed"));
    }
}
