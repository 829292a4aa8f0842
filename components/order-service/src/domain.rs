//! Orders as the business sees them: booking input parsed into valid values, and the
//! status state machine. No spin-sdk here: `cargo test` runs these rules natively.

use std::fmt;

use api::json::{self, Object};
use api::{FieldError, FieldErrors};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A UUID field (any form `uuid` accepts; stored and returned hyphenated, lower-case).
pub fn parse_uuid(field: &str, s: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(s.trim()).map_err(|_| FieldError::new(field, "must be a UUID"))
}

/// When the customer wants the car serviced: an RFC 3339 date-time with an explicit offset
/// (`2030-05-01T10:30:00+03:00` or `...Z`), so there is never a guess about the time zone.
/// The rules about the future and half-hour slots are a later issue; they belong here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DesiredTime(DateTime<FixedOffset>);

impl DesiredTime {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        DateTime::parse_from_rfc3339(s.trim())
            .map(Self)
            .map_err(|_| {
                FieldError::new(
                    "desired_time",
                    "must be an RFC 3339 date-time with an offset, e.g. 2030-05-01T10:30:00+03:00",
                )
            })
    }

    pub fn utc(self) -> DateTime<Utc> {
        self.0.with_timezone(&Utc)
    }
}

/// What the customer asks for, in their words: up to 2000 characters, possibly empty.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub const MAX_CHARS: usize = 2000;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        if s.chars().count() > Self::MAX_CHARS {
            Err(FieldError::new(
                "description",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ))
        } else if s.contains('\0') {
            // PostgreSQL text cannot hold NUL; refuse it here rather than fail the insert.
            Err(FieldError::new(
                "description",
                "must not contain NUL characters",
            ))
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A booking request, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub car_id: Uuid,
    pub desired_time: DesiredTime,
    pub description: Description,
}

impl NewOrder {
    /// Reads `{car_id, desired_time, description}`, reporting every invalid field.
    /// A missing or null `description` is empty. Unknown fields are ignored.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let car_id =
            errors.check(json::required_str(body, "car_id").and_then(|s| parse_uuid("car_id", s)));
        let desired_time =
            errors.check(json::required_str(body, "desired_time").and_then(DesiredTime::parse));
        let description = errors.check(
            json::optional_str(body, "description")
                .and_then(|s| Description::parse(s.unwrap_or_default())),
        );

        match (car_id, desired_time, description) {
            (Some(car_id), Some(desired_time), Some(description)) => Ok(Self {
                car_id,
                desired_time,
                description,
            }),
            _ => Err(errors),
        }
    }
}

/// Where an order is in its life. Moves forward `created → confirmed → in_progress →
/// completed`; `cancelled` is reachable only before work starts. `completed` and
/// `cancelled` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    Created,
    Confirmed,
    InProgress,
    Completed,
    Cancelled,
}

impl OrderStatus {
    pub const ALL: [Self; 5] = [
        Self::Created,
        Self::Confirmed,
        Self::InProgress,
        Self::Completed,
        Self::Cancelled,
    ];

    /// The name used in JSON and in the `status` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Confirmed => "confirmed",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// Whether an order in this status may move to `to`.
    pub fn can_become(self, to: Self) -> bool {
        use OrderStatus::*;
        matches!(
            (self, to),
            (Created, Confirmed)
                | (Confirmed, InProgress)
                | (InProgress, Completed)
                | (Created, Cancelled)
                | (Confirmed, Cancelled)
        )
    }

    pub fn transition(self, to: Self) -> Result<Self, IllegalTransition> {
        if self.can_become(to) {
            Ok(to)
        } else {
            Err(IllegalTransition { from: self, to })
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The body of `PATCH /api/orders/{id}/status`: `{"status": "confirmed"}`.
pub fn parse_status_change(body: &Object) -> Result<OrderStatus, FieldErrors> {
    let status = json::required_str(body, "status").and_then(|s| {
        OrderStatus::parse(s.trim()).ok_or_else(|| {
            let names: Vec<&str> = OrderStatus::ALL.iter().map(|s| s.as_str()).collect();
            FieldError::new("status", format!("must be one of {}", names.join(", ")))
        })
    });
    status.map_err(FieldErrors::from)
}

/// Who may ask for a move to `to`: staff run the workshop and may make any legal move; an
/// order's owner may only cancel it. Whether the move is legal is [`OrderStatus::transition`].
pub fn may_request(to: OrderStatus, staff: bool) -> bool {
    staff || to == OrderStatus::Cancelled
}

/// A status change the state machine forbids: 409.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IllegalTransition {
    pub from: OrderStatus,
    pub to: OrderStatus,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an order that is {} cannot become {}",
            self.from, self.to
        )
    }
}

impl std::error::Error for IllegalTransition {}

/// A booked order, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Order {
    pub id: Uuid,
    pub car_id: Uuid,
    pub user_id: Uuid,
    pub desired_time: DateTime<Utc>,
    pub description: String,
    pub status: OrderStatus,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};
    use OrderStatus::*;

    fn object(value: Value) -> Object {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn new_order_parses_the_seed_example() {
        let body = object(json!({
            "car_id": "550e8400-e29b-41d4-a716-446655440000",
            "desired_time": "2024-12-20T10:00:00Z",
            "description": "ТО"
        }));
        let order = NewOrder::parse(&body).unwrap();
        assert_eq!(
            order.car_id.to_string(),
            "550e8400-e29b-41d4-a716-446655440000"
        );
        assert_eq!(
            order.desired_time.utc().to_rfc3339(),
            "2024-12-20T10:00:00+00:00"
        );
        assert_eq!(order.description.as_str(), "ТО");
    }

    #[test]
    fn desired_time_keeps_the_instant_of_any_offset() {
        let time = DesiredTime::parse("2030-05-01T10:30:00+03:00").unwrap();
        assert_eq!(time.utc().to_rfc3339(), "2030-05-01T07:30:00+00:00");
    }

    #[test]
    fn desired_time_needs_a_full_date_time_with_offset() {
        for bad in [
            "",
            "2030-05-01",
            "2030-05-01T10:30:00",
            "2030-05-01 10:30",
            "tomorrow",
            "2030-02-30T10:00:00Z",
        ] {
            let error = DesiredTime::parse(bad).unwrap_err();
            assert_eq!(error.field, "desired_time", "{bad}");
        }
    }

    #[test]
    fn description_may_be_missing_null_or_empty() {
        let id = "550e8400-e29b-41d4-a716-446655440000";
        for body in [
            json!({"car_id": id, "desired_time": "2030-05-01T10:30:00Z"}),
            json!({"car_id": id, "desired_time": "2030-05-01T10:30:00Z", "description": null}),
            json!({"car_id": id, "desired_time": "2030-05-01T10:30:00Z", "description": ""}),
        ] {
            let order = NewOrder::parse(&object(body)).unwrap();
            assert_eq!(order.description.as_str(), "");
        }
    }

    #[test]
    fn description_is_at_most_2000_characters() {
        assert!(Description::parse(&"ж".repeat(2000)).is_ok());
        assert_eq!(
            Description::parse(&"ж".repeat(2001)).unwrap_err().message,
            "must be at most 2000 characters"
        );
        assert!(Description::parse("a\0b").is_err());
    }

    #[test]
    fn new_order_reports_every_invalid_field_at_once() {
        let body = object(json!({"car_id": 7, "desired_time": "soon", "description": ["x"]}));
        let errors = NewOrder::parse(&body).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["car_id", "desired_time", "description"]);

        let errors = NewOrder::parse(&Object::new()).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["car_id", "desired_time"]);
    }

    #[test]
    fn status_names_round_trip_through_text_and_json() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
            assert_eq!(
                serde_json::to_value(status).unwrap(),
                json!(status.as_str())
            );
        }
        assert_eq!(OrderStatus::parse("in progress"), None);
        assert_eq!(OrderStatus::InProgress.as_str(), "in_progress");
    }

    #[test]
    fn transitions_follow_the_lifecycle_and_nothing_else() {
        let allowed = [
            (Created, Confirmed),
            (Confirmed, InProgress),
            (InProgress, Completed),
            (Created, Cancelled),
            (Confirmed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
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
    fn final_statuses_go_nowhere() {
        for from in [Completed, Cancelled] {
            assert!(OrderStatus::ALL.iter().all(|&to| !from.can_become(to)));
        }
    }

    #[test]
    fn owners_may_only_cancel_and_staff_may_ask_for_anything() {
        for to in OrderStatus::ALL {
            assert!(may_request(to, true), "{to}");
            assert_eq!(may_request(to, false), to == Cancelled, "{to}");
        }
    }

    #[test]
    fn status_change_body_names_the_allowed_values() {
        assert_eq!(
            parse_status_change(&object(json!({"status": " in_progress "}))),
            Ok(InProgress)
        );
        let errors = parse_status_change(&object(json!({"status": "done"}))).unwrap_err();
        assert_eq!(
            errors.get("status").unwrap().message,
            "must be one of created, confirmed, in_progress, completed, cancelled"
        );
        assert!(parse_status_change(&object(json!({}))).is_err());
    }

    #[test]
    fn illegal_transition_explains_itself() {
        let error = InProgress.transition(Cancelled).unwrap_err();
        assert_eq!(
            error.to_string(),
            "an order that is in_progress cannot become cancelled"
        );
    }

    #[test]
    fn order_serializes_with_status_name_and_utc_times() {
        let order = Order {
            id: Uuid::nil(),
            car_id: Uuid::nil(),
            user_id: Uuid::nil(),
            desired_time: DesiredTime::parse("2030-05-01T10:30:00+03:00")
                .unwrap()
                .utc(),
            description: "ТО".into(),
            status: Created,
            created_at: DesiredTime::parse("2025-01-02T03:04:05.678Z")
                .unwrap()
                .utc(),
        };
        assert_eq!(
            serde_json::to_value(&order).unwrap(),
            json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "car_id": "00000000-0000-0000-0000-000000000000",
                "user_id": "00000000-0000-0000-0000-000000000000",
                "desired_time": "2030-05-01T07:30:00Z",
                "description": "ТО",
                "status": "created",
                "created_at": "2025-01-02T03:04:05.678Z"
            })
        );
    }
}
