//! Every way a payment-service request can fail, and the one place each maps to a status
//! and a stable `code`. Handlers return `Result<_, PaymentError>` and use `?`.

use api::money::Money;
use api::{ApiError, FieldError, FieldErrors};
use spin_sdk::http::{IntoResponse, Response};
use uuid::Uuid;

use crate::domain::Target;

#[derive(Debug)]
pub enum PaymentError {
    /// 422: the body or the Idempotency-Key header is invalid.
    Invalid(FieldErrors),
    /// 404: no such order, or not the caller's (order-service decides).
    OrderNotFound(Uuid),
    /// 404: no such fine, or not one the caller can show is theirs (fines-service decides).
    FineNotFound(Uuid),
    /// 404: no such payment, or not the caller's.
    PaymentNotFound(String),
    /// 409: a cancelled order is not paid.
    OrderCancelled(Uuid),
    /// 422: the order books nothing, so there is nothing to charge.
    NothingToPay(Uuid),
    /// 409: the order has its payment already.
    AlreadyPaid(Uuid),
    /// 409: the fine is paid already.
    FineAlreadyPaid(Uuid),
    /// 409: another payment of the order or fine is being charged right now.
    InProgress(Target),
    /// 409: the order owner's bonus balance is smaller than the bonuses asked for.
    InsufficientBonuses(Money),
    /// 402: the processor declined the charge.
    Declined,
    /// 422: an Idempotency-Key sent again with another request.
    KeyReused,
    /// 409: a refund of a payment still being processed.
    RefundPending(Uuid),
    /// 409: a refund of a payment that charged nothing (declined) or pays a fine.
    NotRefundable(Uuid),
    /// 409: a refund of a payment whose order is in progress or completed (its status).
    OrderInWork(Uuid, String),
    /// Malformed JSON, missing token, configuration, database, order-service failing:
    /// already an API error.
    Api(ApiError),
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        match error {
            PaymentError::Invalid(fields) => ApiError::unprocessable(fields),
            PaymentError::OrderNotFound(id) => {
                ApiError::not_found("order_not_found", format!("no order with id {id}"))
            }
            PaymentError::FineNotFound(id) => {
                ApiError::not_found("fine_not_found", format!("no fine with id {id}"))
            }
            PaymentError::PaymentNotFound(id) => {
                ApiError::not_found("payment_not_found", format!("no payment with id {id}"))
            }
            PaymentError::OrderCancelled(id) => ApiError::conflict(
                "order_cancelled",
                format!("order {id} is cancelled and cannot be paid"),
            ),
            PaymentError::NothingToPay(id) => ApiError::new(
                422,
                "nothing_to_pay",
                format!("order {id} books no services or goods, so there is nothing to pay"),
            ),
            PaymentError::AlreadyPaid(id) => {
                ApiError::conflict("order_already_paid", format!("order {id} is paid already"))
            }
            PaymentError::FineAlreadyPaid(id) => {
                ApiError::conflict("fine_already_paid", format!("fine {id} is paid already"))
            }
            PaymentError::InProgress(target) => {
                let what = match target {
                    Target::Order(id) => format!("order {id}"),
                    Target::Fine(id) => format!("fine {id}"),
                };
                ApiError::conflict(
                    "payment_in_progress",
                    format!(
                        "another payment of {what} is being processed; \
                         see GET /api/payments for its outcome"
                    ),
                )
            }
            PaymentError::InsufficientBonuses(bonus) => ApiError::conflict(
                "insufficient_bonuses",
                format!(
                    "the bonus balance is smaller than bonus_amount {bonus}; \
                     nothing was charged or taken"
                ),
            ),
            PaymentError::Declined => ApiError::new(
                402,
                "payment_declined",
                "the payment was declined; nothing was charged",
            ),
            PaymentError::KeyReused => ApiError::new(
                422,
                "idempotency_key_reused",
                "this Idempotency-Key was used for another request; use a new key",
            ),
            PaymentError::RefundPending(id) => ApiError::conflict(
                "payment_pending",
                format!("payment {id} is still being processed; ask again once it has an outcome"),
            ),
            PaymentError::NotRefundable(id) => ApiError::conflict(
                "payment_not_refundable",
                format!("payment {id} cannot be refunded: only an order's succeeded payment can"),
            ),
            PaymentError::OrderInWork(id, status) => ApiError::conflict(
                "order_in_work",
                format!(
                    "order {id} is {status}: a payment is refunded only before work starts \
                     (created or confirmed)"
                ),
            ),
            PaymentError::Api(error) => error,
        }
    }
}

impl From<ApiError> for PaymentError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<FieldError> for PaymentError {
    fn from(field: FieldError) -> Self {
        Self::Invalid(field.into())
    }
}

impl From<FieldErrors> for PaymentError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl IntoResponse for PaymentError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
