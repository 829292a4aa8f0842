//! Orders as the business sees them: booking input parsed into valid values, and the
//! status state machine. No spin-sdk here: `cargo test` runs these rules natively.

use std::fmt;

use api::json::Object;
use api::money::Money;
use api::{FieldError, FieldErrors};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UUID field (any form `uuid` accepts; stored and returned hyphenated, lower-case).
pub fn parse_uuid(field: &str, s: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(s.trim()).map_err(|_| FieldError::new(field, "must be a UUID"))
}

/// When the customer wants the car serviced: an RFC 3339 date-time with an explicit offset
/// (`2030-05-01T10:30:00+03:00` or `...Z`), so there is never a guess about the time zone,
/// on a half-hour slot (the workshop books bays in 30-minute steps; the pattern of
/// [`OrderRequest::desired_time`]) and, checked against the clock, in the future.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredTime(DateTime<FixedOffset>);

impl DesiredTime {
    /// The format only: for times read back, and for tests of the format.
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        DateTime::parse_from_rfc3339(s).map(Self).map_err(|_| {
            FieldError::new(
                "desired_time",
                "must be an RFC 3339 date-time with an offset, e.g. 2030-05-01T10:30:00+03:00",
            )
        })
    }

    /// Whether the slot is still ahead of `now` (a slot that has started is not).
    pub fn check_ahead(self, now: DateTime<Utc>) -> Result<(), TimePassed> {
        if self.utc() <= now {
            Err(TimePassed(self.utc()))
        } else {
            Ok(())
        }
    }

    pub fn utc(self) -> DateTime<Utc> {
        self.0.with_timezone(&Utc)
    }
}

/// A booking time that has passed: 409 (no schema can say what time it is).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePassed(pub DateTime<Utc>);

impl fmt::Display for TimePassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "desired_time must be in the future: {} has passed",
            self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
        )
    }
}

/// What the customer asks for, in their words: up to 2000 characters, possibly empty, no
/// NUL (PostgreSQL text cannot hold one).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/orders`'s body: documented and read as this type (see `api::body`); the time
/// is checked against the clock after ([`DesiredTime::check_ahead`], 409). Unknown
/// properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "car_id": "550e8400-e29b-41d4-a716-446655440000",
    "desired_time": "2030-05-01T10:30:00+03:00",
    "description": "ТО",
    "items": [{"catalog_id": "6b1f2c1e-0001-4000-8000-000000000001", "quantity": 2}]
}))]
pub struct OrderRequest {
    /// One of the caller's cars (staff: any car); the order belongs to the car's owner.
    pub car_id: Uuid,
    /// RFC 3339 with an explicit offset, on the hour or half hour (seconds zero), in the
    /// future (else 409 `desired_time_passed`).
    #[schema(
        format = DateTime,
        pattern = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):(?:00|30):00(?:\.0+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub desired_time: String,
    /// What the customer asks for; missing or null is empty. No NUL characters.
    #[schema(max_length = 2000, pattern = r"^[^\x00]*$")]
    pub description: Option<String>,
    /// Catalog entries to book, priced from the catalog at booking time; one line per entry
    /// (an entry named twice is refused).
    #[schema(max_items = 50)]
    pub items: Option<Vec<OrderItemRequest>>,
}

/// One catalog entry asked for. Unknown properties are ignored.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
pub struct OrderItemRequest {
    /// An entry of `GET /api/cart/catalog` (else 404 `catalog_item_not_found`), at most
    /// once per order.
    pub catalog_id: Uuid,
    /// Default 1.
    #[schema(minimum = 1, maximum = 100)]
    pub quantity: Option<u32>,
}

/// One catalog entry asked for, its quantity settled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ItemRequest {
    pub catalog_id: Uuid,
    pub quantity: u32,
}

/// Items as one line per catalog entry: a second line for an entry is refused naming it.
fn distinct_items(items: &[OrderItemRequest]) -> Result<Vec<ItemRequest>, FieldErrors> {
    let mut errors = FieldErrors::new();
    let mut lines: Vec<ItemRequest> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if lines.iter().any(|line| line.catalog_id == item.catalog_id) {
            errors.push(FieldError::new(
                format!("items[{index}].catalog_id"),
                "appears twice: give one line per catalog entry with its quantity",
            ));
        } else {
            lines.push(ItemRequest {
                catalog_id: item.catalog_id,
                quantity: item.quantity.unwrap_or(1),
            });
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors)
    }
}

/// A booking request, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub car_id: Uuid,
    pub desired_time: DesiredTime,
    pub description: Description,
    pub items: Vec<ItemRequest>,
}

impl NewOrder {
    /// Reads [`OrderRequest`], reporting every invalid field. A missing or null
    /// `description` is empty. Whether the time is still ahead is [`DesiredTime::check_ahead`].
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: OrderRequest = api::body::parse(body)?;
        Ok(Self {
            car_id: request.car_id,
            desired_time: DesiredTime::parse(&request.desired_time)?,
            description: Description(request.description.unwrap_or_default()),
            items: distinct_items(request.items.as_deref().unwrap_or_default())?,
        })
    }
}

/// A catalog entry as cart-service lists it; its price is the price at booking time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogEntry {
    pub id: Uuid,
    pub name: String,
    pub kind: String,
    pub price: Money,
    /// Sold now; a retired entry (false) is not booked.
    pub active: bool,
    /// How long a service holds a bay; goods (`None`) take no time.
    pub duration_minutes: Option<u32>,
}

/// One booked line, priced when the order was made; later catalog changes leave it alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OrderLine {
    pub catalog_id: Uuid,
    pub name: String,
    /// `service` or `product`, as the catalog said.
    #[schema(example = "service")]
    pub kind: String,
    pub unit_price: Money,
    pub quantity: u32,
    pub line_total: Money,
}

/// Why items could not be priced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpriced {
    /// 404: the catalog has no entry with this id (the `index`th item).
    UnknownEntry { index: usize, id: Uuid },
    /// 422: the `index`th item's entry is retired: no longer sold.
    RetiredEntry { index: usize, id: Uuid },
    /// 409: the order's total is beyond any real bill.
    TooLarge,
}

/// The items' catalog ids that `catalog` (the entries on sale) does not list: each is an
/// entry retired since, or none at all, which only asking for it tells apart.
pub fn unlisted(items: &[ItemRequest], catalog: &[CatalogEntry]) -> Vec<Uuid> {
    items
        .iter()
        .map(|item| item.catalog_id)
        .filter(|id| !catalog.iter().any(|entry| entry.id == *id))
        .collect()
}

/// Prices the requested items from the catalog; items naming an entry that is not there or
/// is retired are refused, the first one named.
pub fn price_items(
    items: &[ItemRequest],
    catalog: &[CatalogEntry],
) -> Result<(Vec<OrderLine>, Money), Unpriced> {
    let mut lines = Vec::with_capacity(items.len());
    let mut total = Money::ZERO;
    for (index, item) in items.iter().enumerate() {
        let id = item.catalog_id;
        let entry = catalog
            .iter()
            .find(|entry| entry.id == id)
            .ok_or(Unpriced::UnknownEntry { index, id })?;
        if !entry.active {
            return Err(Unpriced::RetiredEntry { index, id });
        }
        let (line_total, new_total) = entry
            .price
            .times(item.quantity)
            .and_then(|line_total| total.checked_add(line_total).map(|t| (line_total, t)))
            .ok_or(Unpriced::TooLarge)?;
        total = new_total;
        lines.push(OrderLine {
            catalog_id: entry.id,
            name: entry.name.clone(),
            kind: entry.kind.clone(),
            unit_price: entry.price,
            quantity: item.quantity,
            line_total,
        });
    }
    Ok((lines, total))
}

/// `POST /api/orders/review`'s body: documented and read as this type. Unknown properties
/// are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "order_id": "550e8400-e29b-41d4-a716-446655440000",
    "rating": 5,
    "comment": "Отлично"
}))]
pub struct OrderReviewRequest {
    /// One of the caller's own orders, completed and not yet reviewed.
    pub order_id: Uuid,
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i32,
    /// Missing or null is empty. No NUL characters.
    #[schema(max_length = 2000, pattern = r"^[^\x00]*$")]
    pub comment: Option<String>,
}

/// `POST /api/orders/review`: `{order_id, rating 1..5, comment?}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReview {
    pub order_id: Uuid,
    pub rating: i32,
    pub comment: Description,
}

impl NewReview {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: OrderReviewRequest = api::body::parse(body)?;
        Ok(Self {
            order_id: request.order_id,
            rating: request.rating,
            comment: Description(request.comment.unwrap_or_default()),
        })
    }
}

/// A customer's review of their completed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(as = OrderReview)]
pub struct Review {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub rating: i32,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

/// Where an order is in its life. Moves forward `created → confirmed → in_progress →
/// completed`; `cancelled` is reachable only before work starts. `completed` and
/// `cancelled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Confirmed,
    InProgress,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [Self; 5] = [
        Self::Created,
        Self::Confirmed,
        Self::InProgress,
        Self::Completed,
        Self::Cancelled,
    ];

    /// The name used in JSON and in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Confirmed => "confirmed",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether an order in this status may move to `to`.
    pub fn can_become(self, to: Self) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Created, Confirmed)
                | (Confirmed, InProgress)
                | (InProgress, Completed)
                | (Created, Cancelled)
                | (Confirmed, Cancelled)
        )
    }

    /// Whether the order may move to another time: not once work has started.
    pub fn may_move(self) -> bool {
        matches!(self, Self::Created | Self::Confirmed)
    }

    /// Whether nothing about the order changes any more (completed or cancelled).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }

    pub fn transition(self, to: Self) -> Result<Self, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `PATCH /api/orders/{order_id}/status`'s body: documented and read as this type. Unknown
/// properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "confirmed"}))]
pub struct OrderStatusRequest {
    /// Staff may make any legal move; the order's owner may only ask for `cancelled`.
    pub status: OrderStatus,
}

/// The body of `PATCH /api/orders/{id}/status`: `{"status": "confirmed"}`.
pub fn parse_status_change(body: &Object) -> Result<OrderStatus, FieldErrors> {
    api::body::parse::<OrderStatusRequest>(body).map(|request| request.status)
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![
        api::body::Documented::new::<OrderRequest, _>(NewOrder::parse),
        api::body::Documented::new::<OrderReviewRequest, _>(NewReview::parse),
        api::body::Documented::new::<OrderStatusRequest, _>(parse_status_change),
        api::body::Documented::new::<crate::schedule::ShopSettings, _>(
            crate::schedule::ShopSettings::parse,
        ),
        api::body::Documented::new::<crate::schedule::OrderChangeRequest, _>(
            crate::schedule::OrderChange::parse,
        ),
    ]
}

/// Who may ask for a move to `to`: staff run the workshop and may make any legal move; an
/// order's owner may only cancel it. Whether the move is legal is [`OrderStatus::transition`].
pub fn may_request(to: OrderStatus, staff: bool) -> bool {
    staff || to == OrderStatus::Cancelled
}

/// A status change the state machine forbids: 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an order that is {} cannot become {}",
            self.from, self.to
        )
    }
}

impl std::error::Error for IllegalTransition {}

/// A booked order, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Order {
    pub id: Uuid,
    pub car_id: Uuid,
    pub user_id: Uuid,
    /// When the work starts.
    pub desired_time: DateTime<Utc>,
    /// When the bay is free again: the services' durations after `desired_time`, rounded up
    /// to the half hour (one half hour for an order without work).
    pub ends_at: DateTime<Utc>,
    /// The bay the order holds (1 to the shop's `bays`); null for an order booked before the
    /// shop had bays.
    pub bay: Option<u32>,
    /// The staff member who does the work, once staff assign one.
    pub assigned_to: Option<Uuid>,
    pub description: String,
    pub status: OrderStatus,
    pub items: Vec<OrderLine>,
    /// The lines' sum; 0 for an order without lines.
    pub total: Money,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use OrderStatus::*;

    fn object(value: Value) -> Object {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    fn now() -> DateTime<Utc> {
        DesiredTime::parse("2026-11-25T12:00:00Z").unwrap().utc()
    }

    fn example_order(desired_time: &str) -> Object {
        object(json!({
            "car_id": "550e8400-e29b-41d4-a716-446655440000",
            "desired_time": desired_time,
            "description": "ТО"
        }))
    }

    #[test]
    fn new_order_parses_the_example_with_a_future_date() {
        let order = NewOrder::parse(&example_order("2026-12-20T10:00:00Z")).unwrap();
        assert_eq!(
            order.car_id.to_string(),
            "550e8400-e29b-41d4-a716-446655440000"
        );
        assert_eq!(
            order.desired_time.utc().to_rfc3339(),
            "2026-12-20T10:00:00+00:00"
        );
        assert_eq!(order.desired_time.check_ahead(now()), Ok(()));
        assert_eq!(order.description.as_str(), "ТО");
        assert!(order.items.is_empty());
    }

    #[test]
    fn the_examples_own_date_has_passed_and_says_so() {
        let order = NewOrder::parse(&example_order("2024-12-20T10:00:00Z")).unwrap();
        let passed = order.desired_time.check_ahead(now()).unwrap_err();
        assert_eq!(
            passed.to_string(),
            "desired_time must be in the future: 2024-12-20T10:00:00Z has passed"
        );
    }

    #[test]
    fn desired_time_is_on_the_hour_or_half_hour() {
        for ok in [
            "2026-12-20T10:00:00Z",
            "2026-12-20T10:30:00+03:00",
            "2026-12-20t10:30:00.000z",
        ] {
            assert!(NewOrder::parse(&example_order(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "2026-12-20T10:15:00Z",
            "2026-12-20T10:30:01Z",
            "2026-12-20T10:30:00.5Z",
            "2026-02-30T10:30:00Z",
            " 2026-12-20T10:00:00Z",
        ] {
            let errors = NewOrder::parse(&example_order(bad)).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "desired_time", "{bad}");
        }
        // Now itself is not bookable: the slot has started.
        let order = NewOrder::parse(&example_order("2026-11-25T12:00:00Z")).unwrap();
        assert!(order.desired_time.check_ahead(now()).is_err());
    }

    #[test]
    fn items_default_to_none_and_are_checked_line_by_line() {
        let id = "6b1f2c1e-0001-4000-8000-000000000001";
        let mut body = example_order("2026-12-20T10:00:00Z");
        body.insert("items".into(), json!([{"catalog_id": id}]));
        let order = NewOrder::parse(&body).unwrap();
        assert_eq!(
            order.items,
            [ItemRequest {
                catalog_id: id.parse().unwrap(),
                quantity: 1
            }]
        );

        body.insert(
            "items".into(),
            json!([{"catalog_id": id, "quantity": 2}, {"catalog_id": "x"}, 7,
                   {"catalog_id": "6b1f2c1e-0001-4000-8000-000000000002", "quantity": 101}]),
        );
        let errors = NewOrder::parse(&body).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["items[1].catalog_id", "items[2]", "items[3].quantity"]
        );
        body.insert(
            "items".into(),
            json!([{"catalog_id": id, "quantity": 2}, {"catalog_id": id}]),
        );
        let errors = NewOrder::parse(&body).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "items[1].catalog_id");
        body.insert("items".into(), json!("wash"));
        assert!(NewOrder::parse(&body).is_err());
    }

    fn entry(n: u128, kopecks: i64) -> CatalogEntry {
        CatalogEntry {
            id: Uuid::from_u128(n),
            name: format!("entry {n}"),
            kind: "service".into(),
            price: Money::from_kopecks(kopecks).unwrap(),
            active: true,
            duration_minutes: Some(45),
        }
    }

    #[test]
    fn retired_entries_are_not_booked_and_unlisted_ones_are_named() {
        let retired = CatalogEntry {
            active: false,
            ..entry(3, 10_000)
        };
        let catalog = [entry(1, 150_000), retired.clone()];
        let item = |n: u128| ItemRequest {
            catalog_id: Uuid::from_u128(n),
            quantity: 1,
        };
        assert_eq!(
            price_items(&[item(1), item(3)], &catalog),
            Err(Unpriced::RetiredEntry {
                index: 1,
                id: Uuid::from_u128(3)
            })
        );
        assert_eq!(
            unlisted(&[item(1), item(4), item(3)], &[entry(1, 100)]),
            [Uuid::from_u128(4), Uuid::from_u128(3)]
        );
        assert!(unlisted(&[item(1)], &catalog).is_empty());
    }

    #[test]
    fn items_are_priced_from_the_catalog_at_booking_time() {
        let catalog = [entry(1, 150_000), entry(2, 45_000)];
        let items = [
            ItemRequest {
                catalog_id: Uuid::from_u128(2),
                quantity: 3,
            },
            ItemRequest {
                catalog_id: Uuid::from_u128(1),
                quantity: 1,
            },
        ];
        let (lines, total) = price_items(&items, &catalog).unwrap();
        assert_eq!(lines[0].line_total.kopecks(), 135_000);
        assert_eq!(lines[0].name, "entry 2");
        assert_eq!(total.kopecks(), 285_000);
        let unknown = [ItemRequest {
            catalog_id: Uuid::from_u128(9),
            quantity: 1,
        }];
        assert_eq!(
            price_items(&unknown, &catalog),
            Err(Unpriced::UnknownEntry {
                index: 0,
                id: Uuid::from_u128(9)
            })
        );
        assert_eq!(price_items(&[], &catalog).unwrap(), (vec![], Money::ZERO));
    }

    #[test]
    fn a_review_needs_a_rating_from_1_to_5() {
        let id = "550e8400-e29b-41d4-a716-446655440000";
        let review = NewReview::parse(&object(
            json!({"order_id": id, "rating": 5, "comment": "Отлично"}),
        ))
        .unwrap();
        assert_eq!((review.rating, review.comment.as_str()), (5, "Отлично"));
        for rating in [json!(0), json!(6), json!(4.5), json!("5")] {
            let body = object(json!({"order_id": id, "rating": rating}));
            assert_eq!(
                NewReview::parse(&body).unwrap_err().as_slice()[0].field,
                "rating"
            );
        }
        let long = object(json!({"order_id": id, "rating": 3, "comment": "я".repeat(2001)}));
        assert_eq!(
            NewReview::parse(&long).unwrap_err().as_slice()[0].field,
            "comment"
        );
    }

    #[test]
    fn desired_time_keeps_the_instant_of_any_offset() {
        let time = DesiredTime::parse("2030-05-01T10:30:00+03:00").unwrap();
        assert_eq!(time.utc().to_rfc3339(), "2030-05-01T07:30:00+00:00");
    }

    #[test]
    fn desired_time_needs_a_full_date_time_with_offset() {
        for bad in [
            "",
            "2030-05-01",
            "2030-05-01T10:30:00",
            "2030-05-01 10:30",
            "tomorrow",
            "2030-02-30T10:00:00Z",
        ] {
            let errors = NewOrder::parse(&example_order(bad)).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "desired_time", "{bad}");
        }
    }

    #[test]
    fn description_may_be_missing_null_or_empty() {
        let id = "550e8400-e29b-41d4-a716-446655440000";
        for body in [
            json!({"car_id": id, "desired_time": "2030-05-01T10:30:00Z"}),
            json!({"car_id": id, "desired_time": "2030-05-01T10:30:00Z", "description": null}),
            json!({"car_id": id, "desired_time": "2030-05-01T10:30:00Z", "description": ""}),
        ] {
            let order = NewOrder::parse(&object(body)).unwrap();
            assert_eq!(order.description.as_str(), "");
        }
    }

    #[test]
    fn description_is_at_most_2000_characters_without_nul() {
        let mut body = example_order("2030-05-01T10:30:00Z");
        body.insert("description".into(), json!("ж".repeat(2000)));
        assert!(NewOrder::parse(&body).is_ok());
        for bad in [json!("ж".repeat(2001)), json!("a\u{0}b")] {
            body.insert("description".into(), bad);
            let errors = NewOrder::parse(&body).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "description");
        }
    }

    #[test]
    fn new_order_reports_every_invalid_field_at_once() {
        let body = object(json!({"car_id": 7, "desired_time": "soon", "description": ["x"]}));
        let errors = NewOrder::parse(&body).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["car_id", "description", "desired_time"]);

        let errors = NewOrder::parse(&Object::new()).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["car_id", "desired_time"]);
    }

    #[test]
    fn the_document_and_the_parsers_agree() {
        for documented in request_bodies() {
            let found = api::body::disagreements(&documented);
            assert!(found.is_empty(), "{}", found.join("\n"));
        }
    }

    #[test]
    fn status_names_round_trip_through_text_and_json() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
        }
        assert_eq!(OrderStatus::parse("in progress"), None);
        assert_eq!(OrderStatus::InProgress.as_str(), "in_progress");
    }

    #[test]
    fn transitions_follow_the_lifecycle_and_nothing_else() {
        let allowed = [
            (Created, Confirmed),
            (Confirmed, InProgress),
            (InProgress, Completed),
            (Created, Cancelled),
            (Confirmed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                let result = from.transition(to);
                if allowed.contains(&(from, to)) {
                    assert_eq!(result, Ok(to), "{from} -> {to}");
                } else {
                    assert_eq!(
                        result,
                        Err(IllegalTransition { from, to }),
                        "{from} -> {to}"
                    );
                }
            }
        }
    }

    #[test]
    fn only_orders_not_started_move_and_only_final_ones_are_closed() {
        let moving: Vec<_> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.may_move())
            .collect();
        assert_eq!(moving, [Created, Confirmed]);
        let closed: Vec<_> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(closed, [Completed, Cancelled]);
        for status in OrderStatus::ALL {
            assert_eq!(
                status.is_final(),
                OrderStatus::ALL.iter().all(|to| !status.can_become(*to))
            );
        }
    }

    #[test]
    fn final_statuses_go_nowhere() {
        for from in [Completed, Cancelled] {
            assert!(OrderStatus::ALL.iter().all(|&to| !from.can_become(to)));
        }
    }

    #[test]
    fn owners_may_only_cancel_and_staff_may_ask_for_anything() {
        for to in OrderStatus::ALL {
            assert!(may_request(to, true), "{to}");
            assert_eq!(may_request(to, false), to == Cancelled, "{to}");
        }
    }

    #[test]
    fn status_change_body_names_the_allowed_values() {
        assert_eq!(
            parse_status_change(&object(json!({"status": "in_progress"}))),
            Ok(InProgress)
        );
        assert!(parse_status_change(&object(json!({"status": " in_progress "}))).is_err());
        let errors = parse_status_change(&object(json!({"status": "done"}))).unwrap_err();
        assert_eq!(
            errors.get("status").unwrap().message,
            "must be one of created, confirmed, in_progress, completed, cancelled"
        );
        assert!(parse_status_change(&object(json!({}))).is_err());
    }

    #[test]
    fn illegal_transition_explains_itself() {
        let error = InProgress.transition(Cancelled).unwrap_err();
        assert_eq!(
            error.to_string(),
            "an order that is in_progress cannot become cancelled"
        );
    }

    #[test]
    fn order_serializes_with_status_name_and_utc_times() {
        let order = Order {
            id: Uuid::nil(),
            car_id: Uuid::nil(),
            user_id: Uuid::nil(),
            desired_time: DesiredTime::parse("2030-05-01T10:30:00+03:00")
                .unwrap()
                .utc(),
            ends_at: DesiredTime::parse("2030-05-01T11:30:00+03:00")
                .unwrap()
                .utc(),
            bay: Some(2),
            assigned_to: None,
            description: "ТО".into(),
            status: Created,
            items: vec![OrderLine {
                catalog_id: Uuid::nil(),
                name: "Exterior hand wash".into(),
                kind: "service".into(),
                unit_price: Money::from_kopecks(150_000).unwrap(),
                quantity: 2,
                line_total: Money::from_kopecks(300_000).unwrap(),
            }],
            total: Money::from_kopecks(300_000).unwrap(),
            created_at: DesiredTime::parse("2025-01-02T03:04:05.678Z")
                .unwrap()
                .utc(),
        };
        assert_eq!(
            serde_json::to_value(&order).unwrap(),
            json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "car_id": "00000000-0000-0000-0000-000000000000",
                "user_id": "00000000-0000-0000-0000-000000000000",
                "desired_time": "2030-05-01T07:30:00Z",
                "ends_at": "2030-05-01T08:30:00Z",
                "bay": 2,
                "assigned_to": null,
                "description": "ТО",
                "status": "created",
                "items": [{"catalog_id": "00000000-0000-0000-0000-000000000000",
                           "name": "Exterior hand wash", "kind": "service",
                           "unit_price": 1500.0, "quantity": 2, "line_total": 3000.0}],
                "total": 3000.0,
                "created_at": "2025-01-02T03:04:05.678Z"
            })
        );
    }
}
