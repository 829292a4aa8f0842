//! Asks car-service whether a car exists, is the caller's, and whom it belongs to: `GET
//! {car_service_url}/api/cars/{id}` with the caller's token (`api::upstream`). In one host
//! that is Spin service chaining (`http://car-service.spin.internal`, no TCP); on
//! Kubernetes the car SpinApp's Service URL.

use api::upstream::{Reply, Service, Upstream};
use uuid::Uuid;

use crate::error::OrderError;

pub const CAR_SERVICE: Service = Service {
    name: "car-service",
    failed: "car_service_failed",
    unavailable: "car_service_unavailable",
    timeout: "car_service_timeout",
};

/// What order-service needs to know about a car: whose it is, and how the board names it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub struct CarRef {
    pub owner_id: Uuid,
    #[serde(default)]
    pub license_plate: Option<String>,
    #[serde(default)]
    pub make: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
}

/// Looks the car up as the caller: car-service answers 404 for a car that is not theirs.
pub async fn fetch_car(
    cars: &Upstream,
    car_id: Uuid,
    authorization: Option<&str>,
) -> Result<CarRef, OrderError> {
    let reply = cars
        .get(&format!("/api/cars/{car_id}"), authorization)
        .await?;
    interpret(car_id, &reply)
}

/// Reads car-service's answer: 200 with the car, 404 `car_not_found` for no such car.
/// Anything else is car-service failing, including a 404 without that code (the URL
/// reached something that is not car-service's car route: a misconfiguration, not a
/// missing car) and other 4xx (our request is well-formed by construction).
pub fn interpret(car_id: Uuid, reply: &Reply) -> Result<CarRef, OrderError> {
    match reply.status {
        200 => Ok(reply.json::<CarRef>()?),
        404 if reply.error_code().as_deref() == Some("car_not_found") => {
            Err(OrderError::CarNotFound(car_id))
        }
        _ => Err(reply.unexpected().into()),
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

    fn reply(status: u16, body: &[u8]) -> Reply {
        Reply {
            service: CAR_SERVICE,
            status,
            body: body.to_vec(),
        }
    }

    fn api_error(result: Result<CarRef, OrderError>) -> ApiError {
        ApiError::from(result.unwrap_err())
    }

    #[test]
    fn ok_answer_yields_the_owner() {
        let body = format!(r#"{{"id":"{CAR}","owner_id":"{OWNER}","vin":"XTA210930V0123456"}}"#);
        let car = interpret(car_id(), &reply(200, body.as_bytes())).unwrap();
        assert_eq!(car.owner_id.to_string(), OWNER);
        assert_eq!(car.license_plate, None);
        let body = format!(
            r#"{{"owner_id":"{OWNER}","license_plate":"А123БВ799","make":"Lada","model":"Vesta"}}"#
        );
        let car = interpret(car_id(), &reply(200, body.as_bytes())).unwrap();
        assert_eq!(
            (
                car.license_plate.as_deref(),
                car.make.as_deref(),
                car.model.as_deref()
            ),
            (Some("А123БВ799"), Some("Lada"), Some("Vesta"))
        );
    }

    #[test]
    fn not_found_answer_is_car_not_found() {
        let body = br#"{"error":{"code":"car_not_found","message":"no car with id ..."}}"#;
        let error = api_error(interpret(car_id(), &reply(404, body)));
        assert_eq!((error.status, error.code), (404, "car_not_found"));
        assert_eq!(error.message, format!("no car with id {CAR}"));
    }

    #[test]
    fn server_errors_and_unreadable_bodies_are_bad_gateway() {
        for (status, body) in [
            (500, &b""[..]),
            (401, b""),
            (404, b""),
            (404, b"{\"error\":{\"code\":\"not_found\"}}"),
            (200, b"<html>"),
            (200, b"{\"owner_id\":\"nope\"}"),
            (200, b"{}"),
        ] {
            let error = api_error(interpret(car_id(), &reply(status, body)));
            assert_eq!(
                (error.status, error.code),
                (502, "car_service_failed"),
                "{status}"
            );
        }
    }

    #[test]
    fn car_service_without_its_database_is_503_database_unavailable() {
        let body = br#"{"error":{"code":"database_unavailable","message":"x"}}"#;
        let error = api_error(interpret(car_id(), &reply(503, body)));
        assert_eq!((error.status, error.code), (503, "database_unavailable"));
        let error = api_error(interpret(car_id(), &reply(503, b"")));
        assert_eq!((error.status, error.code), (503, "car_service_unavailable"));
    }
}
