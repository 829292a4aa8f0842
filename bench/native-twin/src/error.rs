//! The error shape our components answer with, written again for the twin:
//! `{"error":{"code":...,"message":...}}`, plus `"fields":[...]` on `validation_failed`.
//! Statuses, codes and messages are the ones `api::error`, car-service and order-service use.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One invalid input field: `{"field":"vin","message":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// An error answer. `detail` goes to stderr on a 5xx and never to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `Some` only for `validation_failed` (possibly empty).
    pub fields: Option<Vec<FieldError>>,
    detail: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: None,
            detail: None,
        }
    }

    pub fn with_detail(mut self, detail: impl std::fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    /// 422 `validation_failed` naming every invalid field, with `api`'s message rule.
    pub fn invalid(fields: Vec<FieldError>) -> Self {
        let message = match fields.as_slice() {
            [only] => format!("invalid field {}: {}", only.field, only.message),
            all => format!("{} fields are invalid", all.len()),
        };
        Self {
            fields: Some(fields),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
        }
    }

    /// 422 `validation_failed` with an empty field list (JSON of the wrong shape).
    pub fn invalid_shape(message: impl Into<String>) -> Self {
        Self {
            fields: Some(Vec::new()),
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                message,
            )
        }
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, code, message)
    }

    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed_json", message)
    }

    pub fn car_not_found(id: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "car_not_found",
            format!("no car with id {id}"),
        )
    }

    /// 409 `slot_taken`: every bay is taken during the half hour from `at`.
    pub fn slot_taken(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "slot_taken",
            format!(
                "every bay is taken at some time during the work from {}; \
                 GET /api/orders/slots lists the free start times",
                at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            ),
        )
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no resource at {path}"),
        )
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    pub fn database_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "database_unavailable",
            "the database is unavailable",
        )
    }

    /// A pooled connection could not be had.
    pub fn from_pool(error: deadpool_postgres::PoolError) -> Self {
        Self::database_unavailable().with_detail(error)
    }

    /// A statement failed: the server refusing it is a 500, losing the connection a 503.
    pub fn from_db(error: tokio_postgres::Error) -> Self {
        if error.as_db_error().is_some() {
            Self::internal("a database query failed").with_detail(error)
        } else {
            Self::database_unavailable().with_detail(error)
        }
    }

    pub fn body(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            fields: Option<&'a [FieldError]>,
        }
        #[derive(Serialize)]
        struct Outer<'a> {
            error: Inner<'a>,
        }
        serde_json::to_vec(&Outer {
            error: Inner {
                code: self.code,
                message: &self.message,
                fields: self.fields.as_deref(),
            },
        })
        .expect("strings always serialize")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            match &self.detail {
                Some(detail) => eprintln!(
                    "{} {}: {} ({detail})",
                    self.status.as_u16(),
                    self.code,
                    self.message
                ),
                None => eprintln!("{} {}: {}", self.status.as_u16(), self.code, self.message),
            }
        }
        let mut response = crate::json_bytes(self.status, self.body());
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3, as api::http does.
            let challenge = if self.code == "missing_token" {
                HeaderValue::from_static("Bearer")
            } else {
                HeaderValue::from_static("Bearer error=\"invalid_token\"")
            };
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_our_shape() {
        let error = ApiError::car_not_found("42");
        assert_eq!(
            String::from_utf8(error.body()).unwrap(),
            r#"{"error":{"code":"car_not_found","message":"no car with id 42"}}"#
        );
        let error = ApiError::invalid(vec![FieldError::new("vin", "is required")]);
        assert_eq!(
            String::from_utf8(error.body()).unwrap(),
            r#"{"error":{"code":"validation_failed","message":"invalid field vin: is required","fields":[{"field":"vin","message":"is required"}]}}"#
        );
        let error = ApiError::invalid_shape("the request body must be a JSON object, not null");
        assert!(String::from_utf8(error.body())
            .unwrap()
            .ends_with(r#""fields":[]}}"#));
    }
}
