//! Every way a fines-service request can fail, and the one place each maps to a status
//! and a stable `code`. Handlers return `Result<_, FinesError>` and use `?`.

use api::{ApiError, FieldErrors};
use spin_sdk::http::{IntoResponse, Response};
use uuid::Uuid;

use crate::domain::{LicensePlate, PlateNotFound};

#[derive(Debug)]
pub enum FinesError {
    /// 422: the query has invalid fields.
    Invalid(FieldErrors),
    /// 404: no fine with this id that the caller may see (also for ids that are not UUIDs).
    FineNotFound(String),
    /// 404: none of the caller's cars has this plate with a registration certificate.
    PlateNotFound(LicensePlate),
    /// 409: the fine is paid already, earlier or by a concurrent request.
    AlreadyPaid(Uuid),
    /// 500: the unpaid fines add up past what `Money` holds; the data is wrong, not the request.
    TotalOutOfRange,
    /// Configuration, database, car-service or payment-service failing (502/503/504):
    /// already an API error.
    Api(ApiError),
}

impl From<FinesError> for ApiError {
    fn from(error: FinesError) -> Self {
        match error {
            FinesError::Invalid(fields) => ApiError::unprocessable(fields),
            FinesError::FineNotFound(id) => {
                ApiError::not_found("fine_not_found", format!("no fine with id {id}"))
            }
            FinesError::PlateNotFound(plate) => ApiError::not_found(
                "license_plate_not_found",
                format!(
                    "none of your cars has licence plate {plate} with a registration certificate"
                ),
            ),
            FinesError::AlreadyPaid(id) => {
                ApiError::conflict("fine_already_paid", format!("fine {id} is already paid"))
            }
            FinesError::TotalOutOfRange => {
                ApiError::internal("the unpaid fines add up to more than an amount can hold")
            }
            FinesError::Api(error) => error,
        }
    }
}

impl From<ApiError> for FinesError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<FieldErrors> for FinesError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl From<PlateNotFound> for FinesError {
    fn from(PlateNotFound(plate): PlateNotFound) -> Self {
        Self::PlateNotFound(plate)
    }
}

impl IntoResponse for FinesError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
