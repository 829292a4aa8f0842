//! `cart.catalog` and `cart.items` in PostgreSQL (migrations/0005_cart.sql), one statement
//! per intent. Every statement returns at least one row (Spin 4.0.2 hangs on an empty `pg3`
//! result, see car-service's store): lists LEFT JOIN LATERAL onto `(SELECT 1)` and drop the
//! all-NULL row; prices come back as int8 kopecks.

use api::db::{self, Row};
use api::money::Money;
use api::ApiError;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{CatalogItem, Kind, NewCartItem, StoredLine, MAX_QUANTITY};

const CATALOG: &str =
    "SELECT c.id::text AS id, c.name, c.kind, c.price_kopecks, c.duration_minutes \
     FROM (SELECT 1) AS one LEFT JOIN cart.catalog AS c ON true \
     ORDER BY c.kind DESC, c.name";

/// `added_at` (timestamptz) only orders the lines: it is not selected, since Spin 4.0.2's pg3
/// cannot read a timestamptz column.
const LINES: &str = "SELECT l.id, l.catalog_id, l.name, l.kind, l.price_kopecks, l.quantity \
     FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT i.id::text AS id, i.catalog_id::text AS catalog_id, c.name, c.kind, \
              c.price_kopecks, i.quantity, i.added_at \
       FROM cart.items AS i JOIN cart.catalog AS c ON c.id = i.catalog_id \
       WHERE i.user_id = $1::text::uuid\
     ) AS l ON true \
     ORDER BY l.added_at, l.id";

/// Adds a line, or raises the quantity of the caller's line for that entry, never past the
/// limit (the guarded DO UPDATE then changes nothing). `known` tells an unknown catalog id
/// apart from a full line.
const ADD: &str = "WITH added AS (\
       INSERT INTO cart.items AS i (user_id, catalog_id, quantity) \
       SELECT $1::text::uuid, c.id, $3::int4 FROM cart.catalog AS c WHERE c.id = $2::text::uuid \
       ON CONFLICT (user_id, catalog_id) DO UPDATE SET quantity = i.quantity + EXCLUDED.quantity \
       WHERE i.quantity + EXCLUDED.quantity <= $4::int4 \
       RETURNING i.id\
     ) \
     SELECT EXISTS (SELECT 1 FROM cart.catalog WHERE id = $2::text::uuid) AS known, \
            added.id::text AS id \
     FROM (SELECT 1) AS one LEFT JOIN added ON true";

const REMOVE: &str = "WITH removed AS (\
       DELETE FROM cart.items WHERE id = $1::text::uuid AND user_id = $2::text::uuid RETURNING id\
     ) SELECT count(*) AS removed FROM removed";

/// Removes exactly the lines checked out (`[{id, quantity}]` as JSON text): a line raised
/// meanwhile no longer matches and stays in the cart.
const CHECKED_OUT: &str = "WITH removed AS (\
       DELETE FROM cart.items AS i USING jsonb_to_recordset($2::text::jsonb) AS s(id uuid, quantity int) \
       WHERE i.user_id = $1::text::uuid AND i.id = s.id AND i.quantity = s.quantity \
       RETURNING i.id\
     ) SELECT count(*) AS removed FROM removed";

pub fn catalog(db: &Connection) -> Result<Vec<CatalogItem>, ApiError> {
    db::list(db::query(db, CATALOG, &[])?, "id", |row| {
        Ok(CatalogItem {
            id: row.uuid("id")?,
            name: row.get("name")?,
            kind: kind(row)?,
            price: price(row)?,
            duration_minutes: row.get("duration_minutes")?,
        })
    })
}

pub fn lines(db: &Connection, user: Uuid) -> Result<Vec<StoredLine>, ApiError> {
    let rows = db::query(db, LINES, &[user.to_string().into()])?;
    db::list(rows, "id", |row| {
        Ok(StoredLine {
            id: row.uuid("id")?,
            catalog_id: row.uuid("catalog_id")?,
            name: row.get("name")?,
            kind: kind(row)?,
            unit_price: price(row)?,
            quantity: row.get("quantity")?,
        })
    })
}

pub enum Added {
    Line,
    UnknownCatalogItem,
    QuantityLimit,
}

pub fn add(db: &Connection, user: Uuid, item: &NewCartItem) -> Result<Added, ApiError> {
    let params = [
        user.to_string().into(),
        item.catalog_id.to_string().into(),
        item.quantity.into(),
        (MAX_QUANTITY as i32).into(),
    ];
    let row = db::one_row(db::query(db, ADD, &params)?)?;
    Ok(if !row.get::<bool>("known")? {
        Added::UnknownCatalogItem
    } else if row.is_null("id")? {
        Added::QuantityLimit
    } else {
        Added::Line
    })
}

/// Whether the caller's cart had the line.
pub fn remove(db: &Connection, user: Uuid, line: Uuid) -> Result<bool, ApiError> {
    let params = [line.to_string().into(), user.to_string().into()];
    let row = db::one_row(db::query(db, REMOVE, &params)?)?;
    Ok(row.get::<i64>("removed")? == 1)
}

/// Empties the lines of `snapshot` (see [`crate::domain::Cart::snapshot`]); how many went.
pub fn remove_checked_out(
    db: &Connection,
    user: Uuid,
    snapshot: &serde_json::Value,
) -> Result<i64, ApiError> {
    let params = [user.to_string().into(), snapshot.to_string().into()];
    let row = db::one_row(db::query(db, CHECKED_OUT, &params)?)?;
    row.get("removed")
}

fn kind(row: &Row) -> Result<Kind, ApiError> {
    row.parse("kind", |text| {
        Kind::parse(text).ok_or_else(|| format!("unknown kind `{text}`"))
    })
}

fn price(row: &Row) -> Result<Money, ApiError> {
    let kopecks: i64 = row.get("price_kopecks")?;
    Money::from_kopecks(kopecks)
        .ok_or_else(|| db::unexpected("price_kopecks", format!("{kopecks} is out of range")))
}
