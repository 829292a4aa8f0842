//! `support.tickets` and `support.messages` in PostgreSQL (migrations/0008_support.sql),
//! one statement per intent, and the transactions that group them.
//!
//! Every query returns at least one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (docs/spin-compatibility.md): lookups run through [`db::lookup`], and lists
//! LEFT JOIN onto `(SELECT 1)` and drop the all-NULL row. UUIDs and timestamps travel as
//! text (`$1::text::uuid`, `id::text`, `api::rfc3339!`): Spin's client rejects a string bound
//! to `$1::uuid`, and pg3's datetime value carries no zone. Spin's Postgres API has no
//! transaction call, so [`db::transaction`] sends BEGIN and COMMIT on the one connection it
//! is given.

use api::auth::Role;
use api::db::{self, Row};
use api::{ApiError, Caller};
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{
    Conversation, Message, MessageBody, NewTicket, Ticket, TicketFilter, TicketStatus,
};

/// The columns of a ticket, read from the relation aliased `t`.
macro_rules! ticket_columns {
    () => {
        concat!(
            "t.id::text AS id, t.user_id::text AS user_id, t.subject, \
             t.order_id::text AS order_id, t.status, ",
            api::rfc3339!("t.created_at"),
            " AS created_at, ",
            api::rfc3339!("t.updated_at"),
            " AS updated_at"
        )
    };
}

/// The columns of a message, read from the relation aliased `m`; named apart from a
/// ticket's so one row can hold both.
macro_rules! message_columns {
    () => {
        concat!(
            "m.id::text AS message_id, m.ticket_id::text AS ticket_id, \
             m.author_id::text AS author_id, m.author_role, m.body, ",
            api::rfc3339!("m.created_at"),
            " AS message_created_at"
        )
    };
}

const INSERT_TICKET: &str = concat!(
    "INSERT INTO support.tickets AS t (user_id, subject, order_id) \
     VALUES ($1::text::uuid, $2::text, $3::text::uuid) \
     RETURNING ",
    ticket_columns!()
);

const INSERT_MESSAGE: &str = concat!(
    "INSERT INTO support.messages AS m (ticket_id, author_id, author_role, body) \
     VALUES ($1::text::uuid, $2::text::uuid, $3::text, $4::text) \
     RETURNING ",
    message_columns!()
);

const FIND: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM support.tickets AS t WHERE t.id = $1::text::uuid"
);

/// [`FIND`], holding the ticket's row lock until the transaction ends: messages and status
/// changes to one ticket then happen one after another, each seeing the last one's status.
const FIND_FOR_UPDATE: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM support.tickets AS t WHERE t.id = $1::text::uuid FOR UPDATE"
);

/// The ticket and its messages in one statement, so they are one snapshot: a row per
/// message, oldest first; one all-NULL row when there is no such ticket.
const CONVERSATION: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    ", ",
    message_columns!(),
    " FROM (SELECT 1) AS one \
     LEFT JOIN support.tickets AS t ON t.id = $1::text::uuid \
     LEFT JOIN support.messages AS m ON m.ticket_id = t.id \
     ORDER BY m.created_at, m.id"
);

/// Newest first, optionally one user's and one status, starting after a cursor. The
/// LATERAL join keeps the one-row shape when the page is empty (an all-NULL row, dropped).
const LIST: &str = concat!(
    "SELECT ",
    ticket_columns!(),
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM support.tickets AS inner_t \
       WHERE ($1::text IS NULL OR inner_t.user_id = $1::text::uuid) \
         AND ($2::text IS NULL OR inner_t.status = $2::text) \
         AND ($3::text IS NULL \
              OR (inner_t.created_at, inner_t.id) < ($3::text::timestamptz, $4::text::uuid)) \
       ORDER BY inner_t.created_at DESC, inner_t.id DESC \
       LIMIT $5::int8\
     ) AS t ON true \
     ORDER BY t.created_at DESC, t.id DESC"
);

/// Moves the ticket from `from` to `to` only if it is still in `from` (compare and set), so
/// two concurrent changes cannot both apply. `from` may equal `to`: a message that leaves
/// the status as it is still marks the ticket updated.
const SET_STATUS: &str = concat!(
    "UPDATE support.tickets AS t SET status = $3::text, updated_at = clock_timestamp() \
     WHERE t.id = $1::text::uuid AND t.status = $2::text \
     RETURNING ",
    ticket_columns!()
);

/// Opens a ticket for `caller` with its first message. Run it in a [`db::transaction`]: two
/// statements, one intent.
pub fn open_ticket(
    db: &Connection,
    caller: &Caller,
    new_ticket: &NewTicket,
) -> Result<Conversation, ApiError> {
    let params = [
        caller.user_id.to_string().into(),
        new_ticket.subject.as_str().to_owned().into(),
        db::text_or_null(new_ticket.order_id.map(|id| id.to_string())),
    ];
    let ticket = ticket_from_row(&db::one_row(db::query(db, INSERT_TICKET, &params)?)?)?;
    let message = insert_message(db, ticket.id, caller, &new_ticket.message)?;
    Ok(Conversation {
        ticket,
        messages: vec![message],
    })
}

/// Adds `body` by `author` to the conversation of `ticket_id`.
pub fn insert_message(
    db: &Connection,
    ticket_id: Uuid,
    author: &Caller,
    body: &MessageBody,
) -> Result<Message, ApiError> {
    let params = [
        ticket_id.to_string().into(),
        author.user_id.to_string().into(),
        author.role.as_str().to_owned().into(),
        body.as_str().to_owned().into(),
    ];
    message_from_row(&db::one_row(db::query(db, INSERT_MESSAGE, &params)?)?)
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Ticket>, ApiError> {
    db::lookup(db, FIND, &[id.to_string().into()], ticket_from_row)
}

/// [`find`] holding the ticket's row lock until the [`db::transaction`] it runs in ends.
pub fn find_for_update(db: &Connection, id: Uuid) -> Result<Option<Ticket>, ApiError> {
    db::lookup(
        db,
        FIND_FOR_UPDATE,
        &[id.to_string().into()],
        ticket_from_row,
    )
}

/// The ticket with its messages, oldest first.
pub fn conversation(db: &Connection, id: Uuid) -> Result<Option<Conversation>, ApiError> {
    let rows = db::rows(db::query(db, CONVERSATION, &[id.to_string().into()])?);
    let Some(first) = rows.first() else {
        return Err(
            ApiError::internal("a database query returned an unexpected result")
                .with_detail("the conversation query returned no row"),
        );
    };
    if first.is_null("id")? {
        return Ok(None);
    }
    let ticket = ticket_from_row(first)?;
    let mut messages = Vec::with_capacity(rows.len());
    for row in &rows {
        if !row.is_null("message_id")? {
            messages.push(message_from_row(row)?);
        }
    }
    Ok(Some(Conversation { ticket, messages }))
}

pub fn list(db: &Connection, filter: &TicketFilter) -> Result<Vec<Ticket>, ApiError> {
    let params = db::paged(
        vec![
            db::text_or_null(filter.user.map(|id| id.to_string())),
            db::text_or_null(filter.status.map(|status| status.as_str().to_owned())),
        ],
        &filter.page,
    );
    db::list(db::query(db, LIST, &params)?, "id", ticket_from_row)
}

/// The ticket after the move, or `None` when it was no longer in `from`.
pub fn set_status(
    db: &Connection,
    id: Uuid,
    from: TicketStatus,
    to: TicketStatus,
) -> Result<Option<Ticket>, ApiError> {
    let params = [
        id.to_string().into(),
        from.as_str().to_owned().into(),
        to.as_str().to_owned().into(),
    ];
    db::lookup(db, SET_STATUS, &params, ticket_from_row)
}

/// The ticket in `row`.
fn ticket_from_row(row: &Row) -> Result<Ticket, ApiError> {
    let order_id: Option<String> = row.get("order_id")?;
    Ok(Ticket {
        id: row.uuid("id")?,
        user_id: row.uuid("user_id")?,
        subject: row.get("subject")?,
        order_id: order_id
            .map(|id| Uuid::parse_str(&id).map_err(|error| db::unexpected("order_id", error)))
            .transpose()?,
        status: row.parse("status", |s| {
            TicketStatus::parse(s).ok_or_else(|| format!("unknown status {s:?}"))
        })?,
        created_at: row.timestamp("created_at")?,
        updated_at: row.timestamp("updated_at")?,
    })
}

/// The message in `row`.
fn message_from_row(row: &Row) -> Result<Message, ApiError> {
    Ok(Message {
        id: row.uuid("message_id")?,
        ticket_id: row.uuid("ticket_id")?,
        author_id: row.uuid("author_id")?,
        author_role: row.parse("author_role", |s| {
            Role::parse(s).ok_or_else(|| format!("unknown role {s:?}"))
        })?,
        body: row.get("body")?,
        created_at: row.timestamp("message_created_at")?,
    })
}
