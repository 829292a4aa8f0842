//! Reads the fine to pay from fines-service as the caller: `GET
//! {fines_service_url}/api/fines/{id}` (service chaining in one host). fines-service answers
//! 404 for a fine the caller cannot show is theirs, so ownership is decided there.

use api::money::Money;
use api::upstream::{Reply, Service, Upstream};
use uuid::Uuid;

use crate::domain::FineToPay;
use crate::error::PaymentError;

pub const FINES_SERVICE: Service = Service {
    name: "fines-service",
    failed: "fines_service_failed",
    unavailable: "fines_service_unavailable",
    timeout: "fines_service_timeout",
};

pub async fn fetch_fine(
    fines: &Upstream,
    fine_id: Uuid,
    authorization: Option<&str>,
) -> Result<FineToPay, PaymentError> {
    let reply = fines
        .get(&format!("/api/fines/{fine_id}"), authorization)
        .await?;
    interpret(fine_id, &reply)
}

pub fn interpret(fine_id: Uuid, reply: &Reply) -> Result<FineToPay, PaymentError> {
    #[derive(serde::Deserialize)]
    struct FineBody {
        id: Uuid,
        amount: serde_json::Value,
        paid: bool,
    }
    match reply.status {
        200 => {
            let fine = reply.json::<FineBody>()?;
            if fine.id != fine_id {
                return Err(reply
                    .failed(format!("asked for fine {fine_id}, got {}", fine.id))
                    .into());
            }
            let amount = Money::parse_json("amount", &fine.amount)
                .ok()
                .filter(|amount| *amount > Money::ZERO)
                .ok_or_else(|| reply.failed(format!("fine {fine_id}: not a positive amount")))?;
            Ok(FineToPay {
                id: fine.id,
                amount,
                paid: fine.paid,
            })
        }
        404 if reply.error_code().as_deref() == Some("fine_not_found") => {
            Err(PaymentError::FineNotFound(fine_id))
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
            service: FINES_SERVICE,
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    const FINE: &str = "3fa85f64-5717-4562-b3fc-2c963f66afa6";

    #[test]
    fn a_fine_is_read_with_its_exact_amount_and_whether_it_is_paid() {
        let body =
            format!(r#"{{"id":"{FINE}","license_plate":"А123БВ799","amount":750.5,"paid":false}}"#);
        let fine = interpret(FINE.parse().unwrap(), &reply(200, &body)).unwrap();
        assert_eq!((fine.amount.kopecks(), fine.paid), (75_050, false));
        let body = format!(r#"{{"id":"{FINE}","amount":"3000","paid":true}}"#);
        assert!(
            interpret(FINE.parse().unwrap(), &reply(200, &body))
                .unwrap()
                .paid
        );
    }

    #[test]
    fn a_missing_fine_is_404_and_anything_unusable_502() {
        let missing = reply(404, r#"{"error":{"code":"fine_not_found","message":"no"}}"#);
        let error = ApiError::from(interpret(FINE.parse().unwrap(), &missing).unwrap_err());
        assert_eq!((error.status, error.code), (404, "fine_not_found"));
        let other = "00000000-0000-0000-0000-000000000001";
        for (status, body) in [
            (500, String::new()),
            (404, String::new()),
            (200, "{}".to_owned()),
            (200, format!(r#"{{"id":"{FINE}","amount":0,"paid":false}}"#)),
            (
                200,
                format!(r#"{{"id":"{other}","amount":1,"paid":false}}"#),
            ),
            (401, "{}".to_owned()),
        ] {
            let error = ApiError::from(
                interpret(FINE.parse().unwrap(), &reply(status, &body)).unwrap_err(),
            );
            assert_eq!(
                (error.status, error.code),
                (502, "fines_service_failed"),
                "{body}"
            );
        }
    }
}
