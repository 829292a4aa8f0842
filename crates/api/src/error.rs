//! The one error shape every component answers with, and the field-error accumulator
//! validation builds it from. Plain Rust: no HTTP or Spin types here, so domain code
//! can return these errors and `cargo test` checks the JSON natively.

use std::fmt;

use serde::ser::{Serialize, SerializeStruct, Serializer};

/// One invalid input field: `{"field":"vin","message":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
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

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Collects every invalid field of a request, so a client learns about all of them at once
/// instead of fixing one per round trip.
///
/// ```
/// use api::{FieldError, FieldErrors};
///
/// let mut errors = FieldErrors::new();
/// let year = errors.check(Ok::<_, FieldError>(2020));
/// let vin = errors.check(Err::<String, _>(FieldError::new("vin", "is required")));
/// assert_eq!((year, vin), (Some(2020), None));
/// assert_eq!(errors.len(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, error: FieldError) {
        self.0.push(error);
    }

    /// Keeps the value of a valid field; records the error of an invalid one.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.push(error);
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
    }

    /// The error for `field`, if it was reported.
    pub fn get(&self, field: &str) -> Option<&FieldError> {
        self.0.iter().find(|error| error.field == field)
    }
}

impl From<FieldError> for FieldErrors {
    fn from(error: FieldError) -> Self {
        Self(vec![error])
    }
}

impl IntoIterator for FieldErrors {
    type Item = FieldError;
    type IntoIter = std::vec::IntoIter<FieldError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// An HTTP error answer: a status, a stable machine-readable `code`, a human message and,
/// for validation errors only, the invalid fields.
///
/// Serializes as `{"error":{"code":"car_not_found","message":"...","fields":[...]}}`.
/// `detail` is for the component's log (why a dependency failed) and is never sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub fields: Vec<FieldError>,
    detail: Option<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            fields: Vec::new(),
            detail: None,
        }
    }

    /// 400 with a caller-chosen code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(400, code, message)
    }

    /// 400 `malformed_json`: the body is empty or not JSON at all.
    pub fn malformed_json(message: impl Into<String>) -> Self {
        Self::bad_request("malformed_json", message)
    }

    /// 401: no valid credentials. The response carries `WWW-Authenticate: Bearer`.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(401, code, message)
    }

    /// 403: authenticated, but this caller may not do this.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(403, code, message)
    }

    /// 404 for a resource that does not exist (or that the caller may not see).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(404, code, message)
    }

    /// 404 `not_found`: no route of the component matches the path.
    pub fn route_not_found(path: &str) -> Self {
        Self::not_found("not_found", format!("no resource at {path}"))
    }

    /// 405 `method_not_allowed`: the path exists, the method does not.
    pub fn method_not_allowed(method: &str, path: &str) -> Self {
        Self::new(
            405,
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        )
    }

    /// 409: the request conflicts with the current state (duplicate key, illegal transition).
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(409, code, message)
    }

    /// 422 `validation_failed` listing every invalid field.
    pub fn unprocessable(fields: FieldErrors) -> Self {
        let message = match fields.as_slice() {
            [only] => format!("invalid field {}: {}", only.field, only.message),
            all => format!("{} fields are invalid", all.len()),
        };
        Self {
            fields: fields.0,
            ..Self::new(422, "validation_failed", message)
        }
    }

    /// 422 with a code of its own, naming the one field at fault: the body is valid as
    /// documented, but what the field names cannot be used now (`catalog_item_retired` on
    /// `items[0].catalog_id`). Clients branch on the code; `fields` says where, as on
    /// `validation_failed`.
    pub fn unprocessable_field(code: &'static str, field: FieldError) -> Self {
        Self {
            fields: vec![field.clone()],
            ..Self::new(422, code, field.to_string())
        }
    }

    /// 500 `internal`. Put the cause in [`ApiError::with_detail`], not in the message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "internal", message)
    }

    /// 500 `configuration`: a Spin variable is missing or unusable.
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(500, "configuration", message)
    }

    /// 502: a dependency answered, but not usefully (5xx, unparsable body).
    pub fn bad_gateway(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(502, code, message)
    }

    /// 503: a dependency could not be reached at all.
    pub fn unavailable(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(503, code, message)
    }

    /// 504: a dependency did not answer in time.
    pub fn gateway_timeout(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(504, code, message)
    }

    /// Replaces the human message, keeping status, code and fields.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// Attaches a cause for the component's log; it never reaches the client.
    pub fn with_detail(mut self, detail: impl fmt::Display) -> Self {
        self.detail = Some(detail.to_string());
        self
    }

    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// Validation errors carry `fields` (possibly empty); no other error does, not even
    /// another 422 such as `nothing_to_pay`.
    fn has_fields(&self) -> bool {
        self.code == "validation_failed" || !self.fields.is_empty()
    }

    /// The JSON body, as bytes.
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing strings and a list of string pairs cannot fail.
        serde_json::to_vec(self).expect("an ApiError always serializes")
    }
}

impl From<FieldErrors> for ApiError {
    fn from(fields: FieldErrors) -> Self {
        Self::unprocessable(fields)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)?;
        if let Some(detail) = &self.detail {
            write!(f, " ({detail})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

impl Serialize for ApiError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        struct Inner<'a>(&'a ApiError);

        impl Serialize for Inner<'_> {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                let error = self.0;
                let len = if error.has_fields() { 3 } else { 2 };
                let mut inner = serializer.serialize_struct("Error", len)?;
                inner.serialize_field("code", error.code)?;
                inner.serialize_field("message", &error.message)?;
                if error.has_fields() {
                    inner.serialize_field("fields", &error.fields)?;
                }
                inner.end()
            }
        }

        let mut outer = serializer.serialize_struct("ErrorBody", 1)?;
        outer.serialize_field("error", &Inner(self))?;
        outer.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn body(error: &ApiError) -> Value {
        serde_json::from_slice(&error.to_json()).unwrap()
    }

    #[test]
    fn not_found_has_code_and_message_only() {
        let error = ApiError::not_found("car_not_found", "no car with id 42");
        assert_eq!(error.status, 404);
        assert_eq!(
            body(&error),
            json!({"error": {"code": "car_not_found", "message": "no car with id 42"}})
        );
    }

    #[test]
    fn validation_error_lists_every_field_in_order() {
        let mut fields = FieldErrors::new();
        fields.push(FieldError::new("vin", "must be 17 characters"));
        fields.push(FieldError::new("year", "must be an integer"));
        let error = ApiError::unprocessable(fields);
        assert_eq!(error.status, 422);
        assert_eq!(
            body(&error),
            json!({"error": {
                "code": "validation_failed",
                "message": "2 fields are invalid",
                "fields": [
                    {"field": "vin", "message": "must be 17 characters"},
                    {"field": "year", "message": "must be an integer"}
                ]
            }})
        );
    }

    #[test]
    fn a_refused_field_keeps_its_own_code_and_names_the_field() {
        let error = ApiError::unprocessable_field(
            "catalog_item_retired",
            FieldError::new("catalog_id", "is no longer sold"),
        );
        assert_eq!(
            body(&error),
            json!({"error": {
                "code": "catalog_item_retired",
                "message": "catalog_id: is no longer sold",
                "fields": [{"field": "catalog_id", "message": "is no longer sold"}]
            }})
        );
    }

    #[test]
    fn single_invalid_field_is_named_in_the_message() {
        let error = ApiError::from(FieldErrors::from(FieldError::new("vin", "is required")));
        assert_eq!(error.message, "invalid field vin: is required");
    }

    #[test]
    fn validation_error_without_named_fields_still_has_a_fields_list() {
        let error = ApiError::unprocessable(FieldErrors::new()).with_message("expected an integer");
        assert_eq!(
            body(&error),
            json!({"error": {"code": "validation_failed", "message": "expected an integer", "fields": []}})
        );
    }

    #[test]
    fn detail_is_logged_but_never_serialized() {
        let error = ApiError::unavailable("database_unavailable", "the database is unavailable")
            .with_detail("connection refused (os error 111)");
        assert_eq!(error.detail(), Some("connection refused (os error 111)"));
        assert!(!String::from_utf8(error.to_json())
            .unwrap()
            .contains("refused"));
        assert_eq!(
            error.to_string(),
            "503 database_unavailable: the database is unavailable (connection refused (os error 111))"
        );
    }

    #[test]
    fn constructors_pick_the_documented_statuses() {
        let cases = [
            (ApiError::malformed_json("x"), 400, "malformed_json"),
            (ApiError::route_not_found("/api/x"), 404, "not_found"),
            (
                ApiError::method_not_allowed("PUT", "/api/x"),
                405,
                "method_not_allowed",
            ),
            (
                ApiError::conflict("duplicate_vin", "x"),
                409,
                "duplicate_vin",
            ),
            (
                ApiError::unprocessable(FieldErrors::new()),
                422,
                "validation_failed",
            ),
            (ApiError::internal("x"), 500, "internal"),
            (ApiError::configuration("x"), 500, "configuration"),
            (
                ApiError::bad_gateway("car_service_failed", "x"),
                502,
                "car_service_failed",
            ),
            (
                ApiError::unavailable("database_unavailable", "x"),
                503,
                "database_unavailable",
            ),
            (
                ApiError::gateway_timeout("car_service_timeout", "x"),
                504,
                "car_service_timeout",
            ),
        ];
        for (error, status, code) in cases {
            assert_eq!((error.status, error.code), (status, code), "{error}");
            assert!(!error.message.is_empty());
        }
    }

    #[test]
    fn field_errors_check_keeps_valid_values_and_records_invalid_ones() {
        let mut errors = FieldErrors::new();
        assert_eq!(errors.check(Ok::<_, FieldError>(1)), Some(1));
        assert_eq!(
            errors.check(Err::<i32, _>(FieldError::new("make", "is required"))),
            None
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors.get("make").unwrap().message, "is required");
        assert!(errors.get("model").is_none());
    }
}
