//! car-service: registers cars and looks them up, as a Spin HTTP component routed at
//! `/api/cars/...`. This file only maps HTTP to the domain (`domain`) and the table
//! (`store`); it must not hold business rules.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

pub mod documents;
pub mod domain;
mod error;
mod store;

use api::http::{json_response, read_json_object};
use api::query::{Cursor, Page, Query};
use api::routes::Routes;
use api::{ApiError, FieldErrors};
use spin_sdk::http::{Params, Request, Response, Router};
use uuid::Uuid;

use crate::documents::NewDocument;
use crate::domain::NewCar;
use crate::error::CarError;
use crate::store::Inserted;

const SERVICE: &str = "car-service";

api::export_router!(router);

/// The component's routes, on the full path rather than the part after the trigger route: a
/// chained call from order-service (`http://car-service.spin.internal/api/cars/<id>`) has the
/// same path as a call through the listener, but a different `spin-path-info`.
pub fn routes() -> Routes {
    Routes::service("/api/cars", SERVICE)
        .post("/api/cars", create_car)
        .get("/api/cars", list_cars)
        .get("/api/cars/registrations", list_registrations)
        .get("/api/cars/:car_id", get_car)
        .post("/api/cars/:car_id/documents", add_document)
        .get("/api/cars/:car_id/documents", list_documents)
        .get(
            "/api/cars/:car_id/documents/:document_id/file",
            document_file,
        )
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        create_car,
        list_cars,
        list_registrations,
        get_car,
        add_document,
        list_documents,
        document_file
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/cars", "cars"));
    doc
}

/// `GET /api/cars/{car_id}/documents`'s body.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct DocumentList {
    items: Vec<documents::Document>,
}

/// A scan's bytes, for the document only.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct Scan(Vec<u8>);

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
}

#[utoipa::path(post, path = "/api/cars", tag = "cars",
    summary = "Register a car",
    request_body = domain::CarRequest,
    responses(
        (status = 201, description = "Registered; `Location` names it", body = domain::Car),
        (status = 403, description = "foreign_owner: a customer named someone else as owner", body = api::openapi::ErrorBody),
        (status = 409, description = "duplicate_vin: a car with this VIN exists", body = api::openapi::ErrorBody),
    ))]
fn create_car(request: Request, _params: Params) -> Result<Response, CarError> {
    let caller = api::auth::caller(&request)?;
    let new_car = NewCar::parse(&read_json_object(&request)?)?;
    let owner = new_car.owner(&caller)?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    match store::insert(&db, &new_car, owner)? {
        Inserted::Created(car) => {
            let mut response = json_response(201, &car);
            response.set_header("location", format!("/api/cars/{}", car.id));
            Ok(response)
        }
        Inserted::DuplicateVin => Err(CarError::DuplicateVin(new_car.vin)),
    }
}

/// The caller's cars, newest first (`?limit=&cursor=`). Staff see everyone's, or one
/// owner's with `?owner_id=`.
#[utoipa::path(get, path = "/api/cars", tag = "cars",
    summary = "The caller's cars, newest first",
    params(
        api::openapi::PageParams,
        ("owner_id" = Option<Uuid>, Query, description = "Staff: only this owner's cars (a customer's is ignored: they always see their own)"),
    ),
    responses(
        (status = 200, description = "One page", body = api::query::PageOf<domain::Car>),
        (status = 422, description = "validation_failed: bad limit, cursor or owner_id", body = api::openapi::ErrorBody),
    ))]
fn list_cars(request: Request, _params: Params) -> Result<Response, CarError> {
    let (owner, page, db) = owner_listing(&request)?;
    let cars = store::list(&db, owner, &page)?;
    let page = page.finish(cars, |car| Cursor {
        created_at: car.created_at,
        id: car.id,
    });
    Ok(json_response(200, &page))
}

/// What a list of cars or certificates needs: whose (the caller's own, or for staff anyone's
/// or `?owner_id=`'s), which page (`?limit=&cursor=`), and a connection.
fn owner_listing(
    request: &Request,
) -> Result<(Option<Uuid>, Page, spin_sdk::pg3::Connection), CarError> {
    let caller = api::auth::caller(request)?;
    let query = Query::parse(request.query())?;
    let page = Page::parse(&query)?;
    let owner = caller
        .list_scope(&query, "owner_id")
        .map_err(FieldErrors::from)?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    Ok((owner, page, db))
}

/// The registration certificates of the caller's cars with each car's plate, newest
/// document first (`?limit=&cursor=`). Staff see everyone's, or one owner's with
/// `?owner_id=`. fines-service reads it, as the caller, to learn which plates they can prove.
#[utoipa::path(get, path = "/api/cars/registrations", tag = "cars",
    summary = "The registration certificates of the caller's cars, newest first",
    description = "One item per `registration` document whose number is a certificate number \
        (`99 АА 123456`), with its car's plate: the pair a fine is looked up by.",
    params(
        api::openapi::PageParams,
        ("owner_id" = Option<Uuid>, Query, description = "Staff: only this owner's cars (a customer's is ignored: they always see their own)"),
    ),
    responses(
        (status = 200, description = "One page", body = api::query::PageOf<documents::Registration>),
        (status = 422, description = "validation_failed: bad limit, cursor or owner_id", body = api::openapi::ErrorBody),
    ))]
fn list_registrations(request: Request, _params: Params) -> Result<Response, CarError> {
    let (owner, page, db) = owner_listing(&request)?;
    let registrations = store::registrations(&db, owner, &page)?;
    let page = page.finish(registrations, |registration| Cursor {
        created_at: registration.created_at,
        id: registration.document_id,
    });
    Ok(json_response(200, &page))
}

#[utoipa::path(get, path = "/api/cars/{car_id}", tag = "cars",
    summary = "One car (order-service reads it through chaining)",
    params(("car_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The car", body = domain::Car),
        (status = 404, description = "car_not_found: no such car, or not the caller's", body = api::openapi::ErrorBody),
    ))]
fn get_car(request: Request, params: Params) -> Result<Response, CarError> {
    let caller = api::auth::caller(&request)?;
    let (_db, car) = visible_car(&caller, &params)?;
    Ok(json_response(200, &car))
}

/// Attaches a document (JSON, with an optional base64 scan) to one of the caller's cars.
#[utoipa::path(post, path = "/api/cars/{car_id}/documents", tag = "cars",
    summary = "Attach a document, with an optional scan",
    params(("car_id" = Uuid, Path)),
    request_body = documents::DocumentRequest,
    responses(
        (status = 201, description = "Attached", body = documents::Document),
        (status = 404, description = "car_not_found", body = api::openapi::ErrorBody),
        (status = 409, description = "document_dates_conflict: `issued_at` is in the future, or `expires_at` is not after it", body = api::openapi::ErrorBody),
    ))]
fn add_document(request: Request, params: Params) -> Result<Response, CarError> {
    let caller = api::auth::caller(&request)?;
    let document = NewDocument::parse(&read_json_object(&request)?)?;
    document
        .check_dates(chrono::Utc::now().date_naive())
        .map_err(CarError::DocumentDates)?;
    let (db, car) = visible_car(&caller, &params)?;
    let stored = store::insert_document(&db, car.id, &document)?;
    Ok(json_response(201, &stored))
}

/// `{"items":[document...]}`, oldest first; scans are fetched one by one.
#[utoipa::path(get, path = "/api/cars/{car_id}/documents", tag = "cars",
    summary = "A car's documents, oldest first",
    params(("car_id" = Uuid, Path)),
    responses(
        (status = 200, description = "`{\"items\":[...]}`", body = DocumentList),
        (status = 404, description = "car_not_found", body = api::openapi::ErrorBody),
    ))]
fn list_documents(request: Request, params: Params) -> Result<Response, CarError> {
    let caller = api::auth::caller(&request)?;
    let (db, car) = visible_car(&caller, &params)?;
    let items = store::documents(&db, car.id)?;
    Ok(json_response(200, &DocumentList { items }))
}

/// The scan itself, with its content type.
#[utoipa::path(get, path = "/api/cars/{car_id}/documents/{document_id}/file", tag = "cars",
    summary = "A document's scan, as uploaded",
    params(("car_id" = Uuid, Path), ("document_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The bytes, with their content type", content(
            (Scan = "application/pdf"), (Scan = "image/jpeg"), (Scan = "image/png"))),
        (status = 404, description = "car_not_found, document_not_found or no_scan", body = api::openapi::ErrorBody),
    ))]
fn document_file(request: Request, params: Params) -> Result<Response, CarError> {
    let caller = api::auth::caller(&request)?;
    let (db, car) = visible_car(&caller, &params)?;
    let raw_id = params.get("document_id").unwrap_or_default();
    let id = Uuid::parse_str(raw_id).map_err(|_| CarError::DocumentNotFound(raw_id.into()))?;
    match store::document_file(&db, car.id, id)? {
        None => Err(CarError::DocumentNotFound(id.to_string())),
        Some(None) => Err(CarError::NoScan(id)),
        Some(Some(file)) => Ok(Response::builder()
            .status(200)
            .header("content-type", file.content_type)
            .header(
                "content-disposition",
                format!("attachment; filename=\"{}\"", file.name.replace('"', "")),
            )
            .body(file.bytes)
            .build()),
    }
}

/// The car named by the `car_id` route parameter, if the caller may see it (its owner or
/// staff), with the connection it was read on. Another user's car answers exactly like a
/// missing one, and so does an id that is not a UUID: its existence is not theirs to learn.
fn visible_car(
    caller: &api::Caller,
    params: &Params,
) -> Result<(spin_sdk::pg3::Connection, domain::Car), CarError> {
    let raw_id = params.get("car_id").unwrap_or_default();
    let id = Uuid::parse_str(raw_id).map_err(|_| CarError::not_found(raw_id))?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    match store::find(&db, id)? {
        Some(car) if caller.may_access(car.owner_id) => Ok((db, car)),
        _ => Err(CarError::not_found(id)),
    }
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, Postgres), so no host is needed. End-to-end tests live in tests/.

    use super::*;

    #[test]
    fn documented_request_bodies_are_the_ones_parsed() {
        api::testing::assert_documents_request::<domain::CarRequest>(|body| {
            NewCar::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<documents::DocumentRequest>(|body| {
            NewDocument::parse(body).map(drop)
        });
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let car = &doc["paths"]["/api/cars/{car_id}"]["get"];
        assert_eq!(
            car["responses"]["200"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Car"
        );
        assert!(car["responses"]["404"].is_object());
        assert!(doc["paths"]["/api/cars/health/live"]["get"].is_object());
        assert!(doc["components"]["schemas"]["CarRequest"].is_object());
        let registrations = &doc["paths"]["/api/cars/registrations"]["get"]["responses"];
        assert!(registrations["200"].is_object() && registrations["422"].is_object());
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
