//! `fines.fines` in PostgreSQL (migrations/0007_fines.sql, 0012_fines_certificates.sql),
//! one statement per intent. Who may see a fine is `domain::Visibility`'s rule, applied here
//! in SQL for lists and in Rust for one fine.
//!
//! Every statement returns at least one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (docs/spin-compatibility.md): lookups run through [`db::lookup`], and lists
//! LEFT JOIN onto `(SELECT 1)` and drop the all-NULL row. UUIDs and timestamps travel as
//! text (`$1::text::uuid`, `id::text`, RFC 3339 in UTC formatted by Postgres). pg3 has no
//! array parameter, so a set of plates travels as one JSON array (`$1::text::jsonb`).

use std::collections::BTreeSet;

use api::db::{self, Row};
use api::money::Money;
use api::ApiError;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{Fine, LicensePlate, ProvenPlate};

/// The columns of a fine, read from the relation aliased `f`.
macro_rules! fine_columns {
    () => {
        concat!(
            "f.id::text AS id, f.license_plate, f.certificate_number, f.amount, f.reason, ",
            api::rfc3339!("f.issued_at"),
            " AS issued_at, ",
            api::rfc3339!("f.paid_at"),
            " AS paid_at, f.payment_id::text AS payment_id"
        )
    };
}

/// The unpaid fines matching `$condition` (on the relation `inner_f`), newest first. The LEFT
/// JOIN keeps the one-row shape when there are none (an all-NULL row, dropped below).
macro_rules! unpaid_where {
    ($condition:literal) => {
        concat!(
            "SELECT ",
            fine_columns!(),
            " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
               SELECT * FROM fines.fines AS inner_f \
               WHERE inner_f.paid_at IS NULL AND ",
            $condition,
            ") AS f ON true \
             ORDER BY f.issued_at DESC, f.id DESC"
        )
    };
}

/// Staff checking a plate: the fines on it, whatever their certificate.
const UNPAID_ON_PLATE: &str = unpaid_where!("inner_f.license_plate = $1::text");

/// A caller's check: the fines on the plates in $1 (`[[plate, certificate number], ...]`),
/// each with its certificate. A fine without a certificate number matches no pair.
const UNPAID_PROVEN: &str = unpaid_where!(
    "(inner_f.license_plate, inner_f.certificate_number) IN (\
       SELECT pair ->> 0, pair ->> 1 FROM jsonb_array_elements($1::text::jsonb) AS pair)"
);

/// One fine, paid or not; whether the caller may see it is decided by the caller.
const FIND: &str = concat!(
    "SELECT ",
    fine_columns!(),
    " FROM fines.fines AS f WHERE f.id = $1::text::uuid"
);

/// Marks fine $1 paid by user $2 with payment-service's payment $3, if still unpaid. The
/// guard is in the UPDATE itself, so of two concurrent requests the second finds `paid_at`
/// set once the first commits and changes nothing.
const MARK_PAID: &str = concat!(
    "UPDATE fines.fines AS f SET paid_at = now(), paid_by = $2::text::uuid, \
                                 payment_id = $3::text::uuid \
     WHERE f.id = $1::text::uuid AND f.paid_at IS NULL \
     RETURNING ",
    fine_columns!()
);

/// The unpaid fines on `plate`, any certificate (staff), newest first.
pub fn unpaid_on_plate(db: &Connection, plate: &LicensePlate) -> Result<Vec<Fine>, ApiError> {
    let rows = db::query(db, UNPAID_ON_PLATE, &[plate.as_str().to_owned().into()])?;
    db::list(rows, "id", fine_from_row)
}

/// The unpaid fines on the `proven` plates, each with its certificate, newest first.
pub fn unpaid_proven(
    db: &Connection,
    proven: &BTreeSet<ProvenPlate>,
) -> Result<Vec<Fine>, ApiError> {
    let pairs = serde_json::Value::from_iter(
        proven
            .iter()
            .map(|p| serde_json::json!([p.plate.as_str(), p.certificate.as_str()])),
    );
    let rows = db::query(db, UNPAID_PROVEN, &[pairs.to_string().into()])?;
    db::list(rows, "id", fine_from_row)
}

/// Fine `id`, if it exists.
pub fn find(db: &Connection, id: Uuid) -> Result<Option<Fine>, ApiError> {
    db::lookup(db, FIND, &[id.to_string().into()], fine_from_row)
}

/// Records that `payer` paid fine `id` with payment-service's `payment`: the fine, or `None`
/// when it was paid already (by a concurrent request, or before) or is gone.
pub fn mark_paid(
    db: &Connection,
    id: Uuid,
    payer: Uuid,
    payment: Uuid,
) -> Result<Option<Fine>, ApiError> {
    let params = [
        id.to_string().into(),
        payer.to_string().into(),
        payment.to_string().into(),
    ];
    db::lookup(db, MARK_PAID, &params, fine_from_row)
}

/// The fine in `row`.
fn fine_from_row(row: &Row) -> Result<Fine, ApiError> {
    let kopecks: i64 = row.get("amount")?;
    Ok(Fine {
        id: row.uuid("id")?,
        license_plate: row.get("license_plate")?,
        certificate_number: if row.is_null("certificate_number")? {
            None
        } else {
            Some(row.get("certificate_number")?)
        },
        amount: Money::from_kopecks(kopecks)
            .ok_or_else(|| db::unexpected("amount", format!("{kopecks} kopecks is no amount")))?,
        reason: row.get("reason")?,
        issued_at: row.timestamp("issued_at")?,
        paid_at: if row.is_null("paid_at")? {
            None
        } else {
            Some(row.timestamp("paid_at")?)
        },
        payment_id: if row.is_null("payment_id")? {
            None
        } else {
            Some(row.uuid("payment_id")?)
        },
    })
}
