//! fines-service: traffic fines on the plates the caller proves are theirs, checked, read and
//! paid once through payment-service, as a Spin HTTP component routed at `/api/fines/...`.
//! A plate counts as the caller's only with the registration certificate a fine was issued
//! against; the caller's certificates come from car-service (`car_client`), payments from
//! payment-service (`payment_client`). This file only maps HTTP to the domain (`domain`),
//! the two services and the table (`store`); it must not hold business rules.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

mod car_client;
pub mod domain;
mod error;
mod payment_client;
mod store;

use std::collections::BTreeSet;

use api::http::json_response;
use api::query::Query;
use api::routes::Routes;
use api::upstream::Upstream;
use api::{ApiError, Caller, FieldErrors};
use spin_sdk::http::{Params, Request, Response, Router};
use uuid::Uuid;

use crate::domain::{
    CheckScope, Fine, LicensePlate, PaymentMethod, ProvenPlate, UnpaidFines, Visibility,
};
use crate::error::FinesError;
use crate::payment_client::{Charge, Payments};

const SERVICE: &str = "fines-service";

api::export_router!(router);

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn routes() -> Routes {
    Routes::service("/api/fines", SERVICE)
        .get_async("/api/fines/check", check)
        .get_async("/api/fines/:fine_id", get_fine)
        .post_async("/api/fines/:fine_id/pay", pay)
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(check, get_fine, pay))]
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
    /// in one host, a Service URL across pods.
    fn cars() -> Result<Upstream, ApiError> {
        Upstream::from_variable(car_client::CAR_SERVICE, "car_service_url")
    }
}

/// The unpaid fines on the plates the caller proves, newest first, with their total.
/// `?license_plate=` narrows the check to one of them; staff may name any plate.
#[utoipa::path(get, path = "/api/fines/check", tag = "fines",
    summary = "The unpaid fines on the caller's proven plates, newest first, with their total",
    description = "A plate counts as the caller's when one of their cars carries it and has a \
        `registration` document whose certificate number is the one the fine was issued \
        against (fines are looked up by plate and certificate number together). A car without \
        one shows no fines.",
    params(
        ("license_plate" = Option<String>, Query, min_length = 1, max_length = 12,
            pattern = r"^[ -]*[0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0400-\u0481\u048A-\u04FF][0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0400-\u0481\u048A-\u04FF -]*$",
            description = "Only this plate, one the caller proves (staff: any plate, whatever \
                its certificate); case-blind, trimmed"),
    ),
    responses(
        (status = 200, description = "The unpaid fines, whole (not paged)", body = domain::UnpaidFines),
        (status = 404, description = "license_plate_not_found: none of the caller's cars has this plate with a registration certificate", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: license_plate is not a plate car-service could register", body = api::openapi::ErrorBody),
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
    let fines = match CheckScope::new(requested, caller.is_staff()) {
        CheckScope::AnyPlate(plate) => {
            store::unpaid_on_plate(&api::db::open(&config.postgres_url)?, &plate)?
        }
        CheckScope::OwnCars(only) => {
            let proven = domain::pick_own_plates(proven_plates(&request, &caller).await?, only)?;
            store::unpaid_proven(&api::db::open(&config.postgres_url)?, &proven)?
        }
    };
    let unpaid = UnpaidFines::new(fines).ok_or(FinesError::TotalOutOfRange)?;
    Ok(json_response(200, &unpaid))
}

/// One fine, paid or not: staff any, anyone else one on a plate they prove with the fine's
/// certificate. payment-service reads a fine's amount here, as the caller, before charging it.
#[utoipa::path(get, path = "/api/fines/{fine_id}", tag = "fines", operation_id = "get_fine",
    summary = "One fine (payment-service reads its amount here)",
    params(("fine_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The fine", body = domain::Fine),
        (status = 404, description = "fine_not_found: no such fine, or not on a plate the caller proves with its certificate", body = api::openapi::ErrorBody),
        (status = 502, description = "car_service_failed: car-service answered unusably", body = api::openapi::ErrorBody),
        (status = 503, description = "car_service_unavailable: car-service cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "car_service_timeout: car-service did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn get_fine(request: Request, params: Params) -> Result<Response, FinesError> {
    let caller = api::auth::caller(&request)?;
    let id = fine_id(&params)?;
    let config = Config::load()?;
    let visibility = visibility(&request, &caller).await?;
    let fine = visible_fine(&config, id, &visibility)?;
    Ok(json_response(200, &fine))
}

/// Pays a fine once, through payment-service: staff any fine, anyone else one on a plate
/// they prove. Another user's fine answers exactly like a missing one, and so does an id
/// that is not a UUID. The fine is marked paid only once payment-service holds its payment.
#[utoipa::path(post, path = "/api/fines/{fine_id}/pay", tag = "fines", operation_id = "pay_fine",
    summary = "Pay a fine through payment-service, once",
    description = "Asks payment-service (`POST /api/payments` with `{fine_id, payment_method}` \
        and the caller's token) to charge the fine's amount, then records the payment on the \
        fine; a payment an earlier attempt made is found and recorded instead. A declined \
        payment may be tried again. A body is optional: none pays by card. \
        payment-service's refusals (400, 402, 403, 404, 409, 422 with an error code) are \
        passed on unchanged, and the fine stays unpaid.",
    params(("fine_id" = Uuid, Path)),
    request_body(content = Option<domain::PayFineRequest>, description = "Optional; `{}` or no body pays by card"),
    responses(
        (status = 200, description = "Paid: the fine with `paid: true` and its `payment_id`", body = domain::Fine),
        (status = 402, description = "payment_declined (from payment-service): nothing was charged; the fine stays unpaid", body = api::openapi::ErrorBody),
        (status = 404, description = "fine_not_found: no such fine, or not on a plate the caller proves with its certificate", body = api::openapi::ErrorBody),
        (status = 409, description = "fine_already_paid (also to the loser of two concurrent payments); other payment-service conflicts passed on", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: payment_method is not card or cash; payment-service's 422 passed on", body = api::openapi::ErrorBody),
        (status = 502, description = "car_service_failed or payment_service_failed: answered unusably (payment-service's own 5xx included)", body = api::openapi::ErrorBody),
        (status = 503, description = "car_service_unavailable or payment_service_unavailable: cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "car_service_timeout or payment_service_timeout: did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn pay(request: Request, params: Params) -> Result<Response, FinesError> {
    let caller = api::auth::caller(&request)?;
    let id = fine_id(&params)?;
    let method = pay_method(&request)?;
    let config = Config::load()?;
    let payments = Payments::from_variable()?;
    let visibility = visibility(&request, &caller).await?;
    // The connection goes back to the pool before waiting on payment-service.
    if visible_fine(&config, id, &visibility)?.is_paid() {
        return Err(FinesError::AlreadyPaid(id));
    }
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    let reply = payments.charge(id, method, authorization).await?;
    let payment_id = match payment_client::interpret(&reply, id)? {
        Charge::Paid { payment_id } => payment_id,
        // An earlier attempt paid it and its answer never got here: record that payment.
        Charge::PaidBefore(refused) => match payments.succeeded(id, authorization).await? {
            Some(payment_id) => payment_id,
            None => return Ok(passed_on(refused.status, refused.body)),
        },
        Charge::Refused(refused) => return Ok(passed_on(refused.status, refused.body)),
    };
    let db = api::db::open(&config.postgres_url)?;
    match store::mark_paid(&db, id, caller.user_id, payment_id)? {
        Some(fine) => Ok(json_response(200, &fine)),
        None => Err(FinesError::AlreadyPaid(id)),
    }
}

/// The `fine_id` route parameter; one that is not a UUID names no fine.
fn fine_id(params: &Params) -> Result<Uuid, FinesError> {
    let raw_id = params.get("fine_id").unwrap_or_default();
    Uuid::parse_str(raw_id).map_err(|_| FinesError::FineNotFound(raw_id.to_owned()))
}

/// The payment method of a pay request: no body at all is a card payment.
fn pay_method(request: &Request) -> Result<PaymentMethod, FinesError> {
    let body = request.body();
    // No body, or `null` (what the document's optional body allows), is a card payment.
    let object = if body.iter().all(u8::is_ascii_whitespace)
        || api::json::parse_json::<serde_json::Value>(body)?.is_null()
    {
        None
    } else {
        Some(api::json::parse_json_object(body)?)
    };
    Ok(PaymentMethod::parse_body(object.as_ref())?)
}

/// Fine `id` if the caller may see it, read on a connection held only for the lookup.
fn visible_fine(config: &Config, id: Uuid, visibility: &Visibility) -> Result<Fine, FinesError> {
    let db = api::db::open(&config.postgres_url)?;
    store::find(&db, id)?
        .filter(|fine| visibility.allows(fine))
        .ok_or_else(|| FinesError::FineNotFound(id.to_string()))
}

/// Which fines the caller may see: staff all, anyone else those they prove.
async fn visibility(request: &Request, caller: &Caller) -> Result<Visibility, ApiError> {
    if caller.is_staff() {
        Ok(Visibility::Any)
    } else {
        Ok(Visibility::Proven(proven_plates(request, caller).await?))
    }
}

/// The plates the caller proves, asked of car-service with the caller's own token, so
/// car-service's ownership rules decide. Called before the database is opened, so no
/// pooled connection is held while waiting on another component.
async fn proven_plates(
    request: &Request,
    caller: &Caller,
) -> Result<BTreeSet<ProvenPlate>, ApiError> {
    let cars = Config::cars()?;
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    car_client::proven_plates_of(&cars, caller.user_id, authorization).await
}

/// payment-service's refusal, unchanged.
fn passed_on(status: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, HTTP, Postgres), so no host is needed. End-to-end tests live in
    //! crates/detailing/tests/fines.rs.

    use super::*;

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schemas = "#/components/schemas/";
        for (path, method, schema) in [
            ("/api/fines/check", "get", "UnpaidFines"),
            ("/api/fines/{fine_id}", "get", "Fine"),
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
        let pay = &doc["paths"]["/api/fines/{fine_id}/pay"]["post"];
        for status in ["402", "409", "422"] {
            assert!(pay["responses"][status].is_object(), "pay {status}");
        }
        assert_ne!(pay["requestBody"]["required"], true);
        let fine = &doc["components"]["schemas"]["Fine"];
        assert_eq!(fine["properties"]["paid"]["type"], "boolean");
        assert!(fine["properties"]["payment_id"].is_object());
        assert!(fine["properties"].get("certificate_number").is_none());
        assert!(doc["components"]["schemas"]["Money"].is_object());
        assert!(doc["paths"]["/api/fines/health/live"]["get"].is_object());
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
