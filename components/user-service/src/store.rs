//! `users.users` and `users.login_failures` in PostgreSQL (migrations/0003_users.sql,
//! 0014_login_attempts.sql), one statement per intent.
//! Every statement returns exactly one row (Spin 4.0.2 hangs on an empty `pg3` result,
//! docs/spin-compatibility.md): lookups run through [`db::lookup`].

use api::db::{self, Row};
use api::ApiError;
use auth::Role;
use spin_sdk::pg3::{Connection, ParameterValue};
use uuid::Uuid;

use crate::domain::{LoginAttempt, LoginLimits, NewUser, StoredCredentials, User};

/// The public columns of a user, read from the relation aliased `u`.
macro_rules! user_columns {
    () => {
        concat!(
            "u.id::text AS id, u.email, u.full_name, u.phone_number, u.role, ",
            api::rfc3339!("u.created_at"),
            " AS created_at"
        )
    };
}

/// Inserts unless the email exists. The unique constraint decides, not a read before the
/// write, so of two concurrent registrations of one address exactly one succeeds.
const INSERT: &str = concat!(
    "INSERT INTO users.users AS u (email, password_hash, full_name, phone_number) \
     VALUES ($1::text, $2::text, $3::text, $4::text) \
     ON CONFLICT (email) DO NOTHING \
     RETURNING ",
    user_columns!()
);

const FIND: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM users.users AS u WHERE u.id = $1::text::uuid"
);

/// Counts the attempt against its buckets (the function in 0014_login_attempts.sql) and
/// reads the account's credentials, in one round trip. `wait_seconds` is 0 when the attempt
/// may go on; the function answers exactly one row, so the LEFT JOIN does too.
const BEGIN_LOGIN: &str = "SELECT attempt.wait_seconds, u.id::text AS id, u.role, u.password_hash \
     FROM users.login_attempt_begin($2::text, $3::text, $4::int, $5::int, $6::int, $7::int) \
          AS attempt(wait_seconds) \
     LEFT JOIN users.users AS u ON u.email = $1::text";

const LOGIN_SUCCEEDED: &str = "SELECT users.login_attempt_succeeded($1::text, $2::text) AS changed";

pub enum Inserted {
    Created(User),
    EmailTaken,
}

pub fn insert(db: &Connection, user: &NewUser, password_hash: &str) -> Result<Inserted, ApiError> {
    let params = [
        user.email.as_str().to_owned().into(),
        password_hash.to_owned().into(),
        user.full_name.as_str().to_owned().into(),
        user.phone_number.as_str().to_owned().into(),
    ];
    Ok(match db::lookup(db, INSERT, &params, user_from_row)? {
        Some(user) => Inserted::Created(user),
        None => Inserted::EmailTaken,
    })
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<User>, ApiError> {
    db::lookup(db, FIND, &[id.to_string().into()], user_from_row)
}

/// Whether a login attempt may have its password checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Counted as a failure until [`login_succeeded`] says otherwise.
    Admitted,
    /// Over a limit, and not counted: wait this many seconds (at least 1).
    Refused { retry_after_seconds: u64 },
}

/// Counts `attempt` as a failure (unless a limit refuses it) and reads the credentials of the
/// account with `email` (already normalised), so both cost the same for an unknown email.
pub fn begin_login(
    db: &Connection,
    email: &str,
    attempt: &LoginAttempt,
    limits: &LoginLimits,
) -> Result<(Admission, Option<StoredCredentials>), ApiError> {
    let number = |n: u32| ParameterValue::Int32(i32::try_from(n).unwrap_or(i32::MAX));
    let params = [
        email.to_owned().into(),
        attempt.account.clone().into(),
        attempt.address.as_str().to_owned().into(),
        number(limits.window_seconds),
        number(limits.per_account_and_address),
        number(limits.per_account),
        number(limits.per_address),
    ];
    let row = db::one_row(db::query(db, BEGIN_LOGIN, &params)?)?;
    let wait: i64 = row.get("wait_seconds")?;
    let admission = match u64::try_from(wait) {
        Ok(0) | Err(_) => Admission::Admitted,
        Ok(seconds) => Admission::Refused {
            retry_after_seconds: seconds,
        },
    };
    if row.is_null("id")? {
        return Ok((admission, None));
    }
    let credentials = StoredCredentials {
        id: row.uuid("id")?,
        role: role(&row)?,
        password_hash: row.get("password_hash")?,
    };
    Ok((admission, Some(credentials)))
}

/// The admitted `attempt` had the right password: forgets the account's failures and gives
/// the address its place back.
pub fn login_succeeded(db: &Connection, attempt: &LoginAttempt) -> Result<(), ApiError> {
    let params = [
        attempt.account.clone().into(),
        attempt.address.as_str().to_owned().into(),
    ];
    db::one_row(db::query(db, LOGIN_SUCCEEDED, &params)?).map(drop)
}

/// The user in `row`.
fn user_from_row(row: &Row) -> Result<User, ApiError> {
    Ok(User {
        id: row.uuid("id")?,
        email: row.get("email")?,
        full_name: row.get("full_name")?,
        phone_number: row.get("phone_number")?,
        role: role(row)?,
        created_at: row.get("created_at")?,
    })
}

fn role(row: &Row) -> Result<Role, ApiError> {
    row.parse("role", |text| {
        Role::parse(text).ok_or_else(|| format!("unknown role `{text}`"))
    })
}
