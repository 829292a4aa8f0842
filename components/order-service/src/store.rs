//! `orders.orders` in PostgreSQL (migrations/0002_orders.sql), one statement per intent.
//!
//! Every statement returns exactly one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (SPIN_BEHAVIOUR.md): lookups LEFT JOIN onto `(SELECT 1)` and read NULLs as
//! "absent". UUIDs and timestamps travel as text (`$1::text::uuid`, `id::text`,
//! `$3::text::timestamptz`, RFC 3339 in UTC formatted by Postgres): Spin's client rejects
//! a string bound to `$1::uuid`, and pg3's datetime value carries no zone.

use api::db::{self, Row};
use api::query::{Cursor, Page};
use api::ApiError;
use chrono::SecondsFormat;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{NewOrder, Order, OrderStatus};

/// The columns of an order, read from the relation aliased `o`.
macro_rules! order_columns {
    () => {
        concat!(
            "o.id::text AS id, o.car_id::text AS car_id, o.user_id::text AS user_id, ",
            api::rfc3339!("o.desired_time"),
            " AS desired_time, o.description, o.status, ",
            api::rfc3339!("o.created_at"),
            " AS created_at"
        )
    };
}

const INSERT: &str = concat!(
    "INSERT INTO orders.orders AS o (car_id, user_id, desired_time, description, status) \
     VALUES ($1::text::uuid, $2::text::uuid, $3::text::timestamptz, $4::text, $5::text) \
     RETURNING ",
    order_columns!()
);

const FIND: &str = concat!(
    "SELECT ",
    order_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN orders.orders AS o ON o.id = $1::text::uuid"
);

/// Books `order` for `user_id` in status `created`.
pub fn insert(db: &Connection, order: &NewOrder, user_id: Uuid) -> Result<Order, ApiError> {
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
    ];
    let row = db::one_row(db::query(db, INSERT, &params)?)?;
    order_from_row(&row)?.ok_or_else(|| {
        ApiError::internal("a database query returned an unexpected result")
            .with_detail("INSERT ... RETURNING gave a NULL id")
    })
}

/// Newest first: `user` limits to one user's orders (`None`: everyone's, for staff),
/// `page.after` starts after a cursor. The LATERAL join keeps the one-row shape when the
/// page is empty (an all-NULL row, dropped below).
const LIST: &str = concat!(
    "SELECT ",
    order_columns!(),
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
/// two concurrent changes cannot both apply.
const SET_STATUS: &str = concat!(
    "WITH changed AS (\
       UPDATE orders.orders SET status = $3::text, updated_at = now() \
       WHERE id = $1::text::uuid AND status = $2::text \
       RETURNING *\
     ) \
     SELECT ",
    order_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN changed AS o ON true"
);

pub fn list(db: &Connection, user: Option<Uuid>, page: &Page) -> Result<Vec<Order>, ApiError> {
    let params = [
        db::text_or_null(user.map(|id| id.to_string())),
        db::text_or_null(page.after.as_ref().map(Cursor::created_at_sql)),
        db::text_or_null(page.after.as_ref().map(|cursor| cursor.id.to_string())),
        page.fetch().into(),
    ];
    let mut orders = Vec::new();
    for row in db::rows(db::query(db, LIST, &params)?) {
        orders.extend(order_from_row(&row)?);
    }
    Ok(orders)
}

/// The order after the move, or `None` when it was no longer in `from`.
pub fn set_status(
    db: &Connection,
    id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
) -> Result<Option<Order>, ApiError> {
    let params = [
        id.to_string().into(),
        from.as_str().to_owned().into(),
        to.as_str().to_owned().into(),
    ];
    let row = db::one_row(db::query(db, SET_STATUS, &params)?)?;
    order_from_row(&row)
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Order>, ApiError> {
    let row = db::one_row(db::query(db, FIND, &[id.to_string().into()])?)?;
    order_from_row(&row)
}

/// The order in `row`, or `None` when the row is the all-NULL "nothing found" row.
fn order_from_row(row: &Row) -> Result<Option<Order>, ApiError> {
    if row.is_null("id")? {
        return Ok(None);
    }
    let status: String = row.get("status")?;
    Ok(Some(Order {
        id: row.uuid("id")?,
        car_id: row.uuid("car_id")?,
        user_id: row.uuid("user_id")?,
        desired_time: row.timestamp("desired_time")?,
        description: row.get("description")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| db::unexpected("status", format!("unknown status {status:?}")))?,
        created_at: row.timestamp("created_at")?,
    }))
}
