//! fines-service: traffic fines on the plates of the caller's cars, checked and paid once,
//! as a Spin HTTP component routed at `/api/fines/...`. The caller's cars come from
//! car-service (`car_client`). This file only maps HTTP to the domain (`domain`),
//! car-service and the table (`store`); it must not hold business rules.

mod car_client;
pub mod domain;
mod error;
mod store;

use std::collections::BTreeSet;

use api::http::{health_routes, json_response, method_not_allowed, not_found};
use api::query::Query;
use api::upstream::Upstream;
use api::{ApiError, Caller, FieldErrors};
use spin_sdk::http::{Params, Request, Response, Router};
use uuid::Uuid;

use crate::domain::{CheckScope, LicensePlate, UnpaidFines};
use crate::error::FinesError;
use crate::store::Payment;

const SERVICE: &str = "fines-service";

// Exported only in the wasm build: a native cdylib cannot carry the WIT export's symbol
// name (`wasi:http/incoming-handler@0.2.0#handle`), and native builds exist for tests.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(request: Request) -> Response {
    router().handle_async(request).await
}

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn router() -> Router {
    let mut router = Router::new();
    health_routes(&mut router, "/api/fines", SERVICE);
    router.get_async("/api/fines/check", check);
    router.post_async("/api/fines/:fine_id/pay", pay);
    // Known paths with another method: 405 in the JSON error shape, not spin-sdk's text.
    router.any("/api/fines/check", method_not_allowed("GET"));
    router.any("/api/fines/:fine_id/pay", method_not_allowed("POST"));
    router.any("/*", not_found);
    router
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(check, pay))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/fines", "fines"));
    doc
}

/// What the component needs from Spin variables, read per request.
struct Config {
    postgres_url: String,
}

impl Config {
    fn load() -> Result<Self, ApiError> {
        Ok(Self {
            postgres_url: api::config::variable("postgres_url")?,
        })
    }

    /// Where car-service answers (`car_service_url`): `http://car-service.spin.internal`
    /// in one host, a Service URL across pods (DESIGN.md §7).
    fn cars() -> Result<Upstream, ApiError> {
        Upstream::from_variable(car_client::CAR_SERVICE, "car_service_url")
    }
}

/// The unpaid fines on the caller's cars, newest first, with their total. `?license_plate=`
/// narrows the check to one of them; staff may name any plate.
#[utoipa::path(get, path = "/api/fines/check", tag = "fines",
    summary = "The unpaid fines on the caller's cars, newest first, with their total",
    params(
        ("license_plate" = Option<String>, Query, min_length = 1, max_length = 12,
            description = "Only this plate, one of the caller's cars' (staff: any plate); \
                case-blind, trimmed"),
    ),
    responses(
        (status = 200, description = "The unpaid fines, whole (not paged)", body = domain::UnpaidFines),
        (status = 404, description = "license_plate_not_found: none of the caller's cars has this plate", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: license_plate is not 1 to 12 characters", body = api::openapi::ErrorBody),
        (status = 502, description = "car_service_failed: car-service answered unusably", body = api::openapi::ErrorBody),
        (status = 503, description = "car_service_unavailable: car-service cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "car_service_timeout: car-service did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn check(request: Request, _params: Params) -> Result<Response, FinesError> {
    let caller = api::auth::caller(&request)?;
    let query = Query::parse(request.query())?;
    let requested = query
        .get("license_plate")
        .map(LicensePlate::parse)
        .transpose()
        .map_err(FieldErrors::from)?;
    let config = Config::load()?;
    let plates = match CheckScope::new(requested, caller.is_staff()) {
        CheckScope::AnyPlate(plate) => BTreeSet::from([plate]),
        CheckScope::OwnCars(only) => {
            domain::pick_own_plates(own_plates(&request, &caller).await?, only)?
        }
    };
    let db = api::db::open(&config.postgres_url)?;
    let unpaid =
        UnpaidFines::new(store::unpaid(&db, &plates)?).ok_or(FinesError::TotalOutOfRange)?;
    Ok(json_response(200, &unpaid))
}

/// Pays a fine once: staff any fine, anyone else one on their own cars' plates. Another
/// user's fine answers exactly like a missing one, and so does an id that is not a UUID.
#[utoipa::path(post, path = "/api/fines/{fine_id}/pay", tag = "fines", operation_id = "pay_fine",
    summary = "Pay a fine, once",
    params(("fine_id" = Uuid, Path)),
    responses(
        (status = 200, description = "Paid: the fine with `paid: true`", body = domain::Fine),
        (status = 404, description = "fine_not_found: no such fine, or not on the caller's cars' plates", body = api::openapi::ErrorBody),
        (status = 409, description = "fine_already_paid (also to the loser of two concurrent payments)", body = api::openapi::ErrorBody),
        (status = 502, description = "car_service_failed: car-service answered unusably", body = api::openapi::ErrorBody),
        (status = 503, description = "car_service_unavailable: car-service cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "car_service_timeout: car-service did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn pay(request: Request, params: Params) -> Result<Response, FinesError> {
    let caller = api::auth::caller(&request)?;
    let raw_id = params.get("fine_id").unwrap_or_default();
    let id = Uuid::parse_str(raw_id).map_err(|_| FinesError::FineNotFound(raw_id.to_owned()))?;
    let config = Config::load()?;
    let plates = if caller.is_staff() {
        None
    } else {
        Some(own_plates(&request, &caller).await?)
    };
    let db = api::db::open(&config.postgres_url)?;
    match store::pay(&db, id, caller.user_id, plates.as_ref())? {
        Payment::Paid(fine) => Ok(json_response(200, &fine)),
        Payment::AlreadyPaid => Err(FinesError::AlreadyPaid(id)),
        Payment::NotFound => Err(FinesError::FineNotFound(id.to_string())),
    }
}

/// The plates of the caller's cars, asked of car-service with the caller's own token, so
/// car-service's ownership rules decide. Called before the database is opened, so no
/// pooled connection is held while waiting on another component.
async fn own_plates(
    request: &Request,
    caller: &Caller,
) -> Result<BTreeSet<LicensePlate>, ApiError> {
    let cars = Config::cars()?;
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    car_client::plates_of(&cars, caller.user_id, authorization).await
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, HTTP, Postgres), so no host is needed. End-to-end tests live in
    //! crates/detailing/tests/fines.rs.

    use super::*;
    use serde_json::Value;
    use spin_sdk::http::Method;

    fn send(method: Method, path: &str) -> (u16, Option<String>, Value) {
        api::testing::call(&router(), method, path, "")
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schemas = "#/components/schemas/";
        for (path, method, schema) in [
            ("/api/fines/check", "get", "UnpaidFines"),
            ("/api/fines/{fine_id}/pay", "post", "Fine"),
        ] {
            let responses = &doc["paths"][path][method]["responses"];
            assert_eq!(
                responses["200"]["content"]["application/json"]["schema"]["$ref"],
                format!("{schemas}{schema}"),
                "{path}"
            );
            for status in ["404", "502", "503", "504"] {
                assert!(responses[status].is_object(), "{path} {status}");
            }
        }
        let fine = &doc["components"]["schemas"]["Fine"];
        assert_eq!(fine["properties"]["paid"]["type"], "boolean");
        assert!(doc["components"]["schemas"]["Money"].is_object());
        assert!(doc["paths"]["/api/fines/health/live"]["get"].is_object());
    }

    #[test]
    fn unknown_paths_are_a_json_404() {
        for path in [
            "/api/fines",
            "/api/fines/3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "/api/fines/check/all",
            "/api/fines/3fa85f64-5717-4562-b3fc-2c963f66afa6/pay/now",
        ] {
            let (status, _, body) = send(Method::Get, path);
            assert_eq!(status, 404, "{path}");
            assert_eq!(body["error"]["code"], "not_found", "{path}");
        }
    }

    #[test]
    fn wrong_method_is_a_json_405_with_allow() {
        for (method, path, allow) in [
            (Method::Post, "/api/fines/check", "GET"),
            (Method::Delete, "/api/fines/check", "GET"),
            (
                Method::Get,
                "/api/fines/3fa85f64-5717-4562-b3fc-2c963f66afa6/pay",
                "POST",
            ),
            (Method::Put, "/api/fines/first/pay", "POST"),
            (Method::Post, "/api/fines/health", "GET"),
        ] {
            let (status, allowed, body) = send(method, path);
            assert_eq!(status, 405, "{path}");
            assert_eq!(allowed.as_deref(), Some(allow), "{path}");
            assert_eq!(body["error"]["code"], "method_not_allowed");
        }
    }

    #[test]
    fn every_fines_endpoint_but_health_needs_a_token() {
        for (method, path) in [
            (Method::Get, "/api/fines/check"),
            (Method::Get, "/api/fines/check?license_plate=%"),
            (
                Method::Post,
                "/api/fines/3fa85f64-5717-4562-b3fc-2c963f66afa6/pay",
            ),
            (Method::Post, "/api/fines/not-a-uuid/pay"),
        ] {
            let (status, _, body) = send(method, path);
            assert_eq!(status, 401, "{path}");
            assert_eq!(body["error"]["code"], "missing_token");
        }
    }
}
