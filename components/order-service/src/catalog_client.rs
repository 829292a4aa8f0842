//! Reads today's catalog prices from cart-service, which owns the catalog: `GET
//! {cart_service_url}/api/cart/catalog` as the caller (service chaining in one host), the
//! entries on sale. An item it does not list is asked for by id (`GET .../catalog/{id}`),
//! which answers retired entries too, so a retired entry is refused as such, not as unknown.
//! The prices are copied into the order's lines, so the order never depends on them again.

use api::money::Money;
use api::upstream::{Reply, Service, Upstream};
use api::ApiError;
use serde_json::Value;
use uuid::Uuid;

use crate::domain::CatalogEntry;

pub const CART_SERVICE: Service = Service {
    name: "cart-service",
    failed: "cart_service_failed",
    unavailable: "cart_service_unavailable",
    timeout: "cart_service_timeout",
};

pub async fn fetch_catalog(
    carts: &Upstream,
    authorization: Option<&str>,
) -> Result<Vec<CatalogEntry>, ApiError> {
    let reply = carts.get("/api/cart/catalog", authorization).await?;
    interpret(&reply)
}

/// One entry, retired or not; `None` when cart-service has no entry with this id.
pub async fn fetch_entry(
    carts: &Upstream,
    id: Uuid,
    authorization: Option<&str>,
) -> Result<Option<CatalogEntry>, ApiError> {
    let reply = carts
        .get(&format!("/api/cart/catalog/{id}"), authorization)
        .await?;
    interpret_entry(&reply)
}

/// One catalog entry as cart-service writes it.
#[derive(serde::Deserialize)]
struct Entry {
    id: Uuid,
    name: String,
    kind: String,
    price: Value,
    /// Missing from a cart-service that lists only what is sold.
    #[serde(default = "on_sale")]
    active: bool,
    /// A service's; a product has none.
    #[serde(default)]
    duration_minutes: Option<u32>,
}

fn on_sale() -> bool {
    true
}

impl Entry {
    fn read(self, reply: &Reply) -> Result<CatalogEntry, ApiError> {
        let price = Money::parse_json("price", &self.price)
            .map_err(|error| reply.failed(format!("catalog entry {}: {error}", self.id)))?;
        Ok(CatalogEntry {
            id: self.id,
            name: self.name,
            kind: self.kind,
            price,
            active: self.active,
            duration_minutes: self.duration_minutes,
        })
    }
}

/// `{"items":[{id,name,kind,price,active,...}]}`; anything else is cart-service failing.
pub fn interpret(reply: &Reply) -> Result<Vec<CatalogEntry>, ApiError> {
    if reply.status != 200 {
        return Err(reply.unexpected());
    }
    #[derive(serde::Deserialize)]
    struct Catalog {
        items: Vec<Entry>,
    }
    reply
        .json::<Catalog>()?
        .items
        .into_iter()
        .map(|entry| entry.read(reply))
        .collect()
}

/// `{id,name,kind,price,active,...}`, or 404 `catalog_item_not_found`: no such entry.
pub fn interpret_entry(reply: &Reply) -> Result<Option<CatalogEntry>, ApiError> {
    match reply.status {
        200 => reply.json::<Entry>()?.read(reply).map(Some),
        404 if reply.error_code().as_deref() == Some("catalog_item_not_found") => Ok(None),
        _ => Err(reply.unexpected()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            service: CART_SERVICE,
            status,
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn the_catalog_is_read_with_exact_prices() {
        let body = r#"{"items":[{"id":"6b1f2c1e-0001-4000-8000-000000000001","name":"Wash",
                        "kind":"service","price":1499.99,"duration_minutes":45}]}"#;
        let catalog = interpret(&reply(200, body)).unwrap();
        assert_eq!(catalog[0].price.kopecks(), 149_999);
        assert_eq!(catalog[0].kind, "service");
        assert_eq!(catalog[0].duration_minutes, Some(45));
        // Written before entries could be retired: what is listed is on sale.
        assert!(catalog[0].active);
    }

    #[test]
    fn one_entry_is_read_retired_or_not_and_404_is_none() {
        let body = r#"{"id":"6b1f2c1e-0001-4000-8000-000000000001","name":"Wash",
                        "kind":"service","price":1500.0,"duration_minutes":45,"active":false}"#;
        let entry = interpret_entry(&reply(200, body)).unwrap().unwrap();
        assert_eq!((entry.price.kopecks(), entry.active), (150_000, false));
        let missing = r#"{"error":{"code":"catalog_item_not_found","message":"no"}}"#;
        assert_eq!(interpret_entry(&reply(404, missing)).unwrap(), None);
        // A 404 of the router (an older cart-service) is not an answer about the entry.
        let unrouted = r#"{"error":{"code":"not_found","message":"no"}}"#;
        let error = interpret_entry(&reply(404, unrouted)).unwrap_err();
        assert_eq!(error.code, "cart_service_failed");
    }

    #[test]
    fn anything_else_is_cart_service_failing() {
        for (status, body) in [
            (500, ""),
            (401, r#"{"error":{"code":"invalid_token"}}"#),
            (200, "{}"),
            (
                200,
                r#"{"items":[{"id":"6b1f2c1e-0001-4000-8000-000000000001","name":"W","kind":"service","price":-1}]}"#,
            ),
        ] {
            let error = interpret(&reply(status, body)).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (502, "cart_service_failed"),
                "{body}"
            );
        }
    }
}
