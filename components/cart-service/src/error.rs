//! Every way a cart-service request can fail, and the one place each maps to a status and a
//! stable `code`. Handlers return `Result<_, CartError>` and use `?`.

use api::{ApiError, FieldError, FieldErrors};
use spin_sdk::http::{IntoResponse, Response};
use uuid::Uuid;

use crate::domain::{TooExpensive, MAX_QUANTITY};

#[derive(Debug)]
pub enum CartError {
    /// 422: the body has invalid fields.
    Invalid(FieldErrors),
    /// 404: `catalog_id` (or the path's id) names no catalog entry.
    UnknownCatalogItem(String),
    /// 422: `catalog_id` names an entry that is no longer sold.
    RetiredCatalogItem(Uuid),
    /// 409: another catalog entry has this name.
    NameTaken(String),
    /// 409: the line would hold more than the limit.
    QuantityLimit,
    /// 409: the cart's total is beyond any real bill.
    TooExpensive,
    /// 404: no line with this id in the caller's cart.
    CartItemNotFound(String),
    /// 409: checkout of an empty cart.
    CartEmpty,
    /// Malformed JSON, missing token, configuration, database, order-service failing:
    /// already an API error.
    Api(ApiError),
}

impl From<CartError> for ApiError {
    fn from(error: CartError) -> Self {
        match error {
            CartError::Invalid(fields) => ApiError::unprocessable(fields),
            CartError::UnknownCatalogItem(id) => ApiError::not_found(
                "catalog_item_not_found",
                format!("no catalog entry with id {id}"),
            ),
            CartError::RetiredCatalogItem(id) => ApiError::unprocessable_field(
                "catalog_item_retired",
                FieldError::new(
                    "catalog_id",
                    format!("catalog entry {id} is retired: it is no longer sold"),
                ),
            ),
            CartError::NameTaken(name) => ApiError::conflict(
                "catalog_name_taken",
                format!("another catalog entry is named {name:?}"),
            ),
            CartError::QuantityLimit => ApiError::conflict(
                "quantity_limit",
                format!("a cart holds at most {MAX_QUANTITY} of one catalog entry"),
            ),
            CartError::TooExpensive => ApiError::conflict(
                "total_too_large",
                "the cart's total is beyond any real bill",
            ),
            CartError::CartItemNotFound(id) => ApiError::not_found(
                "cart_item_not_found",
                format!("no item with id {id} in your cart"),
            ),
            CartError::CartEmpty => {
                ApiError::conflict("cart_empty", "the cart is empty: add items before checkout")
            }
            CartError::Api(error) => error,
        }
    }
}

impl From<ApiError> for CartError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<FieldErrors> for CartError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl From<TooExpensive> for CartError {
    fn from(_: TooExpensive) -> Self {
        Self::TooExpensive
    }
}

impl IntoResponse for CartError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
