//! Paying a fine through payment-service: `POST {payment_service_url}/api/payments` with
//! `{fine_id, payment_method}` and the caller's token. payment-service reads the fine's amount
//! back from `GET /api/fines/{fine_id}` as the caller, claims the fine's one live payment
//! before it charges (so two attempts never both charge) and keeps it; this side only records
//! which payment paid the fine. No Idempotency-Key: a key per fine would replay a decline to
//! every later attempt, and a retry after a lost answer finds the payment through
//! `GET /api/payments?fine_id=&status=succeeded`. Spin service chaining in one host, a
//! Service URL across pods.

use api::upstream::{Reply, Service, Upstream};
use api::ApiError;
use serde::Deserialize;
use spin_sdk::http::{send, Method, Request, Response};
use uuid::Uuid;

use crate::domain::PaymentMethod;

pub const PAYMENT_SERVICE: Service = Service {
    name: "payment-service",
    failed: "payment_service_failed",
    unavailable: "payment_service_unavailable",
    timeout: "payment_service_timeout",
};

/// Where payment-service takes payments.
pub struct Payments {
    upstream: Upstream,
    url: String,
}

impl Payments {
    /// From the Spin variable `payment_service_url` (http:// or https://; the manifest lists it
    /// in `allowed_outbound_hosts` too).
    pub fn from_variable() -> Result<Self, ApiError> {
        const VARIABLE: &str = "payment_service_url";
        let upstream = Upstream::from_variable(PAYMENT_SERVICE, VARIABLE)?;
        let base = api::config::variable(VARIABLE)?;
        Ok(Self {
            upstream,
            url: format!("{}/api/payments", base.trim_end_matches('/')),
        })
    }

    /// Asks payment-service to charge fine `fine` as the caller (`authorization` is their
    /// header). Any answer is a [`Reply`]; only a call that got none is an error here.
    pub async fn charge(
        &self,
        fine: Uuid,
        method: PaymentMethod,
        authorization: Option<&str>,
    ) -> Result<Reply, ApiError> {
        let body = serde_json::json!({"fine_id": fine, "payment_method": method.as_str()});
        let mut request = Request::builder();
        request
            .method(Method::Post)
            .uri(&self.url)
            .header("accept", "application/json")
            .header("content-type", "application/json");
        if let Some(authorization) = authorization {
            request.header("authorization", authorization);
        }
        request.body(body.to_string().into_bytes());
        let response: Response = send(request.build()).await.map_err(|error| {
            self.upstream
                .send_failed(&format!("POST {}", self.url), error)
        })?;
        Ok(Reply {
            service: PAYMENT_SERVICE,
            status: *response.status(),
            body: response.into_body(),
        })
    }

    /// The succeeded payment of fine `fine` the caller can see, if any: how a fine paid by
    /// an attempt whose answer was lost gets its payment recorded.
    pub async fn succeeded(
        &self,
        fine: Uuid,
        authorization: Option<&str>,
    ) -> Result<Option<Uuid>, ApiError> {
        let url = format!("{}?fine_id={fine}&status=succeeded&limit=1", self.url);
        let mut request = Request::builder();
        request
            .method(Method::Get)
            .uri(&url)
            .header("accept", "application/json");
        if let Some(authorization) = authorization {
            request.header("authorization", authorization);
        }
        let response: Response = send(request.build())
            .await
            .map_err(|error| self.upstream.send_failed(&format!("GET {url}"), error))?;
        let reply = Reply {
            service: PAYMENT_SERVICE,
            status: *response.status(),
            body: response.into_body(),
        };
        if reply.status != 200 {
            return Err(reply.unexpected());
        }
        let list: serde_json::Value = reply.json()?;
        match list["items"].as_array().and_then(|items| items.first()) {
            Some(payment) => match paid(&reply, payment, fine)? {
                Charge::Paid { payment_id } => Ok(Some(payment_id)),
                _ => Ok(None),
            },
            None => Ok(None),
        }
    }
}

/// What payment-service made of the charge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Charge {
    /// The fine's payment, made now (201).
    Paid { payment_id: Uuid },
    /// payment-service holds a succeeded payment of the fine already (409
    /// `fine_already_paid`): look it up and record it.
    PaidBefore(Reply),
    /// payment-service refused in the shared error shape (402 declined, 404, 409, 422...):
    /// nothing was paid, and its answer goes back to the caller unchanged.
    Refused(Reply),
}

/// Reads payment-service's answer to the charge of fine `fine`. A payment for another fine,
/// one not `succeeded`, or any answer outside the contract is payment-service failing (502).
pub fn interpret(reply: &Reply, fine: Uuid) -> Result<Charge, ApiError> {
    match reply.status {
        201 => paid(reply, &reply.json()?, fine),
        409 if reply.error_code().as_deref() == Some("fine_already_paid") => {
            Ok(Charge::PaidBefore(reply.clone()))
        }
        400 | 402 | 403 | 404 | 409 | 422 if reply.error_code().is_some() => {
            Ok(Charge::Refused(reply.clone()))
        }
        _ => Err(reply.unexpected()),
    }
}

fn paid(reply: &Reply, payment: &serde_json::Value, fine: Uuid) -> Result<Charge, ApiError> {
    #[derive(serde::Deserialize)]
    struct Payment {
        id: Uuid,
        fine_id: Uuid,
        status: String,
    }
    let payment = Payment::deserialize(payment)
        .map_err(|error| reply.failed(format!("answered an unreadable payment: {error}")))?;
    if payment.fine_id != fine {
        return Err(reply.failed(format!(
            "answered payment {} of fine {} for fine {fine}",
            payment.id, payment.fine_id
        )));
    }
    if payment.status != "succeeded" {
        return Err(reply.failed(format!(
            "answered payment {} with status {:?}",
            payment.id, payment.status
        )));
    }
    Ok(Charge::Paid {
        payment_id: payment.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FINE: Uuid = Uuid::from_u128(0xf1);

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            service: PAYMENT_SERVICE,
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    fn payment(fine: Uuid, status: &str) -> String {
        format!(
            r#"{{"id":"00000000-0000-0000-0000-0000000000aa","fine_id":"{fine}","user_id":"00000000-0000-0000-0000-000000000001","amount":750.0,"payment_method":"card","status":"{status}","created_at":"2026-01-01T00:00:00Z"}}"#
        )
    }

    const PAYMENT_ID: Uuid = Uuid::from_u128(0xaa);

    #[test]
    fn a_new_payment_pays_the_fine() {
        assert_eq!(
            interpret(&reply(201, &payment(FINE, "succeeded")), FINE).unwrap(),
            Charge::Paid {
                payment_id: PAYMENT_ID
            }
        );
    }

    #[test]
    fn a_fine_paid_before_is_looked_up() {
        let body = r#"{"error":{"code":"fine_already_paid","message":"paid"}}"#;
        assert!(matches!(
            interpret(&reply(409, body), FINE).unwrap(),
            Charge::PaidBefore(_)
        ));
    }

    #[test]
    fn refusals_in_the_error_shape_are_passed_on() {
        for (status, code) in [
            (402, "payment_declined"),
            (404, "fine_not_found"),
            (409, "idempotency_key_in_use"),
            (422, "idempotency_key_reused"),
            (403, "staff_only"),
        ] {
            let body = format!(r#"{{"error":{{"code":"{code}","message":"no"}}}}"#);
            match interpret(&reply(status, &body), FINE).unwrap() {
                Charge::Refused(refused) => assert_eq!(refused.status, status),
                other => panic!("{status}: {other:?}"),
            }
        }
    }

    #[test]
    fn anything_else_is_bad_gateway() {
        for (status, body) in [
            (201, payment(Uuid::from_u128(2), "succeeded")),
            (201, payment(FINE, "pending")),
            (201, "{}".to_owned()),
            (200, payment(FINE, "succeeded")),
            (402, "declined".to_owned()),
            (
                401,
                r#"{"error":{"code":"invalid_token","message":"no"}}"#.to_owned(),
            ),
            (
                500,
                r#"{"error":{"code":"internal","message":"no"}}"#.to_owned(),
            ),
        ] {
            let error = interpret(&reply(status, &body), FINE).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (502, "payment_service_failed"),
                "{status} {body}"
            );
        }
    }
}
