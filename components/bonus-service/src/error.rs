//! Every way a bonus-service request can fail, and the one place each maps to a status
//! and a stable `code`. Handlers return `Result<_, BonusError>` and use `?`.

use api::{ApiError, FieldErrors};
use chrono::{DateTime, Utc};
use spin_sdk::http::{IntoResponse, Response};
use uuid::Uuid;

use crate::domain::{Expired, PromocodeCode};

#[derive(Debug)]
pub enum BonusError {
    /// 422: the body or the query has invalid fields.
    Invalid(FieldErrors),
    /// 401: an event delivery without the relay's `x-relay-token`, or with another one.
    InvalidRelayToken,
    /// 403: an event without a valid signature of payment-service (`event_signing_key`).
    InvalidSignature(events::Refused),
    /// 500: the `bonus_fail_events` test switch is on, so deliveries fail on purpose.
    FailingOnPurpose,
    /// 409: the balance is smaller than the amount to spend (now, or after a concurrent spend).
    InsufficientBonuses,
    /// 409: a payment's bonuses were reversed (or reversed before any debit): that payment
    /// never takes bonuses again.
    DebitReversed(Uuid),
    /// 409: a reversal from an attempt at a payment older than the one now holding its debit.
    DebitTakenOver(Uuid),
    /// 409: the payment's debit was made for another user, order or amount.
    DebitMismatch(Uuid),
    /// 404: no promocode by this name.
    PromocodeNotFound(PromocodeCode),
    /// 422: the promocode's time is over.
    PromocodeExpired(PromocodeCode, DateTime<Utc>),
    /// 409: this user applied this promocode before (or concurrently).
    PromocodeAlreadyUsed(PromocodeCode),
    /// Malformed JSON, missing token, configuration, database: already an API error.
    Api(ApiError),
}

impl From<BonusError> for ApiError {
    fn from(error: BonusError) -> Self {
        match error {
            BonusError::Invalid(fields) => ApiError::unprocessable(fields),
            BonusError::InvalidRelayToken => ApiError::unauthorized(
                "invalid_relay_token",
                "only the relay delivers events: send its token in the x-relay-token header",
            ),
            BonusError::InvalidSignature(refused) => ApiError::new(
                403,
                "invalid_event_signature",
                format!("only events payment-service signed are accrued: {refused}"),
            ),
            BonusError::FailingOnPurpose => ApiError::new(
                500,
                "failing_on_purpose",
                "the bonus_fail_events test switch is on: event deliveries fail, nothing is recorded",
            ),
            BonusError::InsufficientBonuses => ApiError::conflict(
                "insufficient_bonuses",
                "the bonus balance is smaller than the amount to spend",
            ),
            BonusError::DebitReversed(payment) => ApiError::conflict(
                "bonus_debit_reversed",
                format!("the bonuses of payment {payment} were given back; it takes none again"),
            ),
            BonusError::DebitTakenOver(payment) => ApiError::conflict(
                "bonus_debit_taken_over",
                format!(
                    "payment {payment} was taken over by a newer attempt, which holds its bonuses"
                ),
            ),
            BonusError::DebitMismatch(payment) => ApiError::conflict(
                "bonus_debit_mismatch",
                format!("payment {payment} took bonuses for another user, order or amount"),
            ),
            BonusError::PromocodeNotFound(code) => {
                ApiError::not_found("promocode_not_found", format!("no promocode {code}"))
            }
            BonusError::PromocodeExpired(code, expires_at) => ApiError::new(
                422,
                "promocode_expired",
                format!(
                    "promocode {code} expired at {}",
                    expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ),
            BonusError::PromocodeAlreadyUsed(code) => ApiError::conflict(
                "promocode_already_used",
                format!("you have applied promocode {code} already"),
            ),
            BonusError::Api(error) => error,
        }
    }
}

impl From<ApiError> for BonusError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<FieldErrors> for BonusError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl BonusError {
    pub fn expired(code: PromocodeCode, Expired(at): Expired) -> Self {
        Self::PromocodeExpired(code, at)
    }
}

impl IntoResponse for BonusError {
    fn into_response(self) -> Response {
        let relay = matches!(self, Self::InvalidRelayToken);
        let mut response = ApiError::from(self).into_response();
        if relay {
            // A 401 must name a scheme (RFC 9110 §11.6.1), and the shared Bearer challenge
            // would send a client the wrong way: this route takes no user token.
            response.set_header("www-authenticate", "X-Relay-Token realm=\"bonus-events\"");
        }
        response
    }
}
