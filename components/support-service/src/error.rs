//! Every way a support-service request can fail, and the one place each maps to a status
//! and a stable `code`. Handlers return `Result<_, SupportError>` and use `?`.

use api::{ApiError, FieldErrors};
use spin_sdk::http::{IntoResponse, Response};
use uuid::Uuid;

use crate::domain::IllegalTransition;

#[derive(Debug)]
pub enum SupportError {
    /// 422: the body or the query string has invalid fields.
    Invalid(FieldErrors),
    /// 404: order-service knows no such order of the caller's.
    UnknownOrder(Uuid),
    /// 404: no ticket with this id the caller may see (also for ids that are not UUIDs).
    TicketNotFound(String),
    /// 409: the state machine forbids this move.
    IllegalTransition(IllegalTransition),
    /// 409: the status changed between reading the ticket and writing the new one.
    StatusChanged(Uuid),
    /// 409: a closed ticket takes no messages.
    TicketClosed(Uuid),
    /// Malformed JSON, configuration, database, order-service failing (502/503/504):
    /// already an API error.
    Api(ApiError),
}

impl From<SupportError> for ApiError {
    fn from(error: SupportError) -> Self {
        match error {
            SupportError::Invalid(fields) => ApiError::unprocessable(fields),
            // 404 as for a car or catalog entry an order names: the body is valid as the
            // document states it (422 is kept for that), but names an order the caller has
            // not got, which no schema can say.
            SupportError::UnknownOrder(id) => ApiError::not_found(
                "order_not_found",
                format!("order_id: you have no order with id {id}"),
            ),
            SupportError::TicketNotFound(id) => {
                ApiError::not_found("ticket_not_found", format!("no ticket with id {id}"))
            }
            SupportError::IllegalTransition(illegal) => {
                ApiError::conflict("illegal_status_change", illegal.to_string())
            }
            SupportError::StatusChanged(id) => ApiError::conflict(
                "status_changed",
                format!("ticket {id} changed status meanwhile; read it again and retry"),
            ),
            SupportError::TicketClosed(id) => ApiError::conflict(
                "ticket_closed",
                format!("ticket {id} is closed and takes no more messages; open a new one"),
            ),
            SupportError::Api(error) => error,
        }
    }
}

impl From<ApiError> for SupportError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<IllegalTransition> for SupportError {
    fn from(illegal: IllegalTransition) -> Self {
        Self::IllegalTransition(illegal)
    }
}

impl From<FieldErrors> for SupportError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl IntoResponse for SupportError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TicketStatus;

    #[test]
    fn each_error_has_its_status_and_code() {
        let id = Uuid::from_u128(7);
        let illegal = TicketStatus::Closed
            .transition(TicketStatus::Open)
            .unwrap_err();
        let cases = [
            (SupportError::UnknownOrder(id), 404, "order_not_found"),
            (
                SupportError::TicketNotFound("x".into()),
                404,
                "ticket_not_found",
            ),
            (illegal.into(), 409, "illegal_status_change"),
            (SupportError::StatusChanged(id), 409, "status_changed"),
            (SupportError::TicketClosed(id), 409, "ticket_closed"),
        ];
        for (error, status, code) in cases {
            let error = ApiError::from(error);
            assert_eq!((error.status, error.code), (status, code), "{error}");
        }
    }
}
