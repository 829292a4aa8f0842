//! Every way a user-service request can fail, and the one place each maps to a status
//! and a stable `code`. Handlers return `Result<_, UserError>` and use `?`.

use api::{ApiError, FieldErrors};
use spin_sdk::http::{IntoResponse, Response};

use auth::Email;

use crate::domain::Refusal;

#[derive(Debug)]
pub enum UserError {
    /// 422: the body has invalid fields.
    Invalid(FieldErrors),
    /// 409: an account with this email exists.
    EmailTaken(Email),
    /// 401: unknown email or wrong password; the two are not told apart.
    InvalidCredentials,
    /// 401: the token is valid but its user no longer exists.
    UnknownUser,
    /// 429: too many failed logins for this account or from this address; try again after
    /// this many seconds (`Retry-After`). Answered before the password is checked.
    TooManyAttempts { retry_after_seconds: u64 },
    /// 401: a refresh token that opens nothing (see [`Refusal`]); a reused one has just
    /// revoked its session.
    RefreshRefused(Refusal),
    /// Malformed JSON, missing token, configuration, database: already an API error.
    Api(ApiError),
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Invalid(fields) => ApiError::unprocessable(fields),
            UserError::EmailTaken(email) => ApiError::conflict(
                "email_taken",
                format!("an account with email {} already exists", email.as_str()),
            ),
            UserError::InvalidCredentials => ApiError::unauthorized(
                "invalid_credentials",
                "the email or the password is incorrect",
            ),
            UserError::UnknownUser => {
                ApiError::unauthorized("invalid_token", "the access token's user does not exist")
            }
            UserError::TooManyAttempts {
                retry_after_seconds,
            } => ApiError::new(
                429,
                "too_many_attempts",
                format!("too many failed logins; try again in {retry_after_seconds} seconds"),
            ),
            UserError::RefreshRefused(refusal) => {
                let (code, message) = match refusal {
                    Refusal::Unknown => (
                        "refresh_token_invalid",
                        "the refresh token is not one this service issued",
                    ),
                    Refusal::Expired => (
                        "refresh_token_expired",
                        "the refresh token's session has ended; log in again",
                    ),
                    Refusal::Revoked => (
                        "refresh_token_revoked",
                        "the refresh token's session was ended (logout, or a token of it was reused); log in again",
                    ),
                    Refusal::Reused => (
                        "refresh_token_reused",
                        "the refresh token was used before, so it may have been stolen: its session is ended; log in again",
                    ),
                };
                ApiError::unauthorized(code, message)
            }
            UserError::Api(error) => error,
        }
    }
}

impl From<ApiError> for UserError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<FieldErrors> for UserError {
    fn from(fields: FieldErrors) -> Self {
        Self::Invalid(fields)
    }
}

impl IntoResponse for UserError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            UserError::TooManyAttempts {
                retry_after_seconds,
            } => Some(*retry_after_seconds),
            _ => None,
        };
        let mut response = ApiError::from(self).into_response();
        if let Some(seconds) = retry_after {
            response.set_header("retry-after", seconds.to_string());
        }
        response
    }
}
