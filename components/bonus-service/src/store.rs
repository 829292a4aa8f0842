//! `bonuses.*` in PostgreSQL (migrations/0010_bonuses.sql, 0018_bonus_payments.sql,
//! 0019_refunds.sql), one
//! statement per intent; the handlers compose them in transactions. Every statement returns
//! at least one row (Spin 4.0.2 hangs on an empty `pg3` result, docs/spin-compatibility.md):
//! lookups run through [`db::lookup`]. Amounts travel as int8 kopecks, uuids as text (`$1::text::uuid`,
//! `id::text`), timestamps as RFC 3339 text.

use api::db::{self, Row};
use api::money::Money;
use api::query::Page;
use api::ApiError;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{
    Entry, EntryKind, LedgerAmount, NewEntry, PaymentDebit, Promocode, PromocodeCode, RefundEvent,
    Reversal, StoredDebit,
};

/// Appends an entry. Only accruals carry an `event_id`, and the unique index on it turns a
/// redelivered event into "nothing appended" (`appended` 0): the insert that loses a race
/// waits for the winner's transaction and then does nothing, so an event counts once.
const APPEND: &str = "WITH added AS (\
       INSERT INTO bonuses.ledger \
         (user_id, kind, amount_kopecks, event_id, order_id, promocode, payment_id) \
       VALUES ($1::text::uuid, $2::text, $3::int8, $4::text::uuid, $5::text::uuid, $6::text, \
               $7::text::uuid) \
       ON CONFLICT (event_id) DO NOTHING RETURNING id\
     ) SELECT count(*) AS appended FROM added";

/// Adds to a balance, opening the account on its first credit.
const CREDIT: &str = "INSERT INTO bonuses.accounts AS a (user_id, balance_kopecks) \
       VALUES ($1::text::uuid, $2::int8) \
       ON CONFLICT (user_id) DO UPDATE \
         SET balance_kopecks = a.balance_kopecks + EXCLUDED.balance_kopecks, updated_at = now() \
       RETURNING a.balance_kopecks";

/// Takes from a balance only if it holds enough. Concurrent spends queue on the row lock and
/// each re-checks the guard against the balance the previous one left, so together they can
/// never overdraw (and the CHECK on the column would stop them if they could).
const DEBIT: &str = "UPDATE bonuses.accounts \
     SET balance_kopecks = balance_kopecks - $2::int8, updated_at = now() \
     WHERE user_id = $1::text::uuid AND balance_kopecks >= $2::int8 \
     RETURNING balance_kopecks";

/// A payment's debit row (migrations/0018_bonus_payments.sql), new: `$5` says whether it is
/// born reversed (a reversal that came first). The primary key makes the second of two
/// racing inserts wait for the first's transaction, then do nothing (`inserted` 0).
const INSERT_DEBIT: &str = "WITH inserted AS (\
       INSERT INTO bonuses.payment_debits \
         (payment_id, user_id, order_id, amount_kopecks, reversed, attempt) \
       VALUES ($1::text::uuid, $2::text::uuid, $3::text::uuid, $4::int8, $5::bool, $6::int8) \
       ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id\
     ) SELECT count(*) AS inserted FROM inserted";

/// A payment's debit row, locked for the rest of the transaction; a debit still standing
/// passes to the attempt `$2` if that attempt is newer (it took the payment over).
const OWN_DEBIT: &str = "UPDATE bonuses.payment_debits AS d \
     SET attempt = CASE WHEN d.reversed THEN d.attempt ELSE greatest(d.attempt, $2::int8) END, \
         updated_at = now() \
     WHERE d.payment_id = $1::text::uuid \
     RETURNING d.user_id::text AS user_id, d.order_id::text AS order_id, d.amount_kopecks, \
       d.reversed, d.attempt";

/// Reverses a standing debit for attempt `$2`, unless a newer attempt owns it.
const REVERSE_DEBIT: &str = "UPDATE bonuses.payment_debits AS d \
     SET reversed = true, attempt = $2::int8, updated_at = now() \
     WHERE d.payment_id = $1::text::uuid AND NOT d.reversed AND d.attempt <= $2::int8 \
     RETURNING d.payment_id::text AS payment_id";

/// No row before the user's first credit.
const BALANCE: &str = "SELECT a.balance_kopecks, a.owed_kopecks \
     FROM bonuses.accounts AS a WHERE a.user_id = $1::text::uuid";

/// The user's account, opened if need be, locked for the rest of the transaction: a
/// refund's reversal reads the balance it takes from under this lock.
const LOCK_ACCOUNT: &str = "INSERT INTO bonuses.accounts AS a (user_id, balance_kopecks) \
       VALUES ($1::text::uuid, 0) \
       ON CONFLICT (user_id) DO UPDATE SET updated_at = now() \
       RETURNING a.balance_kopecks";

/// What an accrual's event (`$1`) credited, if it has been accrued.
const ACCRUED_BY: &str = "SELECT l.amount_kopecks FROM bonuses.ledger AS l \
     WHERE l.event_id = $1::text::uuid AND l.kind = 'accrual'";

/// A refund entry, once per refund event and once per accrual it reverses (`inserted` 0:
/// recorded before).
const APPEND_REFUND: &str = "WITH added AS (\
       INSERT INTO bonuses.ledger \
         (user_id, kind, amount_kopecks, event_id, order_id, payment_id, owed_kopecks, \
          reverses_event_id) \
       VALUES ($1::text::uuid, 'refund', $2::int8, $3::text::uuid, $4::text::uuid, \
               $5::text::uuid, $6::int8, $7::text::uuid) \
       ON CONFLICT DO NOTHING RETURNING id\
     ) SELECT count(*) AS inserted FROM added";

/// Takes `$2` off the balance and records `$3` as owed; the balance never goes below zero
/// (the caller takes at most what the locked row holds, and the CHECK stands behind it).
const TAKE_BACK: &str = "UPDATE bonuses.accounts \
     SET balance_kopecks = balance_kopecks - $2::int8, owed_kopecks = owed_kopecks + $3::int8, \
         updated_at = now() \
     WHERE user_id = $1::text::uuid RETURNING balance_kopecks";

/// What a refund event did when it was first applied, and its user's balance now.
const REFUND_OF: &str = "SELECT l.user_id::text AS user_id, -l.amount_kopecks AS taken_kopecks, \
       l.owed_kopecks, coalesce(a.balance_kopecks, 0) AS balance_kopecks \
     FROM bonuses.ledger AS l \
     LEFT JOIN bonuses.accounts AS a ON a.user_id = l.user_id \
     WHERE l.event_id = $1::text::uuid AND l.kind = 'refund'";

/// What an event accrued when it was first delivered, and its user's balance now.
const ACCRUAL_OF: &str = "SELECT l.user_id::text AS user_id, l.amount_kopecks, \
       coalesce(a.balance_kopecks, 0) AS balance_kopecks \
     FROM bonuses.ledger AS l \
     LEFT JOIN bonuses.accounts AS a ON a.user_id = l.user_id \
     WHERE l.event_id = $1::text::uuid";

const FIND_PROMOCODE: &str = concat!(
    "SELECT p.amount_kopecks, ",
    api::rfc3339!("p.expires_at"),
    " AS expires_at FROM bonuses.promocodes AS p WHERE p.code = $1::text"
);

/// Records that a user applied a code; the primary key (code, user_id) lets it happen once,
/// also when two requests race (the loser waits, then conflicts).
const REDEEM: &str = "WITH redeemed AS (\
       INSERT INTO bonuses.redemptions (code, user_id) VALUES ($1::text, $2::text::uuid) \
       ON CONFLICT DO NOTHING RETURNING code\
     ) SELECT count(*) AS redeemed FROM redeemed";

/// A user's entries newest first, from after a cursor. The LATERAL join keeps the one-row
/// shape when the page is empty (an all-NULL row, dropped below).
const HISTORY: &str = concat!(
    "SELECT l.id::text AS id, l.kind, l.amount_kopecks, l.event_id::text AS event_id, \
       l.order_id::text AS order_id, l.promocode, l.payment_id::text AS payment_id, \
       l.owed_kopecks, l.reverses_event_id::text AS reverses_event_id, ",
    api::rfc3339!("l.created_at"),
    " AS created_at FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM bonuses.ledger AS inner_l \
       WHERE inner_l.user_id = $1::text::uuid \
         AND ($2::text IS NULL \
              OR (inner_l.created_at, inner_l.id) < ($2::text::timestamptz, $3::text::uuid)) \
       ORDER BY inner_l.created_at DESC, inner_l.id DESC LIMIT $4::int8\
     ) AS l ON true ORDER BY l.created_at DESC, l.id DESC"
);

/// Appends `entry`; false when its event was recorded before.
pub fn append(db: &Connection, entry: &NewEntry) -> Result<bool, ApiError> {
    let params = [
        entry.user_id.to_string().into(),
        entry.kind.as_str().to_owned().into(),
        entry.amount.kopecks().into(),
        db::text_or_null(entry.event_id.map(|id| id.to_string())),
        db::text_or_null(entry.order_id.map(|id| id.to_string())),
        db::text_or_null(
            entry
                .promocode
                .as_ref()
                .map(|code| code.as_str().to_owned()),
        ),
        db::text_or_null(entry.payment_id.map(|id| id.to_string())),
    ];
    let row = db::one_row(db::query(db, APPEND, &params)?)?;
    Ok(row.get::<i64>("appended")? == 1)
}

/// The balance after adding `amount`.
pub fn credit(db: &Connection, user: Uuid, amount: Money) -> Result<Money, ApiError> {
    let params = [user.to_string().into(), amount.kopecks().into()];
    let row = db::one_row(db::query(db, CREDIT, &params)?)?;
    money(&row, "balance_kopecks")
}

/// The balance after taking `amount`, or `None` when it holds less (or no account exists).
pub fn debit(db: &Connection, user: Uuid, amount: Money) -> Result<Option<Money>, ApiError> {
    let params = [user.to_string().into(), amount.kopecks().into()];
    db::lookup(db, DEBIT, &params, |row| money(row, "balance_kopecks"))
}

/// Records `command`'s payment as debited (`reversed` false) or as reversed before any debit;
/// false when the payment has a row already.
pub fn insert_debit(
    db: &Connection,
    command: &PaymentDebit,
    reversed: bool,
) -> Result<bool, ApiError> {
    let params = [
        command.payment_id.to_string().into(),
        command.user_id.to_string().into(),
        command.order_id.to_string().into(),
        command.amount.kopecks().into(),
        reversed.into(),
        command.attempt.into(),
    ];
    let row = db::one_row(db::query(db, INSERT_DEBIT, &params)?)?;
    Ok(row.get::<i64>("inserted")? == 1)
}

/// The payment's debit row, locked; a standing debit passes to `attempt` if it is newer.
pub fn own_debit(
    db: &Connection,
    payment_id: Uuid,
    attempt: i64,
) -> Result<Option<StoredDebit>, ApiError> {
    let params = [payment_id.to_string().into(), attempt.into()];
    db::lookup(db, OWN_DEBIT, &params, |row| {
        Ok(StoredDebit {
            user_id: row.uuid("user_id")?,
            order_id: row.uuid("order_id")?,
            amount: money(row, "amount_kopecks")?,
            reversed: row.get("reversed")?,
            attempt: row.get("attempt")?,
        })
    })
}

/// Marks a standing debit reversed for `attempt`; false when it is reversed already or a
/// newer attempt owns it.
pub fn reverse_debit(db: &Connection, payment_id: Uuid, attempt: i64) -> Result<bool, ApiError> {
    let params = [payment_id.to_string().into(), attempt.into()];
    Ok(db::lookup(db, REVERSE_DEBIT, &params, |_| Ok(()))?.is_some())
}

/// A user's balance; 0 before their first credit.
pub fn balance(db: &Connection, user: Uuid) -> Result<Money, ApiError> {
    Ok(account(db, user)?.0)
}

/// A user's balance and what they owe; both 0 before their first credit.
pub fn account(db: &Connection, user: Uuid) -> Result<(Money, Money), ApiError> {
    let params = [user.to_string().into()];
    let account = db::lookup(db, BALANCE, &params, |row| {
        Ok((money(row, "balance_kopecks")?, money(row, "owed_kopecks")?))
    })?;
    Ok(account.unwrap_or((Money::ZERO, Money::ZERO)))
}

/// Opens (if need be) and locks the user's account; its balance.
pub fn lock_account(db: &Connection, user: Uuid) -> Result<Money, ApiError> {
    let row = db::one_row(db::query(db, LOCK_ACCOUNT, &[user.to_string().into()])?)?;
    money(&row, "balance_kopecks")
}

/// What the accrual of `event_id` credited, if it was accrued.
pub fn accrued_by(db: &Connection, event_id: Uuid) -> Result<Option<Money>, ApiError> {
    db::lookup(db, ACCRUED_BY, &[event_id.to_string().into()], |row| {
        money(row, "amount_kopecks")
    })
}

/// Records the refund entry of `event`; false when it was recorded before.
pub fn append_refund(
    db: &Connection,
    event: &RefundEvent,
    reversal: Reversal,
) -> Result<bool, ApiError> {
    let params = [
        event.user_id.to_string().into(),
        (-reversal.taken.kopecks()).into(),
        event.event_id.to_string().into(),
        event.order_id.to_string().into(),
        event.payment_id.to_string().into(),
        reversal.owed.kopecks().into(),
        event.reverses_event_id.to_string().into(),
    ];
    let row = db::one_row(db::query(db, APPEND_REFUND, &params)?)?;
    Ok(row.get::<i64>("inserted")? == 1)
}

/// Applies `reversal` to the user's (locked) account; the balance after.
pub fn take_back(db: &Connection, user: Uuid, reversal: Reversal) -> Result<Money, ApiError> {
    let params = [
        user.to_string().into(),
        reversal.taken.kopecks().into(),
        reversal.owed.kopecks().into(),
    ];
    let row = db::one_row(db::query(db, TAKE_BACK, &params)?)?;
    money(&row, "balance_kopecks")
}

/// A refund event applied before: its user, what it did and that user's balance now.
pub struct RecordedRefund {
    pub user_id: Uuid,
    pub reversal: Reversal,
    pub balance: Money,
}

pub fn refund_of(db: &Connection, event_id: Uuid) -> Result<Option<RecordedRefund>, ApiError> {
    db::lookup(db, REFUND_OF, &[event_id.to_string().into()], |row| {
        Ok(RecordedRefund {
            user_id: row.uuid("user_id")?,
            reversal: Reversal {
                taken: money(row, "taken_kopecks")?,
                owed: money(row, "owed_kopecks")?,
            },
            balance: money(row, "balance_kopecks")?,
        })
    })
}

/// An event accrued before: its user, what it accrued and that user's balance now.
pub struct RecordedAccrual {
    pub user_id: Uuid,
    pub accrued: Money,
    pub balance: Money,
}

pub fn accrual_of(db: &Connection, event_id: Uuid) -> Result<Option<RecordedAccrual>, ApiError> {
    db::lookup(db, ACCRUAL_OF, &[event_id.to_string().into()], |row| {
        Ok(RecordedAccrual {
            user_id: row.uuid("user_id")?,
            accrued: money(row, "amount_kopecks")?,
            balance: money(row, "balance_kopecks")?,
        })
    })
}

pub fn find_promocode(
    db: &Connection,
    code: &PromocodeCode,
) -> Result<Option<Promocode>, ApiError> {
    let params = [code.as_str().to_owned().into()];
    db::lookup(db, FIND_PROMOCODE, &params, |row| {
        Ok(Promocode {
            amount: money(row, "amount_kopecks")?,
            expires_at: row.timestamp("expires_at")?,
        })
    })
}

/// Whether this is the user's first use of `code`.
pub fn redeem(db: &Connection, code: &PromocodeCode, user: Uuid) -> Result<bool, ApiError> {
    let params = [code.as_str().to_owned().into(), user.to_string().into()];
    let row = db::one_row(db::query(db, REDEEM, &params)?)?;
    Ok(row.get::<i64>("redeemed")? == 1)
}

/// Up to `page.fetch()` of the user's entries, newest first.
pub fn history(db: &Connection, user: Uuid, page: &Page) -> Result<Vec<Entry>, ApiError> {
    let params = db::paged(vec![user.to_string().into()], page);
    db::list(db::query(db, HISTORY, &params)?, "id", entry_from_row)
}

fn entry_from_row(row: &Row) -> Result<Entry, ApiError> {
    let kind = row.parse("kind", |text| {
        EntryKind::parse(text).ok_or_else(|| format!("unknown kind `{text}`"))
    })?;
    let kopecks: i64 = row.get("amount_kopecks")?;
    let optional_uuid = |column: &str| -> Result<Option<Uuid>, ApiError> {
        if row.is_null(column)? {
            Ok(None)
        } else {
            row.uuid(column).map(Some)
        }
    };
    Ok(Entry {
        id: row.uuid("id")?,
        kind,
        amount: LedgerAmount::from_kopecks(kind, kopecks)
            .ok_or_else(|| db::unexpected("amount_kopecks", "out of range for its kind"))?,
        event_id: optional_uuid("event_id")?,
        order_id: optional_uuid("order_id")?,
        promocode: row.get("promocode")?,
        payment_id: optional_uuid("payment_id")?,
        owed: (kind == EntryKind::Refund)
            .then(|| money(row, "owed_kopecks"))
            .transpose()?,
        reverses_event_id: optional_uuid("reverses_event_id")?,
        created_at: row.timestamp("created_at")?,
    })
}

/// A non-negative kopeck column as `Money`.
fn money(row: &Row, column: &str) -> Result<Money, ApiError> {
    let kopecks: i64 = row.get(column)?;
    Money::from_kopecks(kopecks).ok_or_else(|| db::unexpected(column, "out of range"))
}
