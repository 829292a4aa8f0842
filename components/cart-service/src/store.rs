//! `cart.catalog` and `cart.items` in PostgreSQL (migrations/0005_cart.sql,
//! 0016_catalog_admin.sql), one statement per intent. Every statement returns at least one
//! row (Spin 4.0.2 hangs on an empty `pg3` result, see car-service's store): lookups run
//! through [`db::lookup`], lists LEFT JOIN LATERAL onto `(SELECT 1)` and drop the all-NULL
//! row; prices come back as int8 kopecks.

use api::db::{self, Row};
use api::money::Money;
use api::ApiError;
use spin_sdk::pg3::{Connection, ParameterValue};
use uuid::Uuid;

use crate::domain::{CatalogItem, Kind, NewCartItem, NewCatalogEntry, StoredLine, MAX_QUANTITY};

/// The columns of a catalog entry, read from the relation aliased `c`.
macro_rules! entry_columns {
    () => {
        "c.id::text AS id, c.name, c.kind, c.price_kopecks, c.duration_minutes, c.active"
    };
}

/// Active entries, or every entry when `$1` is true (staff asking for retired ones too).
const CATALOG: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN cart.catalog AS c ON ($1::bool OR c.active) \
     ORDER BY c.kind DESC, c.name"
);

/// One entry, retired or not.
const ENTRY: &str = concat!(
    "SELECT ",
    entry_columns!(),
    " FROM cart.catalog AS c WHERE c.id = $1::text::uuid"
);

/// A new entry, unless its name is taken: the unique constraint decides, not a read
/// before the write.
const CREATE: &str = concat!(
    "INSERT INTO cart.catalog AS c (name, kind, price_kopecks, duration_minutes) \
     VALUES ($1::text, $2::text, $3::int8, $4::int4) \
     ON CONFLICT (name) DO NOTHING \
     RETURNING ",
    entry_columns!()
);

/// Catalog writes wait for each other (readers, carts and orders do not wait: this mode
/// conflicts only with writes to the catalog itself), so a rename's check that no other
/// entry has the name holds until it commits. Without it two renames onto one free name
/// could both pass the check, and the second would fail on the unique constraint, which
/// reaches a component only as a failed query's text (a 500).
const LOCK_FOR_CHANGE: &str = "LOCK TABLE cart.catalog IN SHARE ROW EXCLUSIVE MODE";

/// Another entry with this name (`$1`) than `$2`.
const NAME_TAKEN: &str = "SELECT c.id::text AS id FROM cart.catalog AS c \
     WHERE c.name = $1::text AND c.id <> $2::text::uuid";

const UPDATE: &str = concat!(
    "UPDATE cart.catalog AS c \
     SET name = $2::text, price_kopecks = $3::int8, duration_minutes = $4::int4, active = $5::bool \
     WHERE c.id = $1::text::uuid \
     RETURNING ",
    entry_columns!()
);

/// `added_at` (timestamptz) only orders the lines: it is not selected, since Spin 4.0.2's pg3
/// cannot read a timestamptz column.
const LINES: &str = "SELECT l.id, l.catalog_id, l.name, l.kind, l.price_kopecks, l.quantity, \
            l.active \
     FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT i.id::text AS id, i.catalog_id::text AS catalog_id, c.name, c.kind, \
              c.price_kopecks, i.quantity, c.active, i.added_at \
       FROM cart.items AS i JOIN cart.catalog AS c ON c.id = i.catalog_id \
       WHERE i.user_id = $1::text::uuid\
     ) AS l ON true \
     ORDER BY l.added_at, l.id";

/// Adds a line for an active entry, or raises the quantity of the caller's line for it,
/// never past the limit (the guarded DO UPDATE then changes nothing). `active` tells an
/// unknown catalog id (NULL) and a retired entry (false) apart from a full line.
const ADD: &str = "WITH added AS (\
       INSERT INTO cart.items AS i (user_id, catalog_id, quantity) \
       SELECT $1::text::uuid, c.id, $3::int4 FROM cart.catalog AS c \
       WHERE c.id = $2::text::uuid AND c.active \
       ON CONFLICT (user_id, catalog_id) DO UPDATE SET quantity = i.quantity + EXCLUDED.quantity \
       WHERE i.quantity + EXCLUDED.quantity <= $4::int4 \
       RETURNING i.id\
     ) \
     SELECT (SELECT c.active FROM cart.catalog AS c WHERE c.id = $2::text::uuid) AS active, \
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

/// The entries on sale, or every entry with `retired_too`.
pub fn catalog(db: &Connection, retired_too: bool) -> Result<Vec<CatalogItem>, ApiError> {
    let rows = db::query(db, CATALOG, &[retired_too.into()])?;
    db::list(rows, "id", entry_from_row)
}

/// One entry, retired or not.
pub fn entry(db: &Connection, id: Uuid) -> Result<Option<CatalogItem>, ApiError> {
    db::lookup(db, ENTRY, &[id.to_string().into()], entry_from_row)
}

/// The new entry, or `None` when another has its name.
pub fn create(db: &Connection, entry: &NewCatalogEntry) -> Result<Option<CatalogItem>, ApiError> {
    let params = [
        entry.name.clone().into(),
        entry.kind.as_str().to_owned().into(),
        entry.price.kopecks().into(),
        entry
            .duration_minutes
            .map_or(ParameterValue::DbNull, Into::into),
    ];
    db::lookup(db, CREATE, &params, entry_from_row)
}

pub enum Changed {
    Entry(CatalogItem),
    NotFound,
    NameTaken,
    /// The change breaks a rule of the entry (a product given a duration).
    Invalid(api::FieldErrors),
}

/// Applies `change` to entry `id` (what it makes of the entry as it is now), in one
/// transaction that holds other catalog writes off (see [`LOCK_FOR_CHANGE`]).
pub fn change(
    db: &Connection,
    id: Uuid,
    change: impl FnOnce(&CatalogItem) -> Result<CatalogItem, api::FieldErrors>,
) -> Result<Changed, ApiError> {
    db::transaction(db, |db| {
        db::execute(db, LOCK_FOR_CHANGE, &[])?;
        let Some(current) = entry(db, id)? else {
            return Ok(Changed::NotFound);
        };
        let changed = match change(&current) {
            Ok(changed) => changed,
            Err(fields) => return Ok(Changed::Invalid(fields)),
        };
        if changed.name != current.name {
            let taken = [changed.name.clone().into(), id.to_string().into()];
            if db::lookup(db, NAME_TAKEN, &taken, |_| Ok(()))?.is_some() {
                return Ok(Changed::NameTaken);
            }
        }
        let params = [
            id.to_string().into(),
            changed.name.clone().into(),
            changed.price.kopecks().into(),
            changed
                .duration_minutes
                .map_or(ParameterValue::DbNull, Into::into),
            changed.active.into(),
        ];
        match db::lookup(db, UPDATE, &params, entry_from_row)? {
            Some(entry) => Ok(Changed::Entry(entry)),
            // Held off by the lock: the entry read above is still there.
            None => Ok(Changed::NotFound),
        }
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
            active: row.get("active")?,
        })
    })
}

pub enum Added {
    Line,
    UnknownCatalogItem,
    RetiredCatalogItem,
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
    Ok(match row.get::<Option<bool>>("active")? {
        None => Added::UnknownCatalogItem,
        Some(false) => Added::RetiredCatalogItem,
        Some(true) if row.is_null("id")? => Added::QuantityLimit,
        Some(true) => Added::Line,
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

fn entry_from_row(row: &Row) -> Result<CatalogItem, ApiError> {
    Ok(CatalogItem {
        id: row.uuid("id")?,
        name: row.get("name")?,
        kind: kind(row)?,
        price: price(row)?,
        duration_minutes: row.get("duration_minutes")?,
        active: row.get("active")?,
    })
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
