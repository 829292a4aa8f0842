//! Typed access to Spin variables. A component reads its configuration per request, so a
//! missing or empty variable is a clear 500 `configuration` error naming it, never a default.

use spin_sdk::variables::{self, Error};

use crate::error::ApiError;

/// The value of the component variable `name` (declared under `[component.<id>.variables]`).
pub fn variable(name: &str) -> Result<String, ApiError> {
    match variables::get(name) {
        Ok(value) if value.trim().is_empty() => Err(ApiError::configuration(format!(
            "the Spin variable `{name}` is empty"
        ))),
        Ok(value) => Ok(value),
        Err(error) => {
            let (problem, detail) = match error {
                Error::InvalidName(detail) => ("is not a valid variable name", detail),
                Error::Undefined(detail) => ("is not defined for this component", detail),
                Error::Provider(detail) => ("could not be resolved", detail),
                Error::Other(detail) => ("could not be read", detail),
            };
            Err(
                ApiError::configuration(format!("the Spin variable `{name}` {problem}"))
                    .with_detail(detail),
            )
        }
    }
}
