//! `cars.cars` and `cars.documents` in PostgreSQL (migrations/0001_cars.sql,
//! 0006_car_documents.sql), one statement per intent.
//!
//! Every statement returns at least one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (docs/spin-compatibility.md): lookups run through [`db::lookup`], and lists
//! LEFT JOIN onto `(SELECT 1)` and drop the all-NULL row. UUIDs travel as text
//! (`$1::text::uuid`, `id::text`) since Spin's client rejects a string bound to `$1::uuid`;
//! timestamps come back as RFC 3339 text formatted by Postgres in UTC, which every host
//! passes through unchanged (pg3's datetime value has no zone).

use api::db::{self, Row};
use api::query::Page;
use api::ApiError;
use spin_sdk::pg3::{Connection, ParameterValue};
use uuid::Uuid;

use crate::documents::{Document, DocumentKind, File, FileInfo, NewDocument, Registration};
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
    "INSERT INTO cars.cars AS c (owner_id, license_plate, vin, make, model, year) \
     VALUES ($1::text::uuid, $2::text, $3::text, $4::text, $5::text, $6::int4) \
     ON CONFLICT (vin) DO NOTHING \
     RETURNING ",
    car_columns!()
);

const FIND: &str = concat!(
    "SELECT ",
    car_columns!(),
    " FROM cars.cars AS c WHERE c.id = $1::text::uuid"
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
    Ok(match db::lookup(db, INSERT, &params, car_from_row)? {
        Some(car) => Inserted::Created(car),
        None => Inserted::DuplicateVin,
    })
}

pub fn list(db: &Connection, owner: Option<Uuid>, page: &Page) -> Result<Vec<Car>, ApiError> {
    let params = db::paged(vec![db::text_or_null(owner.map(|id| id.to_string()))], page);
    db::list(db::query(db, LIST, &params)?, "id", car_from_row)
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Car>, ApiError> {
    db::lookup(db, FIND, &[id.to_string().into()], car_from_row)
}

/// The car in `row`.
fn car_from_row(row: &Row) -> Result<Car, ApiError> {
    Ok(Car {
        id: row.uuid("id")?,
        owner_id: row.uuid("owner_id")?,
        license_plate: row.get("license_plate")?,
        vin: row.get("vin")?,
        make: row.get("make")?,
        model: row.get("model")?,
        year: row.get("year")?,
        created_at: row.timestamp("created_at")?,
    })
}

/// The columns of a document without its scan's bytes, read from the relation aliased `d`.
macro_rules! document_columns {
    () => {
        concat!(
            "d.id::text AS id, d.car_id::text AS car_id, d.kind, d.number, \
             to_char(d.issued_at, 'YYYY-MM-DD') AS issued_at, \
             to_char(d.expires_at, 'YYYY-MM-DD') AS expires_at, \
             d.file_name, d.file_content_type, octet_length(d.file_bytes)::int8 AS file_size, ",
            api::rfc3339!("d.created_at"),
            " AS created_at"
        )
    };
}

const INSERT_DOCUMENT: &str = concat!(
    "INSERT INTO cars.documents AS d \
       (car_id, kind, number, issued_at, expires_at, file_name, file_content_type, file_bytes) \
     VALUES ($1::text::uuid, $2::text, $3::text, $4::text::date, $5::text::date, $6::text, $7::text, $8::bytea) \
     RETURNING ",
    document_columns!()
);

const DOCUMENTS: &str = concat!(
    "SELECT ",
    document_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN cars.documents AS d ON d.car_id = $1::text::uuid \
     ORDER BY d.created_at, d.id"
);

const DOCUMENT_FILE: &str =
    "SELECT d.id::text AS id, d.file_name, d.file_content_type, d.file_bytes \
     FROM cars.documents AS d WHERE d.id = $1::text::uuid AND d.car_id = $2::text::uuid";

/// The registration certificates of `owner`'s cars (`None`: everyone's, for staff), newest
/// document first. Only numbers in the stored certificate form count: a `registration`
/// attached before numbers were checked may hold anything.
const REGISTRATIONS: &str = concat!(
    "SELECT r.car_id, r.license_plate, r.certificate_number, r.document_id, r.issued_at, \
            r.created_at \
     FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT c.id::text AS car_id, c.license_plate, d.number AS certificate_number, \
              d.id::text AS document_id, to_char(d.issued_at, 'YYYY-MM-DD') AS issued_at, ",
    api::rfc3339!("d.created_at"),
    " AS created_at, d.created_at AS sort_at, d.id AS sort_id \
       FROM cars.documents AS d JOIN cars.cars AS c ON c.id = d.car_id \
       WHERE d.kind = 'registration' \
         AND d.number ~ '^[0-9]{2} [0-9А-ЯЁ]{2} [0-9]{6}$' \
         AND ($1::text IS NULL OR c.owner_id = $1::text::uuid) \
         AND ($2::text IS NULL \
              OR (d.created_at, d.id) < ($2::text::timestamptz, $3::text::uuid)) \
       ORDER BY d.created_at DESC, d.id DESC \
       LIMIT $4::int8\
     ) AS r ON true \
     ORDER BY r.sort_at DESC, r.sort_id DESC"
);

/// Attaches `document` to the car `car_id` (whose access the caller already proved).
pub fn insert_document(
    db: &Connection,
    car_id: Uuid,
    document: &NewDocument,
) -> Result<Document, ApiError> {
    let date = |date: chrono::NaiveDate| date.format("%Y-%m-%d").to_string();
    let file = document.file.as_ref();
    let params = [
        car_id.to_string().into(),
        document.kind.as_str().to_owned().into(),
        document.number.clone().into(),
        date(document.issued_at).into(),
        db::text_or_null(document.expires_at.map(date)),
        db::text_or_null(file.map(|f| f.name.clone())),
        db::text_or_null(file.map(|f| f.content_type.clone())),
        file.map_or(ParameterValue::DbNull, |f| {
            ParameterValue::Binary(f.bytes.clone())
        }),
    ];
    document_from_row(&db::one_row(db::query(db, INSERT_DOCUMENT, &params)?)?)
}

/// One page of registration certificates (see [`REGISTRATIONS`]).
pub fn registrations(
    db: &Connection,
    owner: Option<Uuid>,
    page: &Page,
) -> Result<Vec<Registration>, ApiError> {
    let params = db::paged(vec![db::text_or_null(owner.map(|id| id.to_string()))], page);
    let rows = db::query(db, REGISTRATIONS, &params)?;
    db::list(rows, "document_id", |row| {
        Ok(Registration {
            car_id: row.uuid("car_id")?,
            license_plate: row.get("license_plate")?,
            certificate_number: row.get("certificate_number")?,
            document_id: row.uuid("document_id")?,
            issued_at: row.parse("issued_at", |text| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
            })?,
            created_at: row.timestamp("created_at")?,
        })
    })
}

pub fn documents(db: &Connection, car_id: Uuid) -> Result<Vec<Document>, ApiError> {
    let rows = db::query(db, DOCUMENTS, &[car_id.to_string().into()])?;
    db::list(rows, "id", document_from_row)
}

/// The scan of document `id` of car `car_id`: `None` when there is no such document,
/// `Some(None)` when it has no scan.
pub fn document_file(
    db: &Connection,
    car_id: Uuid,
    id: Uuid,
) -> Result<Option<Option<File>>, ApiError> {
    let params = [id.to_string().into(), car_id.to_string().into()];
    db::lookup(db, DOCUMENT_FILE, &params, |row| {
        if row.is_null("file_bytes")? {
            return Ok(None);
        }
        Ok(Some(File {
            name: row.get("file_name")?,
            content_type: row.get("file_content_type")?,
            bytes: row.get("file_bytes")?,
        }))
    })
}

/// The document in `row`.
fn document_from_row(row: &Row) -> Result<Document, ApiError> {
    let date = |column: &str| {
        row.parse(column, |text| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
        })
    };
    let expires_at = if row.is_null("expires_at")? {
        None
    } else {
        Some(date("expires_at")?)
    };
    let file = if row.is_null("file_name")? {
        None
    } else {
        Some(FileInfo {
            name: row.get("file_name")?,
            content_type: row.get("file_content_type")?,
            size_bytes: row.get("file_size")?,
        })
    };
    Ok(Document {
        id: row.uuid("id")?,
        car_id: row.uuid("car_id")?,
        kind: row.parse("kind", |text| {
            DocumentKind::parse(text).ok_or_else(|| format!("unknown kind `{text}`"))
        })?,
        number: row.get("number")?,
        issued_at: date("issued_at")?,
        expires_at,
        file,
        created_at: row.timestamp("created_at")?,
    })
}
