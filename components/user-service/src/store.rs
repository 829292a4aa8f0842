//! `users.users` in PostgreSQL (migrations/0003_users.sql), one statement per intent.
//! Every statement returns exactly one row (Spin 4.0.2 hangs on an empty `pg3` result, see
//! car-service's store): lookups LEFT JOIN onto `(SELECT 1)` and read NULLs as "absent".

use api::db::{self, Row};
use api::ApiError;
use auth::Role;
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{NewUser, StoredCredentials, User};

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
    "WITH inserted AS (\
       INSERT INTO users.users (email, password_hash, full_name, phone_number) \
       VALUES ($1::text, $2::text, $3::text, $4::text) \
       ON CONFLICT (email) DO NOTHING \
       RETURNING *\
     ) \
     SELECT ",
    user_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN inserted AS u ON true"
);

const FIND: &str = concat!(
    "SELECT ",
    user_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN users.users AS u ON u.id = $1::text::uuid"
);

const CREDENTIALS: &str = "SELECT u.id::text AS id, u.role, u.password_hash \
     FROM (SELECT 1) AS one LEFT JOIN users.users AS u ON u.email = $1::text";

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
    let row = db::one_row(db::query(db, INSERT, &params)?)?;
    Ok(match user_from_row(&row)? {
        Some(user) => Inserted::Created(user),
        None => Inserted::EmailTaken,
    })
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<User>, ApiError> {
    let row = db::one_row(db::query(db, FIND, &[id.to_string().into()])?)?;
    user_from_row(&row)
}

/// The id, role and hash of the account with `email` (already normalised).
pub fn credentials(db: &Connection, email: &str) -> Result<Option<StoredCredentials>, ApiError> {
    let row = db::one_row(db::query(db, CREDENTIALS, &[email.to_owned().into()])?)?;
    if row.is_null("id")? {
        return Ok(None);
    }
    Ok(Some(StoredCredentials {
        id: row.uuid("id")?,
        role: role(&row)?,
        password_hash: row.get("password_hash")?,
    }))
}

/// The user in `row`, or `None` when the row is the all-NULL "nothing found" row.
fn user_from_row(row: &Row) -> Result<Option<User>, ApiError> {
    if row.is_null("id")? {
        return Ok(None);
    }
    Ok(Some(User {
        id: row.uuid("id")?,
        email: row.get("email")?,
        full_name: row.get("full_name")?,
        phone_number: row.get("phone_number")?,
        role: role(row)?,
        created_at: row.get("created_at")?,
    }))
}

fn role(row: &Row) -> Result<Role, ApiError> {
    row.parse("role", |text| {
        Role::parse(text).ok_or_else(|| format!("unknown role `{text}`"))
    })
}
