//! `cars.cars` in PostgreSQL (migrations/0001_cars.sql), one statement per intent.
//!
//! Every statement returns exactly one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (SPIN_BEHAVIOUR.md): lookups LEFT JOIN onto `(SELECT 1)` and read NULLs as
//! "absent". UUIDs travel as text (`$1::text::uuid`, `id::text`) since Spin's client rejects
//! a string bound to `$1::uuid`; timestamps come back as RFC 3339 text formatted by Postgres
//! in UTC, which every host passes through unchanged (pg3's datetime value has no zone).

use api::db::{self, Row};
use api::query::{Cursor, Page};
use api::ApiError;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{Car, NewCar};

/// The columns of a car, read from the relation aliased `c`.
macro_rules! car_columns {
    () => {
        concat!(
            "c.id::text AS id, c.owner_id::text AS owner_id, c.license_plate, c.vin, c.make, \
             c.model, c.year, ",
            api::rfc3339!("c.created_at"),
            " AS created_at"
        )
    };
}

/// Inserts unless the VIN exists. The unique constraint decides, not a read before the
/// write, so two concurrent registrations of one VIN cannot both succeed.
const INSERT: &str = concat!(
    "WITH inserted AS (\
       INSERT INTO cars.cars (owner_id, license_plate, vin, make, model, year) \
       VALUES ($1::text::uuid, $2::text, $3::text, $4::text, $5::text, $6::int4) \
       ON CONFLICT (vin) DO NOTHING \
       RETURNING *\
     ) \
     SELECT ",
    car_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN inserted AS c ON true"
);

const FIND: &str = concat!(
    "SELECT ",
    car_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN cars.cars AS c ON c.id = $1::text::uuid"
);

/// Newest first: `owner` limits to one owner's cars (`None`: everyone's, for staff); the
/// LATERAL join keeps the one-row shape when the page is empty.
const LIST: &str = concat!(
    "SELECT ",
    car_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM cars.cars AS inner_c \
       WHERE ($1::text IS NULL OR inner_c.owner_id = $1::text::uuid) \
         AND ($2::text IS NULL \
              OR (inner_c.created_at, inner_c.id) < ($2::text::timestamptz, $3::text::uuid)) \
       ORDER BY inner_c.created_at DESC, inner_c.id DESC \
       LIMIT $4::int8\
     ) AS c ON true \
     ORDER BY c.created_at DESC, c.id DESC"
);

pub enum Inserted {
    Created(Car),
    DuplicateVin,
}

/// Registers `car` for `owner`.
pub fn insert(db: &Connection, car: &NewCar, owner: Uuid) -> Result<Inserted, ApiError> {
    let params = [
        owner.to_string().into(),
        car.license_plate.as_str().to_owned().into(),
        car.vin.as_str().to_owned().into(),
        car.make.as_str().to_owned().into(),
        car.model.as_str().to_owned().into(),
        car.year.get().into(),
    ];
    let row = db::one_row(db::query(db, INSERT, &params)?)?;
    Ok(match car_from_row(&row)? {
        Some(car) => Inserted::Created(car),
        None => Inserted::DuplicateVin,
    })
}

pub fn list(db: &Connection, owner: Option<Uuid>, page: &Page) -> Result<Vec<Car>, ApiError> {
    let params = [
        db::text_or_null(owner.map(|id| id.to_string())),
        db::text_or_null(page.after.as_ref().map(Cursor::created_at_sql)),
        db::text_or_null(page.after.as_ref().map(|cursor| cursor.id.to_string())),
        page.fetch().into(),
    ];
    let mut cars = Vec::new();
    for row in db::rows(db::query(db, LIST, &params)?) {
        cars.extend(car_from_row(&row)?);
    }
    Ok(cars)
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Car>, ApiError> {
    let row = db::one_row(db::query(db, FIND, &[id.to_string().into()])?)?;
    car_from_row(&row)
}

/// The car in `row`, or `None` when the row is the all-NULL "nothing found" row.
fn car_from_row(row: &Row) -> Result<Option<Car>, ApiError> {
    if row.is_null("id")? {
        return Ok(None);
    }
    Ok(Some(Car {
        id: row.uuid("id")?,
        owner_id: row.uuid("owner_id")?,
        license_plate: row.get("license_plate")?,
        vin: row.get("vin")?,
        make: row.get("make")?,
        model: row.get("model")?,
        year: row.get("year")?,
        created_at: row.timestamp("created_at")?,
    }))
}
