//! cart-service: the shop's catalog and each customer's cart, as a Spin HTTP component routed
//! at `/api/cart/...`. Checkout books an order through order-service (service chaining) and
//! empties the cart only once the order exists. This file only maps HTTP to the domain
//! (`domain`) and the tables (`store`); it must not hold business rules.

pub mod domain;
mod error;
mod store;

use api::http::{health_routes, json_response, method_not_allowed, not_found, read_json_object};
use api::upstream::{Service, Upstream};
use api::{ApiError, Caller};
use spin_sdk::http::{Method, Params, Request, Response, Router};
use uuid::Uuid;

use crate::domain::{Cart, NewCartItem};
use crate::error::CartError;
use crate::store::Added;

const SERVICE: &str = "cart-service";

const ORDER_SERVICE: Service = Service {
    name: "order-service",
    failed: "order_service_failed",
    unavailable: "order_service_unavailable",
    timeout: "order_service_timeout",
};

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
    health_routes(&mut router, "/api/cart", SERVICE);
    router.get("/api/cart/catalog", catalog);
    router.get("/api/cart", get_cart);
    router.post("/api/cart/items", add_item);
    router.delete("/api/cart/items/:item_id", remove_item);
    router.post_async("/api/cart/checkout", checkout);
    // Known paths with another method: 405 in the JSON error shape, not spin-sdk's text.
    router.any("/api/cart/catalog", method_not_allowed("GET"));
    router.any("/api/cart", method_not_allowed("GET"));
    router.any("/api/cart/items", method_not_allowed("POST"));
    router.any("/api/cart/items/:item_id", method_not_allowed("DELETE"));
    router.any("/api/cart/checkout", method_not_allowed("POST"));
    router.any("/*", not_found);
    router
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

    fn db() -> Result<spin_sdk::pg3::Connection, ApiError> {
        api::db::open(&Self::load()?.postgres_url)
    }

    /// Where order-service answers (`order_service_url`).
    fn orders() -> Result<Upstream, ApiError> {
        Upstream::from_variable(ORDER_SERVICE, "order_service_url")
    }
}

/// Everything the shop sells: `{"items":[{id,name,kind,price,duration_minutes?}]}`.
fn catalog(request: Request, _params: Params) -> Result<Response, CartError> {
    api::auth::caller(&request)?;
    let items = store::catalog(&Config::db()?)?;
    Ok(json_response(200, &serde_json::json!({ "items": items })))
}

fn get_cart(request: Request, _params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    Ok(json_response(200, &cart_of(&Config::db()?, &caller)?))
}

/// Adds `{catalog_id, quantity?}`; an entry already in the cart has its quantity raised.
/// Answers 201 with the whole cart.
fn add_item(request: Request, _params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    let item = NewCartItem::parse(&read_json_object(&request)?)?;
    let db = Config::db()?;
    match store::add(&db, caller.user_id, &item)? {
        Added::Line => Ok(json_response(201, &cart_of(&db, &caller)?)),
        Added::UnknownCatalogItem => Err(CartError::UnknownCatalogItem(item.catalog_id)),
        Added::QuantityLimit => Err(CartError::QuantityLimit),
    }
}

/// Removes one line of the caller's cart; answers with what is left.
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
async fn checkout(request: Request, _params: Params) -> Result<Response, CartError> {
    let caller = api::auth::caller(&request)?;
    let body = read_json_object(&request)?;
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

    fn send(method: Method, path: &str) -> (u16, Option<String>, Value) {
        api::testing::call(&router(), method, path, "")
    }

    #[test]
    fn every_cart_endpoint_needs_a_token() {
        for (method, path) in [
            (Method::Get, "/api/cart/catalog"),
            (Method::Get, "/api/cart"),
            (Method::Post, "/api/cart/items"),
            (Method::Delete, "/api/cart/items/x"),
            (Method::Post, "/api/cart/checkout"),
        ] {
            let (status, _, body) = send(method, path);
            assert_eq!(status, 401, "{path}");
            assert_eq!(body["error"]["code"], "missing_token");
        }
    }

    #[test]
    fn wrong_method_is_a_json_405_with_allow() {
        for (method, path, allow) in [
            (Method::Post, "/api/cart", "GET"),
            (Method::Get, "/api/cart/items", "POST"),
            (Method::Get, "/api/cart/items/x", "DELETE"),
            (Method::Get, "/api/cart/checkout", "POST"),
        ] {
            let (status, allowed, _) = send(method, path);
            assert_eq!(status, 405, "{path}");
            assert_eq!(allowed.as_deref(), Some(allow));
        }
    }

    #[test]
    fn unknown_path_is_a_json_404() {
        let (status, _, body) = send(Method::Get, "/api/cart/things");
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
    }
}
