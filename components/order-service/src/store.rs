//! `orders.orders` in PostgreSQL (migrations/0002_orders.sql), one statement per intent.
//!
//! Every statement returns at least one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (docs/spin-compatibility.md): lookups run through [`db::lookup`], and lists
//! LEFT JOIN onto `(SELECT 1)` and drop the all-NULL row. UUIDs and timestamps travel as
//! text (`$1::text::uuid`, `id::text`, `$3::text::timestamptz`, RFC 3339 in UTC formatted by
//! Postgres): Spin's client rejects a string bound to `$1::uuid`, and pg3's datetime value
//! carries no zone.

use api::db::{self, Row};
use api::money::Money;
use api::query::Page;
use api::ApiError;
use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{NewOrder, NewReview, Order, OrderLine, OrderStatus, Review};

/// The columns of an order, read from the relation aliased `o`.
macro_rules! order_columns {
    () => {
        concat!(
            "o.id::text AS id, o.car_id::text AS car_id, o.user_id::text AS user_id, ",
            api::rfc3339!("o.desired_time"),
            " AS desired_time, o.description, o.status, o.total_kopecks, ",
            api::rfc3339!("o.created_at"),
            " AS created_at"
        )
    };
}

/// An order's lines as JSON text (pg3 has no json value), in the [`StoredLine`] shape.
macro_rules! lines_of_o {
    () => {
        "(SELECT coalesce(json_agg(json_build_object(\
            'line_no', l.line_no, 'catalog_id', l.catalog_id, 'name', l.name, 'kind', l.kind, \
            'unit_price_kopecks', l.unit_price_kopecks, 'quantity', l.quantity) \
            ORDER BY l.line_no), '[]'::json)::text \
          FROM orders.order_lines AS l WHERE l.order_id = o.id) AS lines"
    };
}

/// The order and its lines in one statement, so both are stored or neither. The lines
/// just written are not visible to a subquery of the same statement, so the answer
/// echoes them from the parameter they were written from.
const INSERT: &str = concat!(
    "WITH o AS (\
       INSERT INTO orders.orders (car_id, user_id, desired_time, description, status, total_kopecks) \
       VALUES ($1::text::uuid, $2::text::uuid, $3::text::timestamptz, $4::text, $5::text, $6::int8) \
       RETURNING *\
     ), lines AS (\
       INSERT INTO orders.order_lines \
         (order_id, line_no, catalog_id, name, kind, unit_price_kopecks, quantity) \
       SELECT o.id, x.line_no, x.catalog_id, x.name, x.kind, x.unit_price_kopecks, x.quantity \
       FROM o, jsonb_to_recordset($7::text::jsonb) AS x(line_no int, catalog_id uuid, name text, \
            kind text, unit_price_kopecks int8, quantity int) \
       RETURNING order_id\
     ) SELECT ",
    order_columns!(),
    ", $7::text AS lines FROM o"
);

/// The order, its lines and its version.
const FIND: &str = concat!(
    "SELECT ",
    order_columns!(),
    ", ",
    lines_of_o!(),
    ", ",
    api::rfc3339!("o.updated_at"),
    " AS version FROM orders.orders AS o WHERE o.id = $1::text::uuid"
);

/// What a change stamps in `updated_at`: now, but always later than the stamp it replaces,
/// so every change gives the order a new version (`updated_at` to the microsecond).
macro_rules! next_version {
    () => {
        "greatest(now(), updated_at + interval '1 microsecond')"
    };
}

/// A line as stored, in the JSON the statements above read and write.
#[derive(Debug, Serialize, Deserialize)]
struct StoredLine {
    line_no: u32,
    catalog_id: Uuid,
    name: String,
    kind: String,
    unit_price_kopecks: i64,
    quantity: u32,
}

impl StoredLine {
    fn priced(self) -> Option<OrderLine> {
        let unit_price = Money::from_kopecks(self.unit_price_kopecks)?;
        Some(OrderLine {
            catalog_id: self.catalog_id,
            name: self.name,
            kind: self.kind,
            unit_price,
            quantity: self.quantity,
            line_total: unit_price.times(self.quantity)?,
        })
    }
}

/// Books `order` for `user_id` in status `created`, with its priced lines and total.
pub fn insert(
    db: &Connection,
    order: &NewOrder,
    user_id: Uuid,
    lines: &[OrderLine],
    total: Money,
) -> Result<Order, ApiError> {
    let stored: Vec<StoredLine> = lines
        .iter()
        .enumerate()
        .map(|(index, line)| StoredLine {
            line_no: index as u32 + 1,
            catalog_id: line.catalog_id,
            name: line.name.clone(),
            kind: line.kind.clone(),
            unit_price_kopecks: line.unit_price.kopecks(),
            quantity: line.quantity,
        })
        .collect();
    let stored = serde_json::to_string(&stored)
        .map_err(|error| ApiError::internal("the order could not be encoded").with_detail(error))?;
    let params = [
        order.car_id.to_string().into(),
        user_id.to_string().into(),
        order
            .desired_time
            .utc()
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
            .into(),
        order.description.as_str().to_owned().into(),
        OrderStatus::Created.as_str().to_owned().into(),
        total.kopecks().into(),
        stored.into(),
    ];
    order_from_row(&db::one_row(db::query(db, INSERT, &params)?)?)
}

/// Newest first: `user` limits to one user's orders (`None`: everyone's, for staff),
/// `page.after` starts after a cursor. The LATERAL join keeps the one-row shape when the
/// page is empty (an all-NULL row, dropped below).
const LIST: &str = concat!(
    "SELECT ",
    order_columns!(),
    ", ",
    lines_of_o!(),
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM orders.orders AS inner_o \
       WHERE ($1::text IS NULL OR inner_o.user_id = $1::text::uuid) \
         AND ($2::text IS NULL \
              OR (inner_o.created_at, inner_o.id) < ($2::text::timestamptz, $3::text::uuid)) \
       ORDER BY inner_o.created_at DESC, inner_o.id DESC \
       LIMIT $4::int8\
     ) AS o ON true \
     ORDER BY o.created_at DESC, o.id DESC"
);

/// Moves the order from `from` to `to` only if it is still in `from` (compare and set), so
/// two concurrent changes cannot both apply; with a version (`$4`), only if the order has
/// not changed at all since it was read at that version.
const SET_STATUS: &str = concat!(
    "UPDATE orders.orders AS o SET status = $3::text, updated_at = ",
    next_version!(),
    " WHERE o.id = $1::text::uuid AND o.status = $2::text \
       AND ($4::text IS NULL OR o.updated_at = $4::text::timestamptz) \
     RETURNING ",
    order_columns!(),
    ", ",
    lines_of_o!()
);

/// Gives the order a new version and answers it as it now is: payment-service's check just
/// before it charges (the order is read by a write, so it is ordered against cancellations;
/// see lib.rs `change_status`).
const PAYMENT_CHECK: &str = concat!(
    "UPDATE orders.orders AS o SET updated_at = ",
    next_version!(),
    " WHERE o.id = $1::text::uuid RETURNING ",
    order_columns!(),
    ", ",
    lines_of_o!()
);

/// Records the review unless the order has one; `created` is NULL when it had.
const REVIEW: &str = concat!(
    "INSERT INTO orders.reviews AS r (order_id, user_id, rating, comment) \
     VALUES ($1::text::uuid, $2::text::uuid, $3::int4, $4::text) \
     ON CONFLICT (order_id) DO NOTHING RETURNING ",
    api::rfc3339!("r.created_at"),
    " AS created_at"
);

pub fn list(db: &Connection, user: Option<Uuid>, page: &Page) -> Result<Vec<Order>, ApiError> {
    let params = db::paged(vec![db::text_or_null(user.map(|id| id.to_string()))], page);
    db::list(db::query(db, LIST, &params)?, "id", order_from_row)
}

/// The order after the move, or `None` when it was no longer in `from` (or, with
/// `version`, no longer at that version).
pub fn set_status(
    db: &Connection,
    id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
    version: Option<&Version>,
) -> Result<Option<Order>, ApiError> {
    let params = [
        id.to_string().into(),
        from.as_str().to_owned().into(),
        to.as_str().to_owned().into(),
        db::text_or_null(version.map(|version| version.0.clone())),
    ];
    db::lookup(db, SET_STATUS, &params, order_from_row)
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Order>, ApiError> {
    Ok(find_versioned(db, id)?.map(|(order, _)| order))
}

/// An order's version: any change to the order gives it a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

/// The order with its version.
pub fn find_versioned(db: &Connection, id: Uuid) -> Result<Option<(Order, Version)>, ApiError> {
    db::lookup(db, FIND, &[id.to_string().into()], |row| {
        Ok((order_from_row(row)?, Version(row.get("version")?)))
    })
}

/// The order after [`PAYMENT_CHECK`] gave it a new version (`None`: no such order).
pub fn payment_check(db: &Connection, id: Uuid) -> Result<Option<Order>, ApiError> {
    db::lookup(db, PAYMENT_CHECK, &[id.to_string().into()], order_from_row)
}

/// The order in `row`.
fn order_from_row(row: &Row) -> Result<Order, ApiError> {
    let status: String = row.get("status")?;
    Ok(Order {
        id: row.uuid("id")?,
        car_id: row.uuid("car_id")?,
        user_id: row.uuid("user_id")?,
        desired_time: row.timestamp("desired_time")?,
        description: row.get("description")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| db::unexpected("status", format!("unknown status {status:?}")))?,
        items: row.parse("lines", |text| {
            serde_json::from_str::<Vec<StoredLine>>(text)
                .map_err(|error| error.to_string())?
                .into_iter()
                .map(|line| line.priced().ok_or("a line's amount is out of range"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(str::to_owned)
        })?,
        total: {
            let kopecks: i64 = row.get("total_kopecks")?;
            Money::from_kopecks(kopecks)
                .ok_or_else(|| db::unexpected("total_kopecks", "out of range"))?
        },
        created_at: row.timestamp("created_at")?,
    })
}

/// Stores `review` by `user_id`, or `None` when the order already has one.
pub fn add_review(
    db: &Connection,
    review: &NewReview,
    user_id: Uuid,
) -> Result<Option<Review>, ApiError> {
    let params = [
        review.order_id.to_string().into(),
        user_id.to_string().into(),
        review.rating.into(),
        review.comment.as_str().to_owned().into(),
    ];
    db::lookup(db, REVIEW, &params, |row| {
        Ok(Review {
            order_id: review.order_id,
            user_id,
            rating: review.rating,
            comment: review.comment.as_str().to_owned(),
            created_at: row.timestamp("created_at")?,
        })
    })
}
