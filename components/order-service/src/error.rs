//! Every way an order-service request can fail, and the one place each maps to a status
//! and a stable `code`. Handlers return `Result<_, OrderError>` and use `?`.

use api::{ApiError, FieldError, FieldErrors};

use crate::domain::{IllegalTransition, OrderStatus, TimePassed, Unpriced};
use crate::schedule::OutsideHours;
use crate::store::ShopRefused;
use chrono::{DateTime, Utc};
use spin_sdk::http::{IntoResponse, Response};
use uuid::Uuid;

#[derive(Debug)]
pub enum OrderError {
    /// 422: the body has invalid fields.
    Invalid(FieldErrors),
    /// 404: no order with this id (also for ids that are not UUIDs).
    OrderNotFound(String),
    /// 403: a customer asked for a status only staff may set.
    StaffOnly(OrderStatus),
    /// 409: the state machine forbids this move.
    IllegalTransition(IllegalTransition),
    /// 409: the status changed between reading the order and writing the new one.
    StatusChanged(Uuid),
    /// 409: the order's payment was still being processed when the cancellation stopped
    /// waiting for it.
    PaymentPending(Uuid),
    /// 409: only a completed order can be reviewed.
    NotCompleted(Uuid),
    /// 409: the order has its review.
    AlreadyReviewed(Uuid),
    /// 404: car-service knows no car with this id.
    CarNotFound(Uuid),
    /// 409: the booking time has passed.
    TimePassed(TimePassed),
    /// 404 (an unknown catalog entry), 422 (a retired one) or 409 (a total beyond any
    /// real bill).
    Unpriced(Unpriced),
    /// 422: the work does not fit the opening hours at that time.
    OutsideHours(Box<OutsideHours>),
    /// 409: every bay is taken at some moment of the work starting then.
    SlotTaken(DateTime<Utc>),
    /// 409: only a `created` or `confirmed` order moves to another time.
    NotMovable(Uuid, OrderStatus),
    /// 409: a completed or cancelled order is not assigned.
    Closed(Uuid, OrderStatus),
    /// 422 (unknown time zone) or 409 (a bay to be removed holds orders).
    Shop(ShopRefused),
    /// Malformed JSON, configuration, database, car-service failing (502/503/504):
    /// already an API error.
    Api(ApiError),
}

impl From<OrderError> for ApiError {
    fn from(error: OrderError) -> Self {
        match error {
            OrderError::Invalid(fields) => ApiError::unprocessable(fields),
            OrderError::OrderNotFound(id) => {
                ApiError::not_found("order_not_found", format!("no order with id {id}"))
            }
            OrderError::StaffOnly(to) => ApiError::forbidden(
                "staff_only",
                format!("only staff may set an order's status to {to}; its owner may cancel it"),
            ),
            OrderError::IllegalTransition(illegal) => {
                ApiError::conflict("illegal_status_change", illegal.to_string())
            }
            OrderError::StatusChanged(id) => ApiError::conflict(
                "status_changed",
                format!("order {id} changed status meanwhile; read it again and retry"),
            ),
            OrderError::PaymentPending(id) => ApiError::conflict(
                "payment_pending",
                format!(
                    "order {id} has a payment still being processed; cancel again once it has \
                     an outcome (a succeeded payment is then refunded)"
                ),
            ),
            OrderError::TimePassed(passed) => {
                ApiError::conflict("desired_time_passed", passed.to_string())
            }
            OrderError::Unpriced(Unpriced::UnknownEntry { index, id }) => ApiError::not_found(
                "catalog_item_not_found",
                format!("items[{index}].catalog_id: no catalog entry with id {id}"),
            ),
            OrderError::Unpriced(Unpriced::RetiredEntry { index, id }) => {
                ApiError::unprocessable_field(
                    "catalog_item_retired",
                    FieldError::new(
                        format!("items[{index}].catalog_id"),
                        format!("catalog entry {id} is retired: it is no longer sold"),
                    ),
                )
            }
            OrderError::Unpriced(Unpriced::TooLarge) => ApiError::conflict(
                "total_too_large",
                "the order's total is beyond any real bill",
            ),
            OrderError::NotCompleted(id) => ApiError::conflict(
                "order_not_completed",
                format!("order {id} is not completed yet: review it once the work is done"),
            ),
            OrderError::AlreadyReviewed(id) => ApiError::conflict(
                "already_reviewed",
                format!("order {id} already has a review"),
            ),
            OrderError::CarNotFound(id) => {
                ApiError::not_found("car_not_found", format!("no car with id {id}"))
            }
            OrderError::OutsideHours(outside) => ApiError::unprocessable_field(
                "outside_opening_hours",
                FieldError::new("desired_time", outside.to_string()),
            ),
            OrderError::SlotTaken(at) => ApiError::conflict(
                "slot_taken",
                format!(
                    "every bay is taken at some time during the work from {}; \
                     GET /api/orders/slots lists the free start times",
                    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
                ),
            ),
            OrderError::NotMovable(id, status) => ApiError::conflict(
                "order_not_movable",
                format!("order {id} is {status}: only a created or confirmed order moves"),
            ),
            OrderError::Closed(id, status) => ApiError::conflict(
                "order_closed",
                format!("order {id} is {status}: it is no longer assigned"),
            ),
            OrderError::Shop(ShopRefused::UnknownTimeZone) => {
                ApiError::unprocessable(FieldErrors::from(FieldError::new(
                    "time_zone",
                    "is not a time zone the database knows (an IANA name, e.g. Europe/Moscow)",
                )))
            }
            OrderError::Shop(ShopRefused::BayInUse(bay)) => ApiError::conflict(
                "bays_in_use",
                format!(
                    "bay {bay} holds orders from now on: move or cancel them before removing it"
                ),
            ),
            OrderError::Api(error) => error,
        }
    }
}

impl From<Unpriced> for OrderError {
    fn from(unpriced: Unpriced) -> Self {
        Self::Unpriced(unpriced)
    }
}

impl From<ApiError> for OrderError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<IllegalTransition> for OrderError {
    fn from(illegal: IllegalTransition) -> Self {
        Self::IllegalTransition(illegal)
    }
}

impl From<FieldErrors> for OrderError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl IntoResponse for OrderError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
