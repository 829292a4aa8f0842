//! `fines.fines` in PostgreSQL (migrations/0007_fines.sql), one statement per intent.
//!
//! Every statement returns at least one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (SPIN_BEHAVIOUR.md): lookups LEFT JOIN onto `(SELECT 1)` and read NULLs as
//! "absent". UUIDs and timestamps travel as text (`$1::text::uuid`, `id::text`, RFC 3339 in
//! UTC formatted by Postgres). pg3 has no array parameter, so a set of plates travels as one
//! JSON array of strings (`$1::text::jsonb`).

use std::collections::BTreeSet;

use api::db::{self, Row};
use api::money::Money;
use api::ApiError;
use spin_sdk::pg3::{Connection, ParameterValue};
use uuid::Uuid;

use crate::domain::{Fine, LicensePlate};

/// The columns of a fine, read from the relation aliased `f`.
macro_rules! fine_columns {
    () => {
        concat!(
            "f.id::text AS id, f.license_plate, f.amount, f.reason, ",
            api::rfc3339!("f.issued_at"),
            " AS issued_at, ",
            api::rfc3339!("f.paid_at"),
            " AS paid_at"
        )
    };
}

/// SQL that holds when `column` is one of the plates in the JSON array bound at `param`,
/// or when `param` is NULL (any plate, for staff).
macro_rules! on_plates {
    ($column:literal, $param:literal) => {
        concat!(
            "(",
            $param,
            "::text IS NULL OR ",
            $column,
            " IN (SELECT jsonb_array_elements_text(",
            $param,
            "::text::jsonb)))"
        )
    };
}

/// The unpaid fines on the plates in $1, newest first. The LEFT JOIN keeps the one-row
/// shape when there are none (an all-NULL row, dropped below).
const UNPAID: &str = concat!(
    "SELECT ",
    fine_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM fines.fines AS inner_f \
       WHERE inner_f.paid_at IS NULL \
         AND inner_f.license_plate IN (SELECT jsonb_array_elements_text($1::text::jsonb))\
     ) AS f ON true \
     ORDER BY f.issued_at DESC, f.id DESC"
);

/// Pays fine $2 for user $3 if it is on one of the plates in $1 (NULL: any) and still
/// unpaid. The guard is in the UPDATE itself, so of two concurrent payments the second
/// finds `paid_at` set once the first commits and changes nothing. `visible` tells an
/// already paid fine (409) from one the caller may not see or that does not exist (404).
const PAY: &str = concat!(
    "WITH paid AS (\
       UPDATE fines.fines SET paid_at = now(), paid_by = $3::text::uuid \
       WHERE id = $2::text::uuid AND paid_at IS NULL AND ",
    on_plates!("license_plate", "$1"),
    " RETURNING *\
     ) \
     SELECT ",
    fine_columns!(),
    ", EXISTS (SELECT 1 FROM fines.fines AS v \
               WHERE v.id = $2::text::uuid AND ",
    on_plates!("v.license_plate", "$1"),
    ") AS visible \
     FROM (SELECT 1) AS one LEFT JOIN paid AS f ON true"
);

/// What a payment did.
#[derive(Debug)]
pub enum Payment {
    Paid(Fine),
    AlreadyPaid,
    NotFound,
}

/// The unpaid fines on `plates`, newest first.
pub fn unpaid(db: &Connection, plates: &BTreeSet<LicensePlate>) -> Result<Vec<Fine>, ApiError> {
    let mut fines = Vec::new();
    for row in db::rows(db::query(db, UNPAID, &[plates_json(Some(plates))])?) {
        fines.extend(fine_from_row(&row)?);
    }
    Ok(fines)
}

/// Marks fine `id` paid by `payer`, if it is on one of `plates` (`None`: any plate, for staff).
pub fn pay(
    db: &Connection,
    id: Uuid,
    payer: Uuid,
    plates: Option<&BTreeSet<LicensePlate>>,
) -> Result<Payment, ApiError> {
    let params = [
        plates_json(plates),
        id.to_string().into(),
        payer.to_string().into(),
    ];
    let row = db::one_row(db::query(db, PAY, &params)?)?;
    Ok(match fine_from_row(&row)? {
        Some(fine) => Payment::Paid(fine),
        None if row.get::<bool>("visible")? => Payment::AlreadyPaid,
        None => Payment::NotFound,
    })
}

/// `["А123БВ799","К456МН178"]`, or SQL NULL for no restriction.
fn plates_json(plates: Option<&BTreeSet<LicensePlate>>) -> ParameterValue {
    db::text_or_null(plates.map(|plates| {
        serde_json::Value::from_iter(plates.iter().map(LicensePlate::as_str)).to_string()
    }))
}

/// The fine in `row`, or `None` when the row is the all-NULL "nothing found" row.
fn fine_from_row(row: &Row) -> Result<Option<Fine>, ApiError> {
    if row.is_null("id")? {
        return Ok(None);
    }
    let kopecks: i64 = row.get("amount")?;
    Ok(Some(Fine {
        id: row.uuid("id")?,
        license_plate: row.get("license_plate")?,
        amount: Money::from_kopecks(kopecks)
            .ok_or_else(|| db::unexpected("amount", format!("{kopecks} kopecks is no amount")))?,
        reason: row.get("reason")?,
        issued_at: row.timestamp("issued_at")?,
        paid_at: if row.is_null("paid_at")? {
            None
        } else {
            Some(row.timestamp("paid_at")?)
        },
    }))
}
