//! cart-service: the shop's catalog (which staff manage) and each customer's cart, as a Spin
//! HTTP component routed at `/api/cart/...`. Checkout books an order through order-service
//! (service chaining) and empties the cart only once the order exists. This file only maps HTTP to the domain
//! (`domain`) and the tables (`store`); it must not hold business rules.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

pub mod domain;
mod error;
mod store;

use api::http::{json_response, read_json_object};
use api::query::Query;
use api::routes::Routes;
use api::upstream::{Service, Upstream};
use api::{ApiError, Caller, FieldErrors};
use spin_sdk::http::{Method, Params, Request, Response, Router};
use uuid::Uuid;

use crate::domain::{Cart, CatalogPatch, NewCartItem, NewCatalogEntry};
use crate::error::CartError;
use crate::store::{Added, Changed};

const SERVICE: &str = "cart-service";

const ORDER_SERVICE: Service = Service {
    name: "order-service",
    failed: "order_service_failed",
    unavailable: "order_service_unavailable",
    timeout: "order_service_timeout",
};

api::export_router!(router);

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn routes() -> Routes {
    Routes::service("/api/cart", SERVICE)
        .get("/api/cart/catalog", catalog)
        .post("/api/cart/catalog", create_entry)
        .get("/api/cart/catalog/:catalog_id", get_entry)
        .patch("/api/cart/catalog/:catalog_id", change_entry)
        .get("/api/cart", get_cart)
        .post("/api/cart/items", add_item)
        .delete("/api/cart/items/:item_id", remove_item)
        .post_async("/api/cart/checkout", checkout)
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        catalog,
        create_entry,
        get_entry,
        change_entry,
        get_cart,
        add_item,
        remove_item,
        checkout
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/cart", "cart"));
    doc
}

/// `GET /api/cart/catalog`'s body.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct CatalogList {
    items: Vec<domain::CatalogItem>,
}

/// order-service's `Order`, which checkout passes on unchanged: a reference to the schema
/// order-service's part of the document defines (used `inline`, so it adds no schema here).
struct BookedOrder;

impl utoipa::PartialSchema for BookedOrder {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::Ref::from_schema_name("Order").into()
    }
}

impl utoipa::ToSchema for BookedOrder {}

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

    fn db() -> Result<spin_sdk::pg3::Connection, ApiError> {
        api::db::open(&Self::load()?.postgres_url)
    }

    /// Where order-service answers (`order_service_url`).
    fn orders() -> Result<Upstream, ApiError> {
        Upstream::from_variable(ORDER_SERVICE, "order_service_url")
    }
}

/// Everything the shop sells: `{"items":[{id,name,kind,price,duration_minutes?,active}]}`.
/// Staff may ask for retired entries too; a customer's `include_retired` is ignored, as a
/// customer's `user_id` is on other lists.
#[utoipa::path(get, path = "/api/cart/catalog", tag = "cart",
    summary = "Everything the shop sells, at today's prices",
    params(
        ("include_retired" = Option<bool>, Query, description = "Staff only: list retired entries (`active: false`) too (a customer's is ignored: they see what is sold)"),
    ),
    responses(
        (status = 200, description = "`{\"items\":[...]}`", body = CatalogList),
        (status = 422, description = "validation_failed: `include_retired` is not `true` or `false`", body = api::openapi::ErrorBody),
    ))]
fn catalog(request: Request, _params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    let retired_too = Query::parse(request.query())?
        .flag("include_retired")
        .map_err(FieldErrors::from)?;
    let items = store::catalog(&Config::db()?, retired_too && caller.is_staff())?;
    Ok(json_response(200, &CatalogList { items }))
}

/// Staff add an entry, sold from now on: `{name, kind, price, duration_minutes?}`.
#[utoipa::path(post, path = "/api/cart/catalog", tag = "cart",
    operation_id = "create_catalog_entry",
    summary = "Add a catalog entry (staff only)",
    request_body = domain::CatalogEntryRequest,
    responses(
        (status = 201, description = "The new entry, active; `Location` names it", body = domain::CatalogItem),
        (status = 403, description = "staff_only: a customer asked", body = api::openapi::ErrorBody),
        (status = 409, description = "catalog_name_taken: another entry has this name", body = api::openapi::ErrorBody),
    ))]
fn create_entry(request: Request, _params: Params) -> Result<Response, CartError> {
    staff(&request)?;
    let entry = NewCatalogEntry::parse(&read_json_object(&request)?)?;
    match store::create(&Config::db()?, &entry)? {
        Some(created) => {
            let mut response = json_response(201, &created);
            response.set_header("location", format!("/api/cart/catalog/{}", created.id));
            Ok(response)
        }
        None => Err(CartError::NameTaken(entry.name)),
    }
}

/// One entry, retired or not (order-service reads it to tell a retired entry from an
/// unknown one).
#[utoipa::path(get, path = "/api/cart/catalog/{catalog_id}", tag = "cart",
    operation_id = "get_catalog_entry",
    summary = "One catalog entry, retired or not",
    params(("catalog_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The entry (`active: false`: retired, no longer sold)", body = domain::CatalogItem),
        (status = 404, description = "catalog_item_not_found: no such entry", body = api::openapi::ErrorBody),
    ))]
fn get_entry(request: Request, params: Params) -> Result<Response, CartError> {
    api::auth::caller(&request)?;
    let id = catalog_id(&params)?;
    match store::entry(&Config::db()?, id)? {
        Some(entry) => Ok(json_response(200, &entry)),
        None => Err(CartError::UnknownCatalogItem(id.to_string())),
    }
}

/// Staff rename, reprice, retime, retire (`active: false`) or reactivate an entry. Carts
/// follow at once (they are priced at today's prices); booked orders keep what they copied.
#[utoipa::path(patch, path = "/api/cart/catalog/{catalog_id}", tag = "cart",
    operation_id = "change_catalog_entry",
    summary = "Change a catalog entry: name, price, duration, retire or reactivate (staff only)",
    params(("catalog_id" = Uuid, Path)),
    request_body = domain::CatalogPatchRequest,
    responses(
        (status = 200, description = "The entry, changed", body = domain::CatalogItem),
        (status = 403, description = "staff_only: a customer asked", body = api::openapi::ErrorBody),
        (status = 404, description = "catalog_item_not_found: no such entry", body = api::openapi::ErrorBody),
        (status = 409, description = "catalog_name_taken: another entry has this name", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: `fields` lists every invalid field (`duration_minutes` given for a product included)", body = api::openapi::ErrorBody),
    ))]
fn change_entry(request: Request, params: Params) -> Result<Response, CartError> {
    staff(&request)?;
    let patch = CatalogPatch::parse(&read_json_object(&request)?)?;
    let id = catalog_id(&params)?;
    match store::change(&Config::db()?, id, |entry| entry.patched(&patch))? {
        Changed::Entry(entry) => Ok(json_response(200, &entry)),
        Changed::NotFound => Err(CartError::UnknownCatalogItem(id.to_string())),
        Changed::NameTaken => Err(CartError::NameTaken(patch.name.unwrap_or_default())),
        Changed::Invalid(fields) => Err(CartError::Invalid(fields)),
    }
}

/// Only staff go on: a customer is 403 before the body is read.
fn staff(request: &Request) -> Result<(), CartError> {
    Ok(api::auth::caller(request)?.require_staff("change the catalog")?)
}

/// The `catalog_id` route parameter. An id that is not a UUID names no entry: 404, like an
/// unknown one.
fn catalog_id(params: &Params) -> Result<Uuid, CartError> {
    let raw_id = params.get("catalog_id").unwrap_or_default();
    Uuid::parse_str(raw_id).map_err(|_| CartError::UnknownCatalogItem(raw_id.to_owned()))
}

#[utoipa::path(get, path = "/api/cart", tag = "cart",
    summary = "The caller's cart, priced at today's prices",
    responses(
        (status = 200, description = "The cart (empty: no items, total 0)", body = domain::Cart),
        (status = 422, description = "validation_failed: the total is beyond any real bill (`fields` names `quantity`)", body = api::openapi::ErrorBody),
    ))]
fn get_cart(request: Request, _params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    Ok(json_response(200, &cart_of(&Config::db()?, &caller)?))
}

/// Adds `{catalog_id, quantity?}`; an entry already in the cart has its quantity raised.
/// Answers 201 with the whole cart.
#[utoipa::path(post, path = "/api/cart/items", tag = "cart",
    summary = "Put a catalog entry in the cart, or raise its quantity",
    request_body = domain::CartItemRequest,
    responses(
        (status = 201, description = "The whole cart", body = domain::Cart),
        (status = 404, description = "catalog_item_not_found: `catalog_id` names no catalog entry", body = api::openapi::ErrorBody),
        (status = 409, description = "quantity_limit: the line would hold more than 100 of the entry; total_too_large: the cart would come to more than any real bill", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: `fields` lists every invalid field; catalog_item_retired: the entry is no longer sold (`fields` names `catalog_id`)", body = api::openapi::ErrorBody),
    ))]
fn add_item(request: Request, _params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    let item = NewCartItem::parse(&read_json_object(&request)?)?;
    let db = Config::db()?;
    match store::add(&db, caller.user_id, &item)? {
        Added::Line => Ok(json_response(201, &cart_of(&db, &caller)?)),
        Added::UnknownCatalogItem => {
            Err(CartError::UnknownCatalogItem(item.catalog_id.to_string()))
        }
        Added::RetiredCatalogItem => Err(CartError::RetiredCatalogItem(item.catalog_id)),
        Added::QuantityLimit => Err(CartError::QuantityLimit),
    }
}

/// Removes one line of the caller's cart; answers with what is left.
#[utoipa::path(delete, path = "/api/cart/items/{item_id}", tag = "cart",
    summary = "Remove one line from the caller's cart",
    params(("item_id" = Uuid, Path, description = "The line's `id` (not its `catalog_id`)")),
    responses(
        (status = 200, description = "What is left of the cart", body = domain::Cart),
        (status = 404, description = "cart_item_not_found: no such line in the caller's cart", body = api::openapi::ErrorBody),
        (status = 409, description = "total_too_large: the remaining total is beyond any real bill", body = api::openapi::ErrorBody),
    ))]
fn remove_item(request: Request, params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    let raw_id = params.get("item_id").unwrap_or_default();
    let id = Uuid::parse_str(raw_id).map_err(|_| CartError::CartItemNotFound(raw_id.into()))?;
    let db = Config::db()?;
    if !store::remove(&db, caller.user_id, id)? {
        return Err(CartError::CartItemNotFound(id.to_string()));
    }
    Ok(json_response(200, &cart_of(&db, &caller)?))
}

/// `{car_id, desired_time, description?}`: books the cart's items as an order through
/// order-service, as the caller. Its answer is passed on when it refuses (404 car, 422
/// time); the cart is emptied only once the order exists, and only of the lines booked.
#[utoipa::path(post, path = "/api/cart/checkout", tag = "cart",
    summary = "Book the cart's items as an order (through order-service)",
    description = "The body is passed on to `POST /api/orders` with the cart's lines as its `items`; \
        order-service's refusals (400, 404, 409, 422 with an error code) are passed on unchanged. \
        The cart is emptied of the booked lines once the order exists.",
    request_body = domain::CheckoutRequest,
    responses(
        (status = 201, description = "Booked: order-service's order, passed on", body = inline(BookedOrder)),
        (status = 404, description = "car_not_found (from order-service): no such car, or not the caller's; catalog_item_not_found (from order-service): a line's catalog entry is gone", body = api::openapi::ErrorBody),
        (status = 409, description = "cart_empty: nothing to check out; desired_time_passed (from order-service): the slot is not in the future; total_too_large: the cart comes to more than any real bill", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: `fields` lists every invalid field; catalog_item_retired (from order-service): a line's entry is no longer sold (`fields` names it as `items[i].catalog_id`, the cart's i-th line): remove the line", body = api::openapi::ErrorBody),
        (status = 502, description = "order_service_failed: order-service gave an unexpected answer (its own upstream failures included)", body = api::openapi::ErrorBody),
        (status = 503, description = "order_service_unavailable: order-service could not be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "order_service_timeout: order-service did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn checkout(request: Request, _params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    let body = read_json_object(&request)?;
    domain::parse_checkout(&body)?;
    let orders = Config::orders()?;
    let cart = {
        let db = Config::db()?;
        cart_of(&db, &caller)?
        // The connection goes back to the pool before waiting on order-service.
    };
    if cart.items.is_empty() {
        return Err(CartError::CartEmpty);
    }
    let order = domain::checkout_order(&body, &cart);
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    let reply = orders
        .send(
            Method::Post,
            "/api/orders",
            authorization,
            Some(order.to_string().into_bytes()),
        )
        .await?;
    match reply.status {
        201 => {
            // The order exists now: a failure to empty the cart must not read as a failed
            // checkout, or the client would book again. The lines stay; the order stands.
            let emptied = Config::db()
                .and_then(|db| store::remove_checked_out(&db, caller.user_id, &cart.snapshot()));
            if let Err(error) = emptied {
                eprintln!("checkout booked an order but could not empty the cart: {error}");
            }
            Ok(passed_on(201, reply.body))
        }
        400 | 404 | 409 | 422 if reply.error_code().is_some() => {
            Ok(passed_on(reply.status, reply.body))
        }
        _ => Err(reply.unexpected().into()),
    }
}

/// order-service's JSON answer, unchanged.
fn passed_on(status: u16, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body)
        .build()
}

fn cart_of(db: &spin_sdk::pg3::Connection, caller: &Caller) -> Result<Cart, CartError> {
    Ok(Cart::price(store::lines(db, caller.user_id)?)?)
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, HTTP, Postgres), so no host is needed. End-to-end tests live in tests/.

    use super::*;
    use serde_json::Value;

    #[test]
    fn documented_request_bodies_are_the_ones_parsed() {
        api::testing::assert_documents_request::<domain::CartItemRequest>(|body| {
            NewCartItem::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::CatalogEntryRequest>(|body| {
            NewCatalogEntry::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::CatalogPatchRequest>(|body| {
            CatalogPatch::parse(body).map(drop)
        });
        // Checkout's body is read by order-service, with the cart's lines added as `items`.
        let cart = Cart::price(vec![domain::StoredLine {
            id: Uuid::from_u128(1),
            catalog_id: Uuid::from_u128(2),
            name: "Exterior hand wash".into(),
            kind: domain::Kind::Service,
            unit_price: api::money::Money::from_kopecks(150_000).unwrap(),
            quantity: 2,
            active: true,
        }])
        .unwrap();
        api::testing::assert_documents_request::<domain::CheckoutRequest>(|body| {
            domain::parse_checkout(body)?;
            let order = domain::checkout_order(body, &cart);
            let order = order.as_object().expect("an object");
            order_service::domain::NewOrder::parse(order).map(drop)
        });
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let operation = |path: &str, method: &str| doc["paths"][path][method].clone();
        let schema = |operation: &Value, status: &str| {
            operation["responses"][status]["content"]["application/json"]["schema"]["$ref"].clone()
        };
        let cart = "#/components/schemas/Cart";
        let list = operation("/api/cart/catalog", "get");
        assert_eq!(schema(&list, "200"), "#/components/schemas/CatalogList");
        assert_eq!(list["parameters"][0]["name"], "include_retired");
        let entry = "#/components/schemas/CatalogItem";
        let create = operation("/api/cart/catalog", "post");
        assert_eq!(schema(&create, "201"), entry);
        assert_eq!(
            create["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CatalogEntryRequest"
        );
        assert_eq!(
            schema(&operation("/api/cart/catalog/{catalog_id}", "get"), "200"),
            entry
        );
        let change = operation("/api/cart/catalog/{catalog_id}", "patch");
        assert_eq!(schema(&change, "200"), entry);
        for (operation, statuses) in [
            (&create, &["403", "409"][..]),
            (&change, &["403", "404", "409", "422"][..]),
        ] {
            for status in statuses {
                assert!(operation["responses"][status].is_object(), "{status}");
            }
        }
        let add = operation("/api/cart/items", "post");
        assert!(add["responses"]["422"]["description"]
            .as_str()
            .unwrap()
            .contains("catalog_item_retired"));
        assert_eq!(schema(&operation("/api/cart", "get"), "200"), cart);
        assert_eq!(schema(&operation("/api/cart/items", "post"), "201"), cart);
        let remove = operation("/api/cart/items/{item_id}", "delete");
        assert_eq!(schema(&remove, "200"), cart);
        assert!(remove["responses"]["404"].is_object());
        let checkout = operation("/api/cart/checkout", "post");
        assert_eq!(schema(&checkout, "201"), "#/components/schemas/Order");
        for status in ["404", "409", "502", "503", "504"] {
            assert!(checkout["responses"][status].is_object(), "{status}");
        }
        assert!(doc["paths"]["/api/cart/health/live"]["get"].is_object());
        assert!(doc["components"]["schemas"]["CatalogKind"].is_object());
        // The order is order-service's schema: not defined here, defined once joined.
        assert!(doc["components"]["schemas"]["Order"].is_null());
        assert!(doc["components"]["schemas"]["BookedOrder"].is_null());
        let mut joined = openapi();
        joined.merge(order_service::openapi());
        let joined = serde_json::to_value(joined).unwrap();
        assert!(joined["components"]["schemas"]["Order"].is_object());
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
