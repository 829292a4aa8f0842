//! Asks payment-service whether an order is paid: `GET
//! {payment_service_url}/api/payments?order_id=` as the caller (service chaining in one
//! host). A paid order cannot be cancelled until refunds exist.

use api::upstream::{Reply, Service, Upstream};
use api::ApiError;
use uuid::Uuid;

pub const PAYMENT_SERVICE: Service = Service {
    name: "payment-service",
    failed: "payment_service_failed",
    unavailable: "payment_service_unavailable",
    timeout: "payment_service_timeout",
};

pub async fn is_paid(
    payments: &Upstream,
    order_id: Uuid,
    authorization: Option<&str>,
) -> Result<bool, ApiError> {
    let path = format!("/api/payments?order_id={order_id}&limit=1");
    interpret(&payments.get(&path, authorization).await?)
}

pub fn interpret(reply: &Reply) -> Result<bool, ApiError> {
    #[derive(serde::Deserialize)]
    struct Page {
        items: Vec<serde_json::Value>,
    }
    match reply.status {
        200 => Ok(!reply.json::<Page>()?.items.is_empty()),
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
    fn a_listed_payment_means_paid() {
        assert!(interpret(&reply(200, r#"{"items":[{"id":"x"}],"next_cursor":null}"#)).unwrap());
        assert!(!interpret(&reply(200, r#"{"items":[],"next_cursor":null}"#)).unwrap());
        let error = interpret(&reply(500, "")).unwrap_err();
        assert_eq!((error.status, error.code), (502, "payment_service_failed"));
    }
}
