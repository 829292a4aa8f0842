//! `payments.*` in PostgreSQL (migrations/0009_payments.sql, 0013_payment_status.sql,
//! 0018_bonus_payments.sql, 0019_refunds.sql), one statement per intent. Every statement returns at least one row (Spin 4.0.2 hangs on an
//! empty `pg3` result, docs/spin-compatibility.md): lookups run through [`db::lookup`], the
//! list LEFT JOINs onto `(SELECT 1)`. Amounts travel as int8 kopecks, uuids as text.

use api::db::{self, Row};
use api::money::Money;
use api::query::Cursor;
use api::ApiError;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{
    IdempotencyKey, NewPayment, Payment, PaymentMethod, PaymentStatus, Refund, RefundEvent,
    SignedEvent, Target, PENDING_LEASE_SECONDS,
};

/// The columns of a payment, read from the relation aliased `p`.
macro_rules! payment_columns {
    () => {
        concat!(
            "p.id::text AS id, p.order_id::text AS order_id, p.fine_id::text AS fine_id, \
             p.user_id::text AS user_id, p.amount_kopecks, p.bonus_kopecks, p.method, \
             p.status, ",
            api::rfc3339!("p.created_at"),
            " AS created_at"
        )
    };
}

/// Claims the payment of an order (`$1` in the column `order_id`) or a fine: a new
/// `pending` row, or the order's `pending` row whose claim outlived the lease (`$5` seconds),
/// taken over with its id (and its amount, method and bonuses, which its earlier attempt may
/// have acted on). A live payment (pending within its lease, or succeeded) wins the unique
/// index and nothing is returned. `attempt` is the claim's time in microseconds.
macro_rules! claim {
    ($column:literal) => {
        concat!(
            "INSERT INTO payments.payments AS p (",
            $column,
            ", user_id, amount_kopecks, method, status, bonus_kopecks) \
             VALUES ($1::text::uuid, $2::text::uuid, $3::int8, $4::text, 'pending', $6::int8) \
             ON CONFLICT (",
            $column,
            ") WHERE status IN ('pending', 'succeeded') \
             DO UPDATE SET claimed_at = now() \
             WHERE p.status = 'pending' \
               AND p.claimed_at < now() - $5::int8 * interval '1 second' \
             RETURNING ",
            payment_columns!(),
            ", ",
            api::rfc3339!("p.claimed_at"),
            " AS claimed_at, (extract(epoch FROM p.claimed_at) * 1000000)::int8 AS attempt"
        )
    };
}

const CLAIM_ORDER: &str = claim!("order_id");
const CLAIM_FINE: &str = claim!("fine_id");

/// The payment that holds an order (`$1`) or a fine (`$2`): pending or succeeded.
const LIVE: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payments.payments AS p \
     WHERE (p.order_id = $1::text::uuid OR p.fine_id = $2::text::uuid) \
       AND p.status IN ('pending', 'succeeded')"
);

/// Moves a claimed payment on with the processor's verdict (`$2`), only from `pending`, so
/// of two attempts at one payment (a claim taken over) one records it.
const SETTLE: &str = concat!(
    "UPDATE payments.payments AS p SET status = $2::text \
     WHERE p.id = $1::text::uuid AND p.status = 'pending' RETURNING ",
    payment_columns!()
);

/// Gives a claim up before anything was charged (the order turned out cancelled, or could
/// not be checked): the row goes, as if never claimed, unless another attempt has taken the
/// claim over meanwhile (`claimed_at` moved).
const RELEASE: &str = "DELETE FROM payments.payments \
     WHERE id = $1::text::uuid AND status = 'pending' AND claimed_at = $2::text::timestamptz";

/// A succeeded payment's event (`$3`), with its signed body (`$4`, `$5`, migrations/
/// 0011_signed_events.sql), for the part paid in money. `$2` marks it sent at once when
/// another transport than the relay carries it.
const INSERT_EVENT: &str = "INSERT INTO payments.outbox \
       (event_id, payment_id, order_id, user_id, amount_kopecks, body, signature, sent_at, \
        kind) \
     SELECT $3::text::uuid, id, order_id, user_id, amount_kopecks - bonus_kopecks, \
       $4::text, $5::text, \
       CASE WHEN $2::bool THEN now() END, $6::text \
     FROM payments.payments WHERE id = $1::text::uuid AND order_id IS NOT NULL \
     RETURNING event_id::text AS event_id";

/// Moves a succeeded payment of an order to `refunded`; nothing when it is not (any more)
/// succeeded.
const MARK_REFUNDED: &str = concat!(
    "UPDATE payments.payments AS p SET status = 'refunded' \
     WHERE p.id = $1::text::uuid AND p.status = 'succeeded' AND p.order_id IS NOT NULL \
     RETURNING ",
    payment_columns!()
);

/// A payment's attempt (see [`claim!`]): the one that holds its bonuses' debit.
const ATTEMPT: &str = "SELECT (extract(epoch FROM p.claimed_at) * 1000000)::int8 AS attempt \
     FROM payments.payments AS p WHERE p.id = $1::text::uuid";

/// The columns of a refund, read from the relation aliased `r`.
macro_rules! refund_columns {
    () => {
        concat!(
            "r.payment_id::text AS payment_id, r.order_id::text AS order_id, \
             r.user_id::text AS user_id, r.amount_kopecks, r.bonus_kopecks, \
             r.bonuses_returned, ",
            api::rfc3339!("r.created_at"),
            " AS created_at"
        )
    };
}

const INSERT_REFUND: &str = concat!(
    "INSERT INTO payments.refunds AS r \
       (payment_id, order_id, user_id, amount_kopecks, bonus_kopecks, bonuses_returned) \
     VALUES ($1::text::uuid, $2::text::uuid, $3::text::uuid, $4::int8, $5::int8, $6::bool) \
     RETURNING ",
    refund_columns!()
);

const FIND_REFUND: &str = concat!(
    "SELECT ",
    refund_columns!(),
    " FROM payments.refunds AS r WHERE r.payment_id = $1::text::uuid"
);

const BONUSES_RETURNED: &str = concat!(
    "UPDATE payments.refunds AS r SET bonuses_returned = true \
     WHERE r.payment_id = $1::text::uuid RETURNING ",
    refund_columns!()
);

/// The id of a payment's `payment_succeeded` event: what its refund's event reverses.
const SUCCEEDED_EVENT: &str = "SELECT o.event_id::text AS event_id FROM payments.outbox AS o \
     WHERE o.payment_id = $1::text::uuid AND o.kind = 'payment_succeeded'";

/// A refund's signed `payment_refunded` event (`$3`, `$4`, `$5`) for the money part (`$6`).
const INSERT_REFUND_EVENT: &str = "INSERT INTO payments.outbox \
       (event_id, payment_id, order_id, user_id, amount_kopecks, body, signature, sent_at, \
        kind) \
     SELECT $3::text::uuid, id, order_id, user_id, $6::int8, $4::text, $5::text, \
       CASE WHEN $2::bool THEN now() END, 'payment_refunded' \
     FROM payments.payments WHERE id = $1::text::uuid AND order_id IS NOT NULL \
     RETURNING event_id::text AS event_id";

const FIND: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM payments.payments AS p WHERE p.id = $1::text::uuid"
);

/// A user's payments (or everyone's, for staff: `$1` NULL), optionally of one order (`$2`),
/// one fine (`$6`), in some statuses (`$7`, comma-separated).
const LIST: &str = concat!(
    "SELECT ",
    payment_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM payments.payments AS inner_p \
       WHERE ($1::text IS NULL OR inner_p.user_id = $1::text::uuid) \
         AND ($2::text IS NULL OR inner_p.order_id = $2::text::uuid) \
         AND ($6::text IS NULL OR inner_p.fine_id = $6::text::uuid) \
         AND ($7::text IS NULL OR inner_p.status = ANY (string_to_array($7::text, ','))) \
         AND ($3::text IS NULL \
              OR (inner_p.created_at, inner_p.id) < ($3::text::timestamptz, $4::text::uuid)) \
       ORDER BY inner_p.created_at DESC, inner_p.id DESC LIMIT $5::int8\
     ) AS p ON true ORDER BY p.created_at DESC, p.id DESC"
);

/// Takes the key for this request; waits while another transaction holds it.
const CLAIM_KEY: &str = "WITH claimed AS (\
       INSERT INTO payments.idempotency_keys (user_id, key, request_hash) \
       VALUES ($1::text::uuid, $2::text, $3::text) ON CONFLICT DO NOTHING RETURNING key\
     ) SELECT count(*) AS claimed FROM claimed";

/// The key's request and answer, and whether an unanswered key outlived the lease (`$3`).
const STORED_ANSWER: &str = "SELECT k.request_hash, k.status, k.body, \
       k.claimed_at < now() - $3::int8 * interval '1 second' AS stale \
     FROM payments.idempotency_keys AS k WHERE k.user_id = $1::text::uuid AND k.key = $2::text";

const SAVE_ANSWER: &str =
    "UPDATE payments.idempotency_keys SET status = $3::int4, body = $4::text \
     WHERE user_id = $1::text::uuid AND key = $2::text";

/// Frees a key: its request was refused before anything was charged, or (with `$3`) it was
/// left unanswered longer than the lease by a request that died.
const DROP_KEY: &str = "DELETE FROM payments.idempotency_keys \
     WHERE user_id = $1::text::uuid AND key = $2::text AND status IS NULL \
       AND ($3::int8 IS NULL OR claimed_at < now() - $3::int8 * interval '1 second')";

/// Wakes the relays listening on this channel once the transaction commits (PostgreSQL
/// delivers NOTIFY at commit and drops it on rollback).
const WAKE_RELAY: &str = "NOTIFY payments_outbox";

fn target_params(target: Target) -> [spin_sdk::pg3::ParameterValue; 2] {
    match target {
        Target::Order(id) => [id.to_string().into(), db::text_or_null(None)],
        Target::Fine(id) => [db::text_or_null(None), id.to_string().into()],
    }
}

/// A `pending` payment this request claimed, and when: the claim is its own while
/// `claimed_at` is unchanged.
pub struct Claimed {
    pub payment: Payment,
    claimed_at: String,
    /// `claimed_at` in microseconds since the epoch: what bonus-service knows this attempt by.
    pub attempt: i64,
}

/// The new `pending` payment of `payment`'s order or fine for `user_id` (or the stale claim
/// taken over), or `None` when a live payment holds it.
pub fn claim(
    db: &Connection,
    payment: &NewPayment,
    user_id: Uuid,
    amount: Money,
) -> Result<Option<Claimed>, ApiError> {
    let (sql, id) = match payment.target {
        Target::Order(id) => (CLAIM_ORDER, id),
        Target::Fine(id) => (CLAIM_FINE, id),
    };
    let params = [
        id.to_string().into(),
        user_id.to_string().into(),
        amount.kopecks().into(),
        payment.method.as_str().to_owned().into(),
        PENDING_LEASE_SECONDS.into(),
        payment.bonus.kopecks().into(),
    ];
    db::lookup(db, sql, &params, |row| {
        Ok(Claimed {
            payment: payment_from_row(row)?,
            claimed_at: row.get("claimed_at")?,
            attempt: row.get("attempt")?,
        })
    })
}

/// The payment holding `target` (pending or succeeded), if any.
pub fn live(db: &Connection, target: Target) -> Result<Option<Payment>, ApiError> {
    db::lookup(db, LIVE, &target_params(target), payment_from_row)
}

/// Records the processor's verdict on a claimed payment; `None` when it is no longer
/// pending (another attempt at the same payment recorded it first).
pub fn settle(
    db: &Connection,
    id: Uuid,
    verdict: PaymentStatus,
) -> Result<Option<Payment>, ApiError> {
    let params = [id.to_string().into(), verdict.as_str().to_owned().into()];
    db::lookup(db, SETTLE, &params, payment_from_row)
}

/// Gives up a claim that charged nothing.
pub fn release(db: &Connection, claimed: &Claimed) -> Result<(), ApiError> {
    let params = [
        claimed.payment.id.to_string().into(),
        claimed.claimed_at.clone().into(),
    ];
    db::execute(db, RELEASE, &params).map(drop)
}

/// Writes `event`, the signed `payment_succeeded` event of `paid` (an order's payment), to
/// the outbox in the caller's transaction. With `relayed`, the relay is woken to publish it;
/// otherwise it is recorded as sent.
pub fn write_event(
    db: &Connection,
    paid: &Payment,
    event: &SignedEvent,
    relayed: bool,
) -> Result<(), ApiError> {
    let params = [
        paid.id.to_string().into(),
        (!relayed).into(),
        event.event.event_id.to_string().into(),
        event.body.clone().into(),
        event.signature.clone().into(),
        "payment_succeeded".to_owned().into(),
    ];
    if db::lookup(db, INSERT_EVENT, &params, |_| Ok(()))?.is_none() {
        return Err(ApiError::internal("no event was written for the payment")
            .with_detail(format!("payment {} pays no order", paid.id)));
    }
    wake_relay_on(db, relayed);
    Ok(())
}

/// A lost wake-up costs the relay one poll interval, never the event: the row is there
/// whatever happens to the NOTIFY.
fn wake_relay_on(db: &Connection, relayed: bool) {
    if relayed {
        if let Err(error) = db::execute(db, WAKE_RELAY, &[]) {
            eprintln!(
                "NOTIFY payments_outbox failed; the relay's polling picks the event up: {error}"
            );
        }
    }
}

/// Marks `id` refunded if it is a succeeded order payment; `None` otherwise (refunded by an
/// earlier or concurrent request, which then holds the row until it commits).
pub fn mark_refunded(db: &Connection, id: Uuid) -> Result<Option<Payment>, ApiError> {
    db::lookup(
        db,
        MARK_REFUNDED,
        &[id.to_string().into()],
        payment_from_row,
    )
}

/// The claim time of payment `id` in microseconds: what bonus-service knows its debit by.
pub fn attempt(db: &Connection, id: Uuid) -> Result<i64, ApiError> {
    db::lookup(db, ATTEMPT, &[id.to_string().into()], |row| {
        row.get("attempt")
    })?
    .ok_or_else(|| ApiError::internal("a refunded payment vanished"))
}

/// Records the refund of `refunded` (its bonuses returned already when it has none).
pub fn insert_refund(db: &Connection, refunded: &Payment) -> Result<Refund, ApiError> {
    let order_id = refunded
        .order_id
        .ok_or_else(|| ApiError::internal("a refund of a payment that pays no order"))?;
    let params = [
        refunded.id.to_string().into(),
        order_id.to_string().into(),
        refunded.user_id.to_string().into(),
        refunded.charged().kopecks().into(),
        refunded.bonus_amount.kopecks().into(),
        (refunded.bonus_amount == Money::ZERO).into(),
    ];
    db::one_row(db::query(db, INSERT_REFUND, &params)?).and_then(|row| refund_from_row(&row))
}

pub fn find_refund(db: &Connection, payment_id: Uuid) -> Result<Option<Refund>, ApiError> {
    db::lookup(
        db,
        FIND_REFUND,
        &[payment_id.to_string().into()],
        refund_from_row,
    )
}

/// Notes that bonus-service confirmed the refund's bonuses back.
pub fn bonuses_returned(db: &Connection, payment_id: Uuid) -> Result<Option<Refund>, ApiError> {
    db::lookup(
        db,
        BONUSES_RETURNED,
        &[payment_id.to_string().into()],
        refund_from_row,
    )
}

/// The id of the payment's `payment_succeeded` event, if it had one (a payment made in
/// bonuses alone has none, and accrued nothing).
pub fn succeeded_event(db: &Connection, payment_id: Uuid) -> Result<Option<Uuid>, ApiError> {
    db::lookup(
        db,
        SUCCEEDED_EVENT,
        &[payment_id.to_string().into()],
        |row| row.uuid("event_id"),
    )
}

/// Writes the refund's signed `payment_refunded` event to the outbox in the caller's
/// transaction, like [`write_event`].
pub fn write_refund_event(
    db: &Connection,
    event: &SignedEvent<RefundEvent>,
    relayed: bool,
) -> Result<(), ApiError> {
    let params = [
        event.event.payment_id.to_string().into(),
        (!relayed).into(),
        event.event.event_id.to_string().into(),
        event.body.clone().into(),
        event.signature.clone().into(),
        event.event.amount.kopecks().into(),
    ];
    if db::lookup(db, INSERT_REFUND_EVENT, &params, |_| Ok(()))?.is_none() {
        return Err(ApiError::internal("no event was written for the refund")
            .with_detail(format!("payment {}", event.event.payment_id)));
    }
    wake_relay_on(db, relayed);
    Ok(())
}

fn refund_from_row(row: &Row) -> Result<Refund, ApiError> {
    Ok(Refund {
        payment_id: row.uuid("payment_id")?,
        order_id: row.uuid("order_id")?,
        user_id: row.uuid("user_id")?,
        amount: money(row, "amount_kopecks")?,
        bonus_amount: money(row, "bonus_kopecks")?,
        bonuses_returned: row.get("bonuses_returned")?,
        created_at: row.timestamp("created_at")?,
    })
}

fn money(row: &Row, column: &str) -> Result<Money, ApiError> {
    let kopecks: i64 = row.get(column)?;
    Money::from_kopecks(kopecks).ok_or_else(|| db::unexpected(column, "out of range"))
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Payment>, ApiError> {
    db::lookup(db, FIND, &[id.to_string().into()], payment_from_row)
}

/// What a list is narrowed to, besides whose payments.
#[derive(Debug, Default)]
pub struct ListFilter {
    pub order: Option<Uuid>,
    pub fine: Option<Uuid>,
    pub statuses: Option<Vec<PaymentStatus>>,
}

pub fn list(
    db: &Connection,
    user: Option<Uuid>,
    filter: &ListFilter,
    after: Option<&Cursor>,
    fetch: i64,
) -> Result<Vec<Payment>, ApiError> {
    let statuses = filter.statuses.as_ref().map(|statuses| {
        statuses
            .iter()
            .map(|status| status.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    let params = [
        db::text_or_null(user.map(|id| id.to_string())),
        db::text_or_null(filter.order.map(|id| id.to_string())),
        db::text_or_null(after.map(Cursor::created_at_sql)),
        db::text_or_null(after.map(|cursor| cursor.id.to_string())),
        fetch.into(),
        db::text_or_null(filter.fine.map(|id| id.to_string())),
        db::text_or_null(statuses),
    ];
    db::list(db::query(db, LIST, &params)?, "id", payment_from_row)
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
    /// Status and JSON body; `None` while the first request runs (or if it died).
    pub answer: Option<(u16, String)>,
    /// Unanswered for longer than the lease: its request died.
    pub stale: bool,
}

pub fn stored_answer(
    db: &Connection,
    user: Uuid,
    key: &IdempotencyKey,
) -> Result<Option<StoredAnswer>, ApiError> {
    let params = [
        user.to_string().into(),
        key.as_str().to_owned().into(),
        PENDING_LEASE_SECONDS.into(),
    ];
    db::lookup(db, STORED_ANSWER, &params, |row| {
        let answer = if row.is_null("status")? {
            None
        } else {
            let status: i32 = row.get("status")?;
            Some((status as u16, row.get("body")?))
        };
        Ok(StoredAnswer {
            fingerprint: row.get("request_hash")?,
            answer,
            stale: row.get("stale")?,
        })
    })
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

/// Frees an unanswered key: always (`stale_only` false: its own request gives it up), or
/// only once it has outlived the lease (its request died).
pub fn drop_key(
    db: &Connection,
    user: Uuid,
    key: &IdempotencyKey,
    stale_only: bool,
) -> Result<(), ApiError> {
    let lease = if stale_only {
        PENDING_LEASE_SECONDS.into()
    } else {
        spin_sdk::pg3::ParameterValue::DbNull
    };
    let params = [
        user.to_string().into(),
        key.as_str().to_owned().into(),
        lease,
    ];
    db::execute(db, DROP_KEY, &params).map(drop)
}

fn optional_uuid(row: &Row, column: &str) -> Result<Option<Uuid>, ApiError> {
    if row.is_null(column)? {
        Ok(None)
    } else {
        row.uuid(column).map(Some)
    }
}

/// The payment in `row`.
fn payment_from_row(row: &Row) -> Result<Payment, ApiError> {
    let kopecks: i64 = row.get("amount_kopecks")?;
    let bonus_kopecks: i64 = row.get("bonus_kopecks")?;
    Ok(Payment {
        id: row.uuid("id")?,
        order_id: optional_uuid(row, "order_id")?,
        fine_id: optional_uuid(row, "fine_id")?,
        user_id: row.uuid("user_id")?,
        amount: Money::from_kopecks(kopecks)
            .ok_or_else(|| db::unexpected("amount_kopecks", "out of range"))?,
        bonus_amount: Money::from_kopecks(bonus_kopecks)
            .ok_or_else(|| db::unexpected("bonus_kopecks", "out of range"))?,
        payment_method: row.parse("method", |text| {
            PaymentMethod::parse(text).ok_or_else(|| format!("unknown method `{text}`"))
        })?,
        status: row.parse("status", |text| {
            PaymentStatus::parse(text).ok_or_else(|| format!("unknown status `{text}`"))
        })?,
        created_at: row.timestamp("created_at")?,
    })
}
