//! `users.users`, `users.login_failures`, `users.sessions` and `users.refresh_tokens` in
//! PostgreSQL (migrations/0003_users.sql, 0014_login_attempts.sql, 0015_sessions.sql), one
//! statement per intent.
//! Every statement returns exactly one row (Spin 4.0.2 hangs on an empty `pg3` result,
//! docs/spin-compatibility.md): lookups run through [`db::lookup`].

use api::db::{self, Row};
use api::ApiError;
use auth::{RefreshToken, Role};
use spin_sdk::pg3::{Connection, ParameterValue};
use uuid::Uuid;

use crate::domain::{
    LoginAttempt, LoginLimits, NewUser, Refusal, Session, StoredCredentials, User,
};

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

// Sessions (migrations/0015_sessions.sql): one family of refresh tokens per login, found by
// the SHA-256 of a token (`auth::RefreshToken::hash`).

/// Starts a session for user `$1` ending in `$3` seconds, with `$2` as its first token's hash.
/// Prunes a few sessions that have ended first (their tokens go with them), skipping rows
/// others hold. Always one row.
const START_SESSION: &str = "WITH pruned AS ( \
         DELETE FROM users.sessions WHERE id IN ( \
             SELECT s.id FROM users.sessions AS s WHERE s.expires_at <= now() \
             LIMIT 16 FOR UPDATE SKIP LOCKED)), \
     session AS ( \
         INSERT INTO users.sessions (user_id, expires_at) \
         VALUES ($1::text::uuid, now() + make_interval(secs => $3::int)) \
         RETURNING id) \
     INSERT INTO users.refresh_tokens (token_hash, session_id) \
     SELECT $2::text, session.id FROM session \
     RETURNING session_id::text AS session_id";

/// Marks the token with hash `$1` used if it is unused and its session is live, and answers
/// whom the session is for. One conditional UPDATE: of two concurrent refreshes with one
/// token, the second waits for the first's row lock, then finds `used_at` set and updates
/// nothing. The role is read now, so a changed role reaches the next access token.
const USE_TOKEN: &str = "UPDATE users.refresh_tokens AS t SET used_at = now() \
     FROM users.sessions AS s JOIN users.users AS u ON u.id = s.user_id \
     WHERE t.token_hash = $1::text AND t.used_at IS NULL \
       AND s.id = t.session_id AND s.revoked_at IS NULL AND s.expires_at > now() \
     RETURNING s.id::text AS session_id, u.id::text AS user_id, u.role, \
               ceil(extract(epoch FROM s.expires_at - now()))::bigint AS expires_in";

/// Adds `$1` (a hash) as the next token of session `$2`. Always one row.
const ADD_TOKEN: &str = "INSERT INTO users.refresh_tokens (token_hash, session_id) \
     VALUES ($1::text, $2::text::uuid) RETURNING session_id::text AS session_id";

/// Why the token with hash `$1` was not rotated, after [`USE_TOKEN`] updated nothing, and,
/// when it had been used already, its session revoked. A statement of its own, so it sees
/// the rotation that won a race. Always one row: `refusal` is `unknown`, `expired`,
/// `reused` or `revoked`. The `revoked` CTE runs whether or not the
/// SELECT reads it, as every data-modifying CTE does.
const REFUSE_TOKEN: &str = "WITH token AS ( \
         SELECT t.session_id, t.used_at IS NOT NULL AS used, \
                s.revoked_at IS NOT NULL AS revoked, s.expires_at <= now() AS expired \
           FROM users.refresh_tokens AS t JOIN users.sessions AS s ON s.id = t.session_id \
          WHERE t.token_hash = $1::text), \
     revoked AS ( \
         UPDATE users.sessions AS s SET revoked_at = now(), revoked_reason = 'reuse' \
           FROM token \
          WHERE s.id = token.session_id AND token.used AND NOT token.expired \
            AND s.revoked_at IS NULL \
         RETURNING s.id) \
     SELECT CASE WHEN token.session_id IS NULL THEN 'unknown' \
                 WHEN token.expired THEN 'expired' \
                 WHEN token.used THEN 'reused' \
                 WHEN token.revoked THEN 'revoked' \
                 ELSE 'unknown' END AS refusal \
       FROM (SELECT 1) AS one LEFT JOIN token ON true";

/// Revokes the session of the token with hash `$1`, whatever the token's state. Always one
/// row: whether the token is known, and whether this revoked its session (0 when it had
/// been revoked already).
const END_SESSION: &str = "WITH token AS ( \
         SELECT t.session_id FROM users.refresh_tokens AS t WHERE t.token_hash = $1::text), \
     revoked AS ( \
         UPDATE users.sessions AS s SET revoked_at = now(), revoked_reason = 'logout' \
           FROM token WHERE s.id = token.session_id AND s.revoked_at IS NULL \
         RETURNING s.id) \
     SELECT token.session_id IS NOT NULL AS known, \
            (SELECT count(*) FROM revoked) AS revoked \
       FROM (SELECT 1) AS one LEFT JOIN token ON true";

/// Revokes every live session of user `$1`. Always one row.
const END_ALL_SESSIONS: &str = "WITH revoked AS ( \
         UPDATE users.sessions SET revoked_at = now(), revoked_reason = 'logout_all' \
          WHERE user_id = $1::text::uuid AND revoked_at IS NULL AND expires_at > now() \
         RETURNING id) \
     SELECT count(*) AS revoked FROM revoked";

/// Starts a session for `user` with `first` as its first refresh token, lasting
/// `lifetime_seconds`.
pub fn start_session(
    db: &Connection,
    user: Uuid,
    first: &RefreshToken,
    lifetime_seconds: u32,
) -> Result<(), ApiError> {
    let params = [
        user.to_string().into(),
        first.hash().into(),
        ParameterValue::Int32(i32::try_from(lifetime_seconds).unwrap_or(i32::MAX)),
    ];
    db::one_row(db::query(db, START_SESSION, &params)?).map(drop)
}

/// What a refresh token was good for.
#[derive(Debug)]
pub enum Rotation {
    /// `next` is now the session's token; the presented one is used.
    Rotated(Session),
    /// Nothing was issued (and a reused token's session is now revoked).
    Refused(Refusal),
}

/// Rotates `presented` to `next` in one transaction: the presented token is marked used
/// and `next` added to its session, or neither happens.
pub fn rotate(
    db: &Connection,
    presented: &RefreshToken,
    next: &RefreshToken,
) -> Result<Rotation, ApiError> {
    let presented = presented.hash();
    db::transaction(db, |db| {
        let Some(session) = db::lookup(db, USE_TOKEN, &[presented.clone().into()], |row| {
            Ok((
                row.get::<String>("session_id")?,
                Session {
                    user_id: row.uuid("user_id")?,
                    role: role(row)?,
                    expires_in: row.get("expires_in")?,
                },
            ))
        })?
        else {
            let row = db::one_row(db::query(db, REFUSE_TOKEN, &[presented.clone().into()])?)?;
            let refusal = row.parse("refusal", |text| {
                Refusal::parse(text).ok_or_else(|| format!("unknown refusal `{text}`"))
            })?;
            return Ok(Rotation::Refused(refusal));
        };
        let (session_id, session) = session;
        db::one_row(db::query(
            db,
            ADD_TOKEN,
            &[next.hash().into(), session_id.into()],
        )?)?;
        Ok(Rotation::Rotated(session))
    })
}

/// Revokes the session `token` belongs to: `None` when no session has such a token, else
/// how many sessions this revoked (0 when it had ended already).
pub fn end_session(db: &Connection, token: &RefreshToken) -> Result<Option<i64>, ApiError> {
    let row = db::one_row(db::query(db, END_SESSION, &[token.hash().into()])?)?;
    if !row.get::<bool>("known")? {
        return Ok(None);
    }
    row.get("revoked").map(Some)
}

/// Revokes every live session of `user`; answers how many.
pub fn end_all_sessions(db: &Connection, user: Uuid) -> Result<i64, ApiError> {
    db::one_row(db::query(db, END_ALL_SESSIONS, &[user.to_string().into()])?)?.get("revoked")
}
