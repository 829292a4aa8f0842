//! Every way a car-service request can fail, and the one place each maps to a status
//! and a stable `code`. Handlers return `Result<_, CarError>` and use `?`.

use api::{ApiError, FieldErrors};
use spin_sdk::http::{IntoResponse, Response};

use crate::documents::DatesConflict;
use crate::domain::{ForeignOwner, Vin};

#[derive(Debug)]
pub enum CarError {
    /// 422: the body has invalid fields.
    Invalid(FieldErrors),
    /// 404: no car with this id (also for ids that are not UUIDs).
    CarNotFound(String),
    /// 403: a customer named another user as the owner.
    ForeignOwner(ForeignOwner),
    /// 404: the car has no document with this id.
    DocumentNotFound(String),
    /// 404: the document exists but has no scan attached.
    NoScan(uuid::Uuid),
    /// 409: a car with this VIN is already registered.
    DuplicateVin(Vin),
    /// 409: a document's dates contradict today or each other (no schema can say so).
    DocumentDates(DatesConflict),
    /// Malformed JSON, configuration, database: already an API error.
    Api(ApiError),
}

impl CarError {
    pub fn not_found(id: impl ToString) -> Self {
        Self::CarNotFound(id.to_string())
    }
}

impl From<CarError> for ApiError {
    fn from(error: CarError) -> Self {
        match error {
            CarError::Invalid(fields) => ApiError::unprocessable(fields),
            CarError::CarNotFound(id) => {
                ApiError::not_found("car_not_found", format!("no car with id {id}"))
            }
            CarError::ForeignOwner(ForeignOwner(owner)) => ApiError::forbidden(
                "foreign_owner",
                format!(
                    "owner_id {owner} is not you: a car can only be registered for yourself \
                     (leave owner_id out, or use your own id)"
                ),
            ),
            CarError::DocumentNotFound(id) => ApiError::not_found(
                "document_not_found",
                format!("this car has no document with id {id}"),
            ),
            CarError::NoScan(id) => {
                ApiError::not_found("no_scan", format!("document {id} has no scan attached"))
            }
            CarError::DuplicateVin(vin) => ApiError::conflict(
                "duplicate_vin",
                format!("a car with VIN {} is already registered", vin.as_str()),
            ),
            CarError::DocumentDates(DatesConflict(message)) => {
                ApiError::conflict("document_dates_conflict", message)
            }
            CarError::Api(error) => error,
        }
    }
}

impl From<ApiError> for CarError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<ForeignOwner> for CarError {
    fn from(error: ForeignOwner) -> Self {
        Self::ForeignOwner(error)
    }
}

impl From<FieldErrors> for CarError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl IntoResponse for CarError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}
