//! `payments.*` in PostgreSQL (migrations/0009_payments.sql), one statement per intent.
//! Every statement returns at least one row (Spin 4.0.2 hangs on an empty `pg3` result,
//! see car-service's store); amounts travel as int8 kopecks, uuids as text.

use api::db::{self, Row};
use api::money::Money;
use api::query::Cursor;
use api::ApiError;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{IdempotencyKey, NewPayment, Payment, PaymentMethod};

/// The columns of a payment, read from the relation aliased `p`.
macro_rules! payment_columns {
    () => {
        concat!(
            "p.id::text AS id, p.order_id::text AS order_id, p.user_id::text AS user_id, \
             p.amount_kopecks, p.method, ",
            api::rfc3339!("p.created_at"),
            " AS created_at"
        )
    };
}

/// The payment and its outbox event in one statement: both exist or neither. The unique
/// index on `order_id` turns a second payment of an order into an all-NULL row. `$5` marks
/// the event sent at once when another transport than the relay carries it.
const INSERT: &str = concat!(
    "WITH p AS (\
       INSERT INTO payments.payments (order_id, user_id, amount_kopecks, method) \
       VALUES ($1::text::uuid, $2::text::uuid, $3::int8, $4::text) \
       ON CONFLICT (order_id) DO NOTHING RETURNING *\
     ), event AS (\
       INSERT INTO payments.outbox (payment_id, order_id, user_id, amount_kopecks, sent_at) \
       SELECT id, order_id, user_id, amount_kopecks, CASE WHEN $5::bool THEN now() END FROM p \
       RETURNING event_id\
     ) SELECT ",
    payment_columns!(),
    ", event.event_id::text AS event_id FROM (SELECT 1) AS one LEFT JOIN p ON true \
     LEFT JOIN event ON true"
);

const FIND: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN payments.payments AS p ON p.id = $1::text::uuid"
);

/// A user's payments (or everyone's, for staff: `$1` NULL), optionally of one order.
const LIST: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM payments.payments AS inner_p \
       WHERE ($1::text IS NULL OR inner_p.user_id = $1::text::uuid) \
         AND ($2::text IS NULL OR inner_p.order_id = $2::text::uuid) \
         AND ($3::text IS NULL \
              OR (inner_p.created_at, inner_p.id) < ($3::text::timestamptz, $4::text::uuid)) \
       ORDER BY inner_p.created_at DESC, inner_p.id DESC LIMIT $5::int8\
     ) AS p ON true ORDER BY p.created_at DESC, p.id DESC"
);

/// Takes the key for this request; waits while another transaction holds it.
const CLAIM_KEY: &str = "WITH claimed AS (\
       INSERT INTO payments.idempotency_keys (user_id, key, request_hash) \
       VALUES ($1::text::uuid, $2::text, $3::text) ON CONFLICT DO NOTHING RETURNING key\
     ) SELECT count(claimed.key) AS claimed FROM (SELECT 1) AS one LEFT JOIN claimed ON true";

const STORED_ANSWER: &str = "SELECT k.request_hash, k.status, k.body \
     FROM (SELECT 1) AS one LEFT JOIN payments.idempotency_keys AS k \
       ON k.user_id = $1::text::uuid AND k.key = $2::text";

const SAVE_ANSWER: &str =
    "UPDATE payments.idempotency_keys SET status = $3::int4, body = $4::text \
     WHERE user_id = $1::text::uuid AND key = $2::text";

/// Wakes the relays listening on this channel once the transaction commits (PostgreSQL
/// delivers NOTIFY at commit and drops it on rollback).
const WAKE_RELAY: &str = "NOTIFY payments_outbox";

/// Stores the payment and its event, or `None` when the order is paid already. With
/// `relayed`, the relay is woken to publish the event; otherwise it is recorded as sent.
pub fn insert(
    db: &Connection,
    payment: &NewPayment,
    user_id: Uuid,
    amount: Money,
    relayed: bool,
) -> Result<Option<(Payment, Uuid)>, ApiError> {
    let params = [
        payment.order_id.to_string().into(),
        user_id.to_string().into(),
        amount.kopecks().into(),
        payment.method.as_str().to_owned().into(),
        (!relayed).into(),
    ];
    let row = db::one_row(db::query(db, INSERT, &params)?)?;
    let Some(stored) = payment_from_row(&row)? else {
        return Ok(None);
    };
    // A lost wake-up costs the relay one poll interval, never the payment: the row is
    // there whatever happens to the NOTIFY.
    if relayed {
        if let Err(error) = db::execute(db, WAKE_RELAY, &[]) {
            eprintln!(
                "NOTIFY payments_outbox failed; the relay's polling picks the event up: {error}"
            );
        }
    }
    Ok(Some((stored, row.uuid("event_id")?)))
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Payment>, ApiError> {
    let row = db::one_row(db::query(db, FIND, &[id.to_string().into()])?)?;
    payment_from_row(&row)
}

pub fn list(
    db: &Connection,
    user: Option<Uuid>,
    order: Option<Uuid>,
    after: Option<&Cursor>,
    fetch: i64,
) -> Result<Vec<Payment>, ApiError> {
    let params = [
        db::text_or_null(user.map(|id| id.to_string())),
        db::text_or_null(order.map(|id| id.to_string())),
        db::text_or_null(after.map(Cursor::created_at_sql)),
        db::text_or_null(after.map(|cursor| cursor.id.to_string())),
        fetch.into(),
    ];
    let mut payments = Vec::new();
    for row in db::rows(db::query(db, LIST, &params)?) {
        payments.extend(payment_from_row(&row)?);
    }
    Ok(payments)
}

/// Whether this transaction now holds `key` (false: another request used it first).
pub fn claim_key(
    db: &Connection,
    user: Uuid,
    key: &IdempotencyKey,
    fingerprint: &str,
) -> Result<bool, ApiError> {
    let params = [
        user.to_string().into(),
        key.as_str().to_owned().into(),
        fingerprint.to_owned().into(),
    ];
    let row = db::one_row(db::query(db, CLAIM_KEY, &params)?)?;
    Ok(row.get::<i64>("claimed")? == 1)
}

/// What the first request with a key asked for and got.
pub struct StoredAnswer {
    pub fingerprint: String,
    /// Status and JSON body; `None` only if the first request never finished.
    pub answer: Option<(u16, String)>,
}

pub fn stored_answer(
    db: &Connection,
    user: Uuid,
    key: &IdempotencyKey,
) -> Result<Option<StoredAnswer>, ApiError> {
    let params = [user.to_string().into(), key.as_str().to_owned().into()];
    let row = db::one_row(db::query(db, STORED_ANSWER, &params)?)?;
    if row.is_null("request_hash")? {
        return Ok(None);
    }
    let answer = if row.is_null("status")? {
        None
    } else {
        let status: i32 = row.get("status")?;
        Some((status as u16, row.get("body")?))
    };
    Ok(Some(StoredAnswer {
        fingerprint: row.get("request_hash")?,
        answer,
    }))
}

pub fn save_answer(
    db: &Connection,
    user: Uuid,
    key: &IdempotencyKey,
    status: u16,
    body: &str,
) -> Result<(), ApiError> {
    let params = [
        user.to_string().into(),
        key.as_str().to_owned().into(),
        i32::from(status).into(),
        body.to_owned().into(),
    ];
    db::execute(db, SAVE_ANSWER, &params).map(drop)
}

fn payment_from_row(row: &Row) -> Result<Option<Payment>, ApiError> {
    if row.is_null("id")? {
        return Ok(None);
    }
    let kopecks: i64 = row.get("amount_kopecks")?;
    Ok(Some(Payment {
        id: row.uuid("id")?,
        order_id: row.uuid("order_id")?,
        user_id: row.uuid("user_id")?,
        amount: Money::from_kopecks(kopecks)
            .ok_or_else(|| db::unexpected("amount_kopecks", "out of range"))?,
        payment_method: row.parse("method", |text| {
            PaymentMethod::parse(text).ok_or_else(|| format!("unknown method `{text}`"))
        })?,
        status: "succeeded",
        created_at: row.timestamp("created_at")?,
    }))
}
