//! Reads today's catalog prices from cart-service, which owns the catalog: `GET
//! {cart_service_url}/api/cart/catalog` as the caller (service chaining in one host). The
//! prices are copied into the order's lines, so the order never depends on them again.

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

/// `{"items":[{id,name,kind,price,...}]}`; anything else is cart-service failing.
pub fn interpret(reply: &Reply) -> Result<Vec<CatalogEntry>, ApiError> {
    if reply.status != 200 {
        return Err(reply.unexpected());
    }
    #[derive(serde::Deserialize)]
    struct Catalog {
        items: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        id: Uuid,
        name: String,
        kind: String,
        price: Value,
    }
    reply
        .json::<Catalog>()?
        .items
        .into_iter()
        .map(|entry| {
            let price = Money::parse_json("price", &entry.price)
                .map_err(|error| reply.failed(format!("catalog entry {}: {error}", entry.id)))?;
            Ok(CatalogEntry {
                id: entry.id,
                name: entry.name,
                kind: entry.kind,
                price,
            })
        })
        .collect()
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
