//! Support tickets as the business sees them: request input parsed into valid values, the
//! status state machine staff drive, and how a message moves a ticket. No spin-sdk here:
//! `cargo test` runs these rules natively.

use std::fmt;

use api::auth::Role;
use api::json::Object;
use api::query::{Page, Query};
use api::{Caller, FieldError, FieldErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UUID field (any form `uuid` accepts; stored and returned hyphenated, lower-case).
pub fn parse_uuid(field: &str, s: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(s.trim()).map_err(|_| FieldError::new(field, "must be a UUID"))
}

/// What a ticket is about, in one line, stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject(String);

impl Subject {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One message of a conversation (the `message` field of a request), stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageBody(String);

impl MessageBody {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/support/tickets`'s body: documented and read as this type (see `api::body`).
/// Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "subject": "Царапина после мойки",
    "message": "После мойки на двери появилась царапина.",
    "order_id": "550e8400-e29b-41d4-a716-446655440000"
}))]
pub struct TicketRequest {
    /// Stored trimmed; not blank, no NUL.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    pub subject: String,
    /// The first message, stored trimmed; not blank, no NUL.
    #[schema(
        min_length = 1,
        max_length = 5000,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    pub message: String,
    /// The order it is about: one of the caller's (else 404 `order_not_found`).
    pub order_id: Option<Uuid>,
}

/// `POST /api/support/tickets/{ticket_id}/messages`'s body: documented and read as this
/// type. Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"message": "Когда можно приехать на осмотр?"}))]
pub struct TicketMessageRequest {
    /// Stored trimmed; not blank, no NUL.
    #[schema(
        min_length = 1,
        max_length = 5000,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    pub message: String,
}

/// A new ticket and its first message, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub subject: Subject,
    pub message: MessageBody,
    /// The order the ticket is about; whether it is the caller's is order-service's to say.
    pub order_id: Option<Uuid>,
}

impl NewTicket {
    /// Reads [`TicketRequest`], reporting every invalid field. A missing or null `order_id`
    /// means the ticket is about no order.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: TicketRequest = api::body::parse(body)?;
        Ok(Self {
            subject: Subject(request.subject.trim().to_owned()),
            message: MessageBody(request.message.trim().to_owned()),
            order_id: request.order_id,
        })
    }
}

/// The body of `POST /api/support/tickets/{id}/messages`: `{"message": "..."}`.
pub fn parse_message(body: &Object) -> Result<MessageBody, FieldErrors> {
    let request: TicketMessageRequest = api::body::parse(body)?;
    Ok(MessageBody(request.message.trim().to_owned()))
}

/// Where a ticket is in its life. Staff move it `open → answered → closed` (or close an
/// open one at once); messages move it between `open` and `answered` (see
/// [`TicketStatus::after_message`]). `closed` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TicketStatus {
    Open,
    Answered,
    Closed,
}

impl TicketStatus {
    pub const ALL: [Self; 3] = [Self::Open, Self::Answered, Self::Closed];

    /// The name used in JSON, in query strings and in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Answered => "answered",
            Self::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether staff may move a ticket in this status to `to`.
    pub fn can_become(self, to: Self) -> bool {
        use TicketStatus::*;
        matches!(
            (self, to),
            (Open, Answered) | (Answered, Closed) | (Open, Closed)
        )
    }

    /// A status change staff asked for (`PATCH .../status`).
    pub fn transition(self, to: Self) -> Result<Self, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }

    /// The status after someone with `role` writes to the ticket: a staff reply answers an
    /// open ticket, and a customer writing again reopens an answered one, so the ticket
    /// shows whose turn it is. A closed ticket takes no messages.
    pub fn after_message(self, role: Role) -> Result<Self, ClosedTicket> {
        match (self, role) {
            (Self::Closed, _) => Err(ClosedTicket),
            (_, Role::Staff) => Ok(Self::Answered),
            (_, Role::Customer) => Ok(Self::Open),
        }
    }

    fn names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|s| s.as_str()).collect();
        format!("must be one of {}", names.join(", "))
    }
}

impl fmt::Display for TicketStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `PATCH /api/support/tickets/{ticket_id}/status`'s body: documented and read as this
/// type. Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"status": "closed"}))]
pub struct TicketStatusRequest {
    /// `open → answered → closed`, or `open → closed` (else 409).
    pub status: TicketStatus,
}

/// The body of `PATCH /api/support/tickets/{id}/status`: `{"status": "closed"}`.
pub fn parse_status_change(body: &Object) -> Result<TicketStatus, FieldErrors> {
    api::body::parse::<TicketStatusRequest>(body).map(|request| request.status)
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![
        api::body::Documented::new::<TicketRequest, _>(NewTicket::parse),
        api::body::Documented::new::<TicketMessageRequest, _>(parse_message),
        api::body::Documented::new::<TicketStatusRequest, _>(parse_status_change),
    ]
}

/// A status change the state machine forbids: 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: TicketStatus,
    pub to: TicketStatus,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a ticket that is {} cannot become {}",
            self.from, self.to
        )
    }
}

impl std::error::Error for IllegalTransition {}

/// A message sent to a closed ticket: 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClosedTicket;

/// What `GET /api/support/tickets` lists: `?limit=&cursor=` as every list does, `?status=`
/// for anyone, and `?user_id=` for staff. A customer always sees only their own tickets,
/// whatever they ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFilter {
    pub page: Page,
    /// `None`: everyone's (staff only).
    pub user: Option<Uuid>,
    pub status: Option<TicketStatus>,
}

impl TicketFilter {
    pub fn parse(query: &Query, caller: &Caller) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let page = match Page::parse(query) {
            Ok(page) => Some(page),
            Err(page_errors) => {
                page_errors.into_iter().for_each(|e| errors.push(e));
                None
            }
        };
        let status = errors.check(
            query
                .get("status")
                .map(|raw| {
                    TicketStatus::parse(raw)
                        .ok_or_else(|| FieldError::new("status", TicketStatus::names()))
                })
                .transpose(),
        );
        let user = errors.check(caller.list_scope(query, "user_id"));
        match (page, status, user) {
            (Some(page), Some(status), Some(user)) => Ok(Self { page, user, status }),
            _ => Err(errors),
        }
    }
}

/// A ticket, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Ticket {
    pub id: Uuid,
    pub user_id: Uuid,
    pub subject: String,
    pub order_id: Option<Uuid>,
    pub status: TicketStatus,
    pub created_at: DateTime<Utc>,
    /// The last message or status change.
    pub updated_at: DateTime<Utc>,
}

/// One message of a ticket's conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub ticket_id: Uuid,
    pub author_id: Uuid,
    /// Whether the customer or staff wrote it, as the author's token said at the time.
    #[schema(value_type = RoleSchema)]
    pub author_role: Role,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// What a user may do beyond their own resources: `staff` run the workshop.
// `Message::author_role` in the document: `auth::Role` lives in a crate without utoipa, and
// serializes the same way (a test checks). The same schema as user-service's `Role`.
#[derive(utoipa::ToSchema)]
#[schema(as = Role, rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleSchema {
    Customer,
    Staff,
}

/// A ticket with its messages, oldest first: what creating or reading a ticket answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Conversation {
    #[serde(flatten)]
    pub ticket: Ticket,
    pub messages: Vec<Message>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use TicketStatus::*;

    fn object(value: Value) -> Object {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    fn fields(errors: &FieldErrors) -> Vec<&str> {
        errors.as_slice().iter().map(|e| e.field.as_str()).collect()
    }

    fn customer(id: u128) -> Caller {
        Caller {
            user_id: Uuid::from_u128(id),
            role: Role::Customer,
        }
    }

    fn staff() -> Caller {
        Caller {
            user_id: Uuid::from_u128(99),
            role: Role::Staff,
        }
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn new_ticket_parses_the_example_trimmed() {
        let body = object(json!({
            "subject": "  Царапина после мойки ",
            "message": "\nПосле мойки на двери появилась царапина.\n",
            "order_id": "550e8400-e29b-41d4-a716-446655440000"
        }));
        let ticket = NewTicket::parse(&body).unwrap();
        assert_eq!(ticket.subject.as_str(), "Царапина после мойки");
        assert_eq!(
            ticket.message.as_str(),
            "После мойки на двери появилась царапина."
        );
        assert_eq!(
            ticket.order_id.map(|id| id.to_string()).as_deref(),
            Some("550e8400-e29b-41d4-a716-446655440000")
        );
    }

    #[test]
    fn order_id_may_be_missing_or_null() {
        for body in [
            json!({"subject": "s", "message": "m"}),
            json!({"subject": "s", "message": "m", "order_id": null}),
        ] {
            assert_eq!(NewTicket::parse(&object(body)).unwrap().order_id, None);
        }
    }

    #[test]
    fn new_ticket_reports_every_invalid_field_at_once() {
        let body = object(json!({"subject": "   ", "message": 5, "order_id": "order-7"}));
        let errors = NewTicket::parse(&body).unwrap_err();
        assert_eq!(fields(&errors), ["message", "order_id", "subject"]);
        assert!(errors
            .get("subject")
            .unwrap()
            .message
            .starts_with("must match"));
        assert_eq!(
            errors.get("message").unwrap().message,
            "must be a string, not a number"
        );
        assert!(errors
            .get("order_id")
            .unwrap()
            .message
            .starts_with("must be a UUID"));

        let errors = NewTicket::parse(&Object::new()).unwrap_err();
        assert_eq!(fields(&errors), ["subject", "message"]);
    }

    fn ticket(subject: &str, message: &str) -> Result<NewTicket, FieldErrors> {
        NewTicket::parse(&object(json!({"subject": subject, "message": message})))
    }

    #[test]
    fn subject_is_1_to_200_characters_not_blank_without_nul() {
        assert!(ticket(&"ж".repeat(200), "m").is_ok());
        assert_eq!(ticket(" ж ", "m").unwrap().subject.as_str(), "ж");
        for bad in ["ж".repeat(201), String::new(), " \t".into(), "a\0b".into()] {
            assert_eq!(
                fields(&ticket(&bad, "m").unwrap_err()),
                ["subject"],
                "{bad:?}"
            );
        }
    }

    #[test]
    fn message_is_1_to_5000_characters_not_blank_without_nul() {
        assert_eq!(
            ticket("s", &"ж".repeat(5000)).unwrap().message.as_str(),
            "ж".repeat(5000)
        );
        for bad in ["ж".repeat(5001), " \t\n".into(), "\0".into()] {
            assert_eq!(
                fields(&ticket("s", &bad).unwrap_err()),
                ["message"],
                "{bad:?}"
            );
        }
        // Lines inside a message are the author's; only the ends are trimmed.
        assert_eq!(ticket("s", " a\n\nb ").unwrap().message.as_str(), "a\n\nb");
    }

    #[test]
    fn message_body_names_the_message_field() {
        assert_eq!(
            parse_message(&object(json!({"message": " hi "}))).unwrap(),
            MessageBody("hi".into())
        );
        for body in [json!({}), json!({"message": ""}), json!({"body": "hi"})] {
            let errors = parse_message(&object(body)).unwrap_err();
            assert_eq!(fields(&errors), ["message"]);
        }
    }

    #[test]
    fn the_document_and_the_parsers_agree() {
        for documented in request_bodies() {
            let found = api::body::disagreements(&documented);
            assert!(found.is_empty(), "{}", found.join("\n"));
        }
    }

    #[test]
    fn status_names_round_trip_through_text_and_json() {
        for status in TicketStatus::ALL {
            assert_eq!(TicketStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
        }
        assert_eq!(TicketStatus::parse("Open"), None);
    }

    #[test]
    fn transitions_go_open_answered_closed_and_nothing_else() {
        let allowed = [(Open, Answered), (Answered, Closed), (Open, Closed)];
        for from in TicketStatus::ALL {
            for to in TicketStatus::ALL {
                let result = from.transition(to);
                if allowed.contains(&(from, to)) {
                    assert_eq!(result, Ok(to), "{from} -> {to}");
                } else {
                    assert_eq!(
                        result,
                        Err(IllegalTransition { from, to }),
                        "{from} -> {to}"
                    );
                }
            }
        }
    }

    #[test]
    fn closed_is_final() {
        assert!(TicketStatus::ALL.iter().all(|&to| !Closed.can_become(to)));
    }

    #[test]
    fn illegal_transition_explains_itself() {
        assert_eq!(
            Answered.transition(Open).unwrap_err().to_string(),
            "a ticket that is answered cannot become open"
        );
    }

    #[test]
    fn a_message_shows_whose_turn_it_is_and_a_closed_ticket_takes_none() {
        let cases = [
            (Open, Role::Staff, Ok(Answered)),
            (Answered, Role::Staff, Ok(Answered)),
            (Closed, Role::Staff, Err(ClosedTicket)),
            (Open, Role::Customer, Ok(Open)),
            (Answered, Role::Customer, Ok(Open)),
            (Closed, Role::Customer, Err(ClosedTicket)),
        ];
        for (from, role, after) in cases {
            assert_eq!(from.after_message(role), after, "{from} by {role:?}");
        }
    }

    #[test]
    fn status_change_body_names_the_allowed_values() {
        assert_eq!(
            parse_status_change(&object(json!({"status": "closed"}))),
            Ok(Closed)
        );
        assert!(parse_status_change(&object(json!({"status": " closed "}))).is_err());
        let errors = parse_status_change(&object(json!({"status": "resolved"}))).unwrap_err();
        assert_eq!(
            errors.get("status").unwrap().message,
            "must be one of open, answered, closed"
        );
        assert!(parse_status_change(&object(json!({}))).is_err());
    }

    #[test]
    fn customers_list_their_own_tickets_whatever_they_ask() {
        let me = customer(1);
        let query =
            Query::parse("status=answered&user_id=00000000-0000-0000-0000-000000000002").unwrap();
        let filter = TicketFilter::parse(&query, &me).unwrap();
        assert_eq!(filter.user, Some(me.user_id));
        assert_eq!(filter.status, Some(Answered));
        assert_eq!(filter.page.limit, Page::DEFAULT_LIMIT);
    }

    #[test]
    fn staff_list_everyones_tickets_or_one_users() {
        let all = TicketFilter::parse(&Query::default(), &staff()).unwrap();
        assert_eq!((all.user, all.status), (None, None));
        let query = Query::parse("user_id=00000000-0000-0000-0000-000000000002").unwrap();
        let one = TicketFilter::parse(&query, &staff()).unwrap();
        assert_eq!(one.user, Some(Uuid::from_u128(2)));
    }

    #[test]
    fn list_filter_reports_every_invalid_parameter() {
        let query = Query::parse("limit=0&cursor=x&status=pending&user_id=7").unwrap();
        let errors = TicketFilter::parse(&query, &staff()).unwrap_err();
        assert_eq!(fields(&errors), ["limit", "cursor", "status", "user_id"]);
        // A user_id that is not a UUID is refused from a customer too, though theirs is
        // the only list they see.
        let errors = TicketFilter::parse(&query, &customer(1)).unwrap_err();
        assert_eq!(fields(&errors), ["limit", "cursor", "status", "user_id"]);
    }

    #[test]
    fn conversation_serializes_as_the_ticket_with_its_messages() {
        let ticket = Ticket {
            id: Uuid::from_u128(1),
            user_id: Uuid::from_u128(2),
            subject: "Царапина".into(),
            order_id: None,
            status: Open,
            created_at: time("2030-05-01T10:30:00Z"),
            updated_at: time("2030-05-01T10:30:00.5Z"),
        };
        let message = Message {
            id: Uuid::from_u128(3),
            ticket_id: ticket.id,
            author_id: ticket.user_id,
            author_role: Role::Customer,
            body: "Здравствуйте".into(),
            created_at: time("2030-05-01T10:30:00.000001Z"),
        };
        let conversation = Conversation {
            ticket,
            messages: vec![message],
        };
        assert_eq!(
            serde_json::to_value(&conversation).unwrap(),
            json!({
                "id": "00000000-0000-0000-0000-000000000001",
                "user_id": "00000000-0000-0000-0000-000000000002",
                "subject": "Царапина",
                "order_id": null,
                "status": "open",
                "created_at": "2030-05-01T10:30:00Z",
                "updated_at": "2030-05-01T10:30:00.500Z",
                "messages": [{
                    "id": "00000000-0000-0000-0000-000000000003",
                    "ticket_id": "00000000-0000-0000-0000-000000000001",
                    "author_id": "00000000-0000-0000-0000-000000000002",
                    "author_role": "customer",
                    "body": "Здравствуйте",
                    "created_at": "2030-05-01T10:30:00.000001Z"
                }]
            })
        );
    }
}
