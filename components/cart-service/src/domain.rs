//! The catalog and the cart as the business sees them: what is sold, what a customer put
//! aside, and what it comes to. No spin-sdk here: `cargo test` runs these rules natively.

use api::json::Object;
use api::money::Money;
use api::FieldErrors;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// A service (takes bay time) or a product (goods off the shelf).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = CatalogKind)]
pub enum Kind {
    Service,
    Product,
}

impl Kind {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "service" => Some(Self::Service),
            "product" => Some(Self::Product),
            _ => None,
        }
    }
}

/// One entry of the catalog, as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CatalogItem {
    pub id: Uuid,
    pub name: String,
    pub kind: Kind,
    pub price: Money,
    /// Services only: the bay time it takes; absent for products.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, nullable = false)]
    pub duration_minutes: Option<i32>,
}

/// How many of one catalog entry a cart line may hold.
pub const MAX_QUANTITY: i64 = 100;

/// `POST /api/cart/items`'s body: documented and read as this type (see `api::body`).
/// Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"catalog_id": "6b1f2c1e-0001-4000-8000-000000000001", "quantity": 2}))]
pub struct CartItemRequest {
    /// An entry of `GET /api/cart/catalog` (else 404 `catalog_item_not_found`).
    pub catalog_id: Uuid,
    /// Default 1; added to the line if the entry is in the cart already, which holds at most
    /// 100 of it (else 409 `quantity_limit`).
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: Option<i32>,
}

/// `POST /api/cart/checkout`'s body: documented and read as this type, then passed on to
/// order-service with the cart's lines as its `items` (see `POST /api/orders`, whose rules
/// apply: a time that has passed is 409 there). Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "car_id": "550e8400-e29b-41d4-a716-446655440000",
    "desired_time": "2030-05-01T10:30:00+03:00",
    "description": "ТО"
}))]
pub struct CheckoutRequest {
    /// One of the caller's cars (staff: any car).
    pub car_id: Uuid,
    /// RFC 3339 with an explicit offset, on the hour or half hour (seconds zero), in the
    /// future (else 409 `desired_time_passed` from order-service).
    #[schema(
        format = DateTime,
        pattern = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):(?:00|30):00(?:\.0+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub desired_time: String,
    /// What the customer asks for; missing or null is empty. No NUL characters.
    #[schema(max_length = 2000, pattern = r"^[^\x00]*$")]
    pub description: Option<String>,
}

/// `POST /api/cart/items`: `{catalog_id, quantity?}` (quantity 1 to 100, default 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewCartItem {
    pub catalog_id: Uuid,
    pub quantity: i32,
}

impl NewCartItem {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: CartItemRequest = api::body::parse(body)?;
        Ok(Self {
            catalog_id: request.catalog_id,
            quantity: request.quantity.unwrap_or(1),
        })
    }
}

/// The booking of a checkout, checked as documented before it goes to order-service.
pub fn parse_checkout(body: &Object) -> Result<CheckoutRequest, FieldErrors> {
    api::body::parse(body)
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![
        api::body::Documented::new::<CartItemRequest, _>(NewCartItem::parse),
        api::body::Documented::new::<CheckoutRequest, _>(parse_checkout),
    ]
}

/// One line of a cart, priced at today's catalog price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CartLine {
    /// The line's id, for `DELETE /api/cart/items/{id}`.
    pub id: Uuid,
    pub catalog_id: Uuid,
    pub name: String,
    pub kind: Kind,
    pub unit_price: Money,
    pub quantity: i32,
    pub line_total: Money,
}

/// A customer's cart with its total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Cart {
    pub items: Vec<CartLine>,
    pub total: Money,
}

/// What a line is made of before it is priced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredLine {
    pub id: Uuid,
    pub catalog_id: Uuid,
    pub name: String,
    pub kind: Kind,
    pub unit_price: Money,
    pub quantity: i32,
}

/// A total beyond [`Money::MAX_KOPECKS`]: no real cart gets there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooExpensive;

impl Cart {
    pub fn price(lines: Vec<StoredLine>) -> Result<Self, TooExpensive> {
        let mut total = Money::ZERO;
        let mut items = Vec::with_capacity(lines.len());
        for line in lines {
            let line_total = line
                .unit_price
                .times(line.quantity as u32)
                .ok_or(TooExpensive)?;
            total = total.checked_add(line_total).ok_or(TooExpensive)?;
            items.push(CartLine {
                id: line.id,
                catalog_id: line.catalog_id,
                name: line.name,
                kind: line.kind,
                unit_price: line.unit_price,
                quantity: line.quantity,
                line_total,
            });
        }
        Ok(Self { items, total })
    }

    /// The `items` of the order this cart checks out into: `[{catalog_id, quantity}]`.
    pub fn order_items(&self) -> Value {
        self.items
            .iter()
            .map(|line| serde_json::json!({"catalog_id": line.catalog_id, "quantity": line.quantity}))
            .collect()
    }

    /// The lines as checked out, `[{id, quantity}]`: emptying the cart removes exactly these,
    /// so an item added or raised meanwhile stays for the next order.
    pub fn snapshot(&self) -> Value {
        self.items
            .iter()
            .map(|line| serde_json::json!({"id": line.id, "quantity": line.quantity}))
            .collect()
    }
}

/// `POST /api/cart/checkout`: `{car_id, desired_time, description?}`, passed on to
/// order-service, which owns the booking rules and answers for them.
pub fn checkout_order(body: &Object, cart: &Cart) -> Value {
    let mut order = body.clone();
    order.insert("items".into(), cart.order_items());
    Value::Object(order)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Object {
        value.as_object().unwrap().clone()
    }

    fn line(n: u128, price: i64, quantity: i32) -> StoredLine {
        StoredLine {
            id: Uuid::from_u128(n),
            catalog_id: Uuid::from_u128(100 + n),
            name: format!("item {n}"),
            kind: Kind::Service,
            unit_price: Money::from_kopecks(price).unwrap(),
            quantity,
        }
    }

    #[test]
    fn quantity_defaults_to_one_and_is_bounded() {
        let id = "6b1f2c1e-0001-4000-8000-000000000001";
        let parse =
            |q: Value| NewCartItem::parse(&object(json!({"catalog_id": id, "quantity": q})));
        assert_eq!(
            NewCartItem::parse(&object(json!({ "catalog_id": id })))
                .unwrap()
                .quantity,
            1
        );
        assert_eq!(parse(json!(100)).unwrap().quantity, 100);
        for bad in [json!(0), json!(101), json!(1.5), json!("2"), json!(-1)] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        assert_eq!(parse(json!(2.0)).unwrap().quantity, 2);
    }

    #[test]
    fn a_bad_item_reports_every_field() {
        let errors =
            NewCartItem::parse(&object(json!({"catalog_id": "x", "quantity": 0}))).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn the_document_and_the_parsers_agree() {
        for documented in request_bodies() {
            let found = api::body::disagreements(&documented);
            assert!(found.is_empty(), "{}", found.join("\n"));
        }
    }

    #[test]
    fn a_cart_totals_its_lines() {
        let cart = Cart::price(vec![line(1, 150_000, 2), line(2, 45_000, 1)]).unwrap();
        assert_eq!(cart.items[0].line_total.kopecks(), 300_000);
        assert_eq!(cart.total.kopecks(), 345_000);
        assert_eq!(Cart::price(vec![]).unwrap().total, Money::ZERO);
        assert_eq!(
            Cart::price(vec![line(1, Money::MAX_KOPECKS, 2)]),
            Err(TooExpensive)
        );
    }

    #[test]
    fn checkout_adds_the_cart_to_the_booking() {
        let cart = Cart::price(vec![line(1, 100, 3)]).unwrap();
        let body = object(json!({"car_id": "c", "desired_time": "t"}));
        let order = checkout_order(&body, &cart);
        assert_eq!(order["car_id"], "c");
        assert_eq!(
            order["items"],
            json!([{"catalog_id": Uuid::from_u128(101), "quantity": 3}])
        );
        assert_eq!(
            cart.snapshot(),
            json!([{"id": Uuid::from_u128(1), "quantity": 3}])
        );
    }
}
