//! Turning a request body into JSON, with honest statuses: 400 when it is not JSON at all,
//! 422 when it is JSON of the wrong shape. Plus small readers for fields of a JSON object,
//! which domain parsers use to report every bad field at once. No HTTP types here.

use serde::de::DeserializeOwned;
use serde_json::error::Category;
use serde_json::Value;

use crate::error::{ApiError, FieldError, FieldErrors};

/// A JSON object, as request bodies are.
pub type Object = serde_json::Map<String, Value>;

/// Deserializes a body: empty or malformed JSON is 400 `malformed_json`; JSON of the wrong
/// shape is 422 `validation_failed`, naming the field when serde does (missing or unknown
/// fields; a wrong type is reported by position only).
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_json(
            "the request body is empty; expected a JSON document",
        ));
    }
    serde_json::from_slice(body).map_err(from_serde_error)
}

/// Parses a body that must be a JSON object (every request body of our API is).
pub fn parse_json_object(body: &[u8]) -> Result<Object, ApiError> {
    match parse_json::<Value>(body)? {
        Value::Object(object) => Ok(object),
        other => Err(
            ApiError::unprocessable(FieldErrors::new()).with_message(format!(
                "the request body must be a JSON object, not {}",
                kind(&other)
            )),
        ),
    }
}

fn from_serde_error(error: serde_json::Error) -> ApiError {
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::malformed_json(format!("the request body is not valid JSON: {error}"))
        }
        Category::Data => {
            let text = error.to_string();
            let mut fields = FieldErrors::new();
            if let Some(field) = quoted_after(&text, "missing field `") {
                fields.push(FieldError::new(field, "is required"));
            } else if let Some(field) = quoted_after(&text, "unknown field `") {
                fields.push(FieldError::new(field, "is not a known field"));
            }
            if fields.is_empty() {
                ApiError::unprocessable(fields).with_message(text)
            } else {
                ApiError::unprocessable(fields)
            }
        }
    }
}

/// The text between `prefix` and the next backtick, as serde's messages quote field names.
fn quoted_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = text.strip_prefix(prefix)?;
    rest.split('`').next().filter(|field| !field.is_empty())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A string field that must be present. `null` counts as missing.
pub fn required_str<'a>(object: &'a Object, field: &str) -> Result<&'a str, FieldError> {
    optional_str(object, field)?.ok_or_else(|| FieldError::new(field, "is required"))
}

/// A string field that may be absent or `null`.
pub fn optional_str<'a>(object: &'a Object, field: &str) -> Result<Option<&'a str>, FieldError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(
            field,
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

/// An integer field that must be present. `2020.0` and `"2020"` are rejected.
pub fn required_i64(object: &Object, field: &str) -> Result<i64, FieldError> {
    match object.get(field) {
        None | Some(Value::Null) => Err(FieldError::new(field, "is required")),
        Some(Value::Number(n)) => n
            .as_i64()
            .ok_or_else(|| FieldError::new(field, "must be a whole number")),
        Some(other) => Err(FieldError::new(
            field,
            format!("must be an integer, not {}", kind(other)),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Login {
        email: String,
        attempts: u32,
    }

    #[test]
    fn empty_body_is_malformed_json() {
        for body in [&b""[..], b"  \n"] {
            let error = parse_json::<Value>(body).unwrap_err();
            assert_eq!((error.status, error.code), (400, "malformed_json"));
        }
    }

    #[test]
    fn broken_json_is_malformed_json() {
        for body in [&b"{"[..], b"{\"a\":}", b"nope", b"{\"a\":1} trailing"] {
            let error = parse_json::<Value>(body).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (400, "malformed_json"),
                "{body:?}"
            );
        }
    }

    #[test]
    fn missing_field_is_422_naming_the_field() {
        let error = parse_json::<Login>(br#"{"attempts": 1}"#).unwrap_err();
        assert_eq!((error.status, error.code), (422, "validation_failed"));
        assert_eq!(error.fields, vec![FieldError::new("email", "is required")]);
    }

    #[test]
    fn unknown_field_is_422_naming_the_field() {
        let error = parse_json::<Login>(br#"{"email": "a@b.c", "attempts": 1, "admin": true}"#)
            .unwrap_err();
        assert_eq!(
            error.fields,
            vec![FieldError::new("admin", "is not a known field")]
        );
    }

    #[test]
    fn wrong_type_is_422_with_serde_message() {
        let error = parse_json::<Login>(br#"{"email": "a@b.c", "attempts": "x"}"#).unwrap_err();
        assert_eq!((error.status, error.code), (422, "validation_failed"));
        assert!(error.fields.is_empty());
        assert!(error.message.contains("invalid type"), "{}", error.message);
    }

    #[test]
    fn body_must_be_an_object() {
        let error = parse_json_object(b"[1, 2]").unwrap_err();
        assert_eq!(error.status, 422);
        assert_eq!(
            error.message,
            "the request body must be a JSON object, not an array"
        );
        assert!(parse_json_object(b"{}").unwrap().is_empty());
    }

    #[test]
    fn field_readers_name_the_problem() {
        let value = json!({"s": "x", "n": 7, "f": 7.5, "null": null, "b": true});
        let object = value.as_object().unwrap();
        assert_eq!(required_str(object, "s"), Ok("x"));
        assert_eq!(
            required_str(object, "null").unwrap_err().message,
            "is required"
        );
        assert_eq!(
            required_str(object, "absent").unwrap_err().message,
            "is required"
        );
        assert_eq!(
            required_str(object, "n").unwrap_err().message,
            "must be a string, not a number"
        );
        assert_eq!(optional_str(object, "absent"), Ok(None));
        assert_eq!(required_i64(object, "n"), Ok(7));
        assert_eq!(
            required_i64(object, "f").unwrap_err().message,
            "must be a whole number"
        );
        assert_eq!(
            required_i64(object, "s").unwrap_err().message,
            "must be an integer, not a string"
        );
        assert_eq!(
            required_i64(object, "b").unwrap_err().field,
            "b".to_string()
        );
    }
}
