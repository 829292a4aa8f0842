//! The catalog and the cart as the business sees them: what is sold, what a customer put
//! aside, and what it comes to. No spin-sdk here: `cargo test` runs these rules natively.

use api::json::Object;
use api::money::{Money, PositiveAmount};
use api::{FieldError, FieldErrors};
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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Product => "product",
        }
    }

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
    #[schema(minimum = 1, maximum = 1440, nullable = false)]
    pub duration_minutes: Option<i32>,
    /// Sold now. A retired entry (false) is listed only to staff who ask for it, and cannot
    /// be put in a cart or booked; orders booked before keep it at the price they were booked.
    pub active: bool,
}

impl CatalogItem {
    /// This entry with `patch` applied. A product takes no bay time, so a duration given for
    /// one is refused naming it (a service's duration may change; a kind may not).
    pub fn patched(&self, patch: &CatalogPatch) -> Result<Self, FieldErrors> {
        if patch.duration_minutes.is_some() && self.kind == Kind::Product {
            return Err(FieldError::new(
                "duration_minutes",
                "a product takes no bay time: leave it out",
            )
            .into());
        }
        Ok(Self {
            id: self.id,
            name: patch.name.clone().unwrap_or_else(|| self.name.clone()),
            kind: self.kind,
            price: patch.price.unwrap_or(self.price),
            duration_minutes: patch.duration_minutes.or(self.duration_minutes),
            active: patch.active.unwrap_or(self.active),
        })
    }
}

/// `POST /api/cart/catalog`'s body (staff only): [`CatalogEntryFields`] with the rule that a
/// service gives its `duration_minutes` and a product none (a `oneOf`). Documented and read
/// as this type (see `api::body`).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct CatalogEntryRequest(CatalogEntryFields);

impl utoipa::PartialSchema for CatalogEntryRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let kind = |kind: Kind| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind.as_str()]))
        };
        // The product's branch first: of two branches a body misses by one error each, the
        // first is reported (see `api::body`), and for a product sent with a duration that
        // is "duration_minutes must be left out", not "kind must be service".
        api::body::all_of(
            <CatalogEntryFields as utoipa::PartialSchema>::schema(),
            OneOfBuilder::new()
                .item(
                    ObjectBuilder::new()
                        .description(Some("Goods take no bay time: no `duration_minutes`"))
                        .property("kind", kind(Kind::Product))
                        .property(
                            "duration_minutes",
                            ObjectBuilder::new().schema_type(Type::Null),
                        )
                        .required("kind"),
                )
                .item(
                    ObjectBuilder::new()
                        .description(Some("A service gives the bay time it takes"))
                        .property("kind", kind(Kind::Service))
                        .property(
                            "duration_minutes",
                            ObjectBuilder::new().schema_type(Type::Integer),
                        )
                        .required("kind")
                        .required("duration_minutes"),
                )
                .into(),
        )
    }
}

impl utoipa::ToSchema for CatalogEntryRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "CatalogEntryRequest".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <CatalogEntryFields as utoipa::ToSchema>::schemas(schemas);
    }
}

/// The properties of a [`CatalogEntryRequest`]. Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "name": "Wheel and tyre cleaning",
    "kind": "service",
    "price": 1200,
    "duration_minutes": 40
}))]
pub struct CatalogEntryFields {
    /// Unique in the catalog (else 409 `catalog_name_taken`); no control characters and no
    /// spaces at either end.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^ \x00-\x1F\x7F](?:[^\x00-\x1F\x7F]*[^ \x00-\x1F\x7F])?$"
    )]
    pub name: String,
    pub kind: Kind,
    // The price today (no doc comment: it would wrap the inline schema in an `allOf`).
    #[schema(inline)]
    pub price: PositiveAmount,
    /// Services: the bay time, 1 to 1440 minutes (required); products: none.
    #[schema(minimum = 1, maximum = 1440)]
    pub duration_minutes: Option<i32>,
}

/// `POST /api/cart/catalog`: a new entry, sold from now on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCatalogEntry {
    pub name: String,
    pub kind: Kind,
    pub price: Money,
    /// Some for a service, None for a product (the schema's `oneOf` holds that).
    pub duration_minutes: Option<i32>,
}

impl NewCatalogEntry {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let CatalogEntryRequest(fields) = api::body::parse(body)?;
        Ok(Self {
            name: fields.name,
            kind: fields.kind,
            price: fields.price.0,
            duration_minutes: fields.duration_minutes,
        })
    }
}

/// `PATCH /api/cart/catalog/{catalog_id}`'s body (staff only): documented and read as this
/// type. Each property given replaces the entry's, each left out keeps it (`{}` changes
/// nothing); none may be null. A misspelt property is refused rather than ignored, so a
/// change that would do nothing does not pass for done.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "Exterior hand wash",
    "price": 1800,
    "duration_minutes": 50,
    "active": true
}))]
pub struct CatalogPatchRequest {
    /// Unique in the catalog (else 409 `catalog_name_taken`); no control characters and no
    /// spaces at either end.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^ \x00-\x1F\x7F](?:[^\x00-\x1F\x7F]*[^ \x00-\x1F\x7F])?$",
        nullable = false
    )]
    pub name: Option<String>,
    // The new price: a positive amount, not null (`schema_with`: `inline` would add a null
    // branch for the Option; no doc comment, which would wrap the schema in an `allOf`).
    #[schema(schema_with = <PositiveAmount as utoipa::PartialSchema>::schema)]
    pub price: Option<PositiveAmount>,
    /// Services only: the bay time, 1 to 1440 minutes (a product's is refused naming it).
    #[schema(minimum = 1, maximum = 1440, nullable = false)]
    pub duration_minutes: Option<i32>,
    /// `false` retires the entry (no longer sold), `true` sells it again.
    #[schema(nullable = false)]
    pub active: Option<bool>,
}

/// `PATCH /api/cart/catalog/{catalog_id}`: what changes; `None` keeps the entry's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CatalogPatch {
    pub name: Option<String>,
    pub price: Option<Money>,
    pub duration_minutes: Option<i32>,
    pub active: Option<bool>,
}

impl CatalogPatch {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: CatalogPatchRequest = api::body::parse(body)?;
        Ok(Self {
            name: request.name,
            price: request.price.map(|price| price.0),
            duration_minutes: request.duration_minutes,
            active: request.active,
        })
    }
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
        api::body::Documented::new::<CatalogEntryRequest, _>(NewCatalogEntry::parse),
        api::body::Documented::new::<CatalogPatchRequest, _>(CatalogPatch::parse),
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
    /// Whether its catalog entry is sold now: a retired one (false) cannot be checked out
    /// (422 `catalog_item_retired` from order-service); remove the line.
    pub active: bool,
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
    pub active: bool,
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
                active: line.active,
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
            active: true,
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

    fn entry(kind: Kind) -> CatalogItem {
        CatalogItem {
            id: Uuid::from_u128(7),
            name: "Exterior hand wash".into(),
            kind,
            price: Money::from_kopecks(150_000).unwrap(),
            duration_minutes: (kind == Kind::Service).then_some(45),
            active: true,
        }
    }

    fn refused(errors: FieldErrors) -> Vec<(String, String)> {
        errors.into_iter().map(|e| (e.field, e.message)).collect()
    }

    #[test]
    fn a_new_entry_is_a_service_with_its_duration_or_a_product_without() {
        let parse = |body: Value| NewCatalogEntry::parse(&object(body));
        let service = parse(
            json!({"name": "Wheel cleaning", "kind": "service", "price": "1200.50", "duration_minutes": 40}),
        )
        .unwrap();
        assert_eq!(
            (service.price.kopecks(), service.duration_minutes),
            (120_050, Some(40))
        );
        let product =
            parse(json!({"name": "Tyre shine", "kind": "product", "price": 590})).unwrap();
        assert_eq!(
            (product.kind, product.duration_minutes),
            (Kind::Product, None)
        );
        let errors = parse(json!({"name": "Wash", "kind": "service", "price": 100})).unwrap_err();
        assert_eq!(
            refused(errors),
            [("duration_minutes".to_owned(), "is required".to_owned())]
        );
        let errors = parse(
            json!({"name": "Shampoo", "kind": "product", "price": 100, "duration_minutes": 5}),
        )
        .unwrap_err();
        assert_eq!(refused(errors)[0].0, "duration_minutes");
        // Every bad field at once.
        let errors =
            parse(json!({"name": " padded ", "kind": "gift", "price": 0, "duration_minutes": 0}))
                .unwrap_err();
        let fields: Vec<String> = refused(errors).into_iter().map(|(f, _)| f).collect();
        for field in ["name", "kind", "price", "duration_minutes"] {
            assert!(fields.contains(&field.to_owned()), "{field}: {fields:?}");
        }
    }

    #[test]
    fn a_patch_changes_what_it_names_and_keeps_the_rest() {
        let parse = |body: Value| CatalogPatch::parse(&object(body));
        let wash = entry(Kind::Service);
        assert_eq!(wash.patched(&parse(json!({})).unwrap()).unwrap(), wash);
        let changed = wash
            .patched(&parse(json!({"price": 1800, "active": false})).unwrap())
            .unwrap();
        assert_eq!(
            (changed.price.kopecks(), changed.active, &changed.name[..]),
            (180_000, false, "Exterior hand wash")
        );
        for bad in [
            json!({"name": null}),
            json!({"price": null}),
            json!({"active": "no"}),
            json!({"duration_minutes": 1441}),
            json!({"kind": "product"}),
            json!({"name": ""}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        let errors = entry(Kind::Product)
            .patched(&parse(json!({"duration_minutes": 30})).unwrap())
            .unwrap_err();
        assert_eq!(refused(errors)[0].0, "duration_minutes");
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
