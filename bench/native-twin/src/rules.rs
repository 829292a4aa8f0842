//! The input rules of car-service and order-service, written plainly for the twin: the
//! bearer token, request bodies, a car to register and an order to book. Same statuses,
//! codes, field names and messages as the components; nothing here touches the network.

use auth::{Role, Secret, TokenError};
use axum::http::{header, HeaderMap};
use chrono::{DateTime, Datelike, FixedOffset, SecondsFormat, Timelike, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::{ApiError, FieldError};

type Object = Map<String, Value>;

/// Who calls, from a verified token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
}

impl Caller {
    /// Its owner or staff.
    pub fn may_access(&self, owner: Uuid) -> bool {
        self.user_id == owner || self.role == Role::Staff
    }
}

/// `Authorization: Bearer <token>` verified with HS256, as `api::auth::caller` does.
pub fn caller(headers: &HeaderMap, secret: &Secret) -> Result<Caller, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "missing_token",
            "this endpoint needs an `Authorization: Bearer <token>` header; get a token from POST /api/users/login",
        ));
    };
    let header = std::str::from_utf8(value.as_bytes()).map_err(|_| invalid_header())?;
    let token = match header.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            token.trim()
        }
        _ => return Err(invalid_header()),
    };
    let claims = auth::token::verify(secret, token, unix_now()).map_err(|error| {
        let code = match error {
            TokenError::Expired => "token_expired",
            _ => "invalid_token",
        };
        ApiError::unauthorized(code, error.to_string())
    })?;
    Ok(Caller {
        user_id: claims.sub,
        role: claims.role,
    })
}

fn invalid_header() -> ApiError {
    ApiError::unauthorized(
        "invalid_token",
        "the Authorization header must be `Bearer <token>`",
    )
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// A body that must be a JSON object: 400 `malformed_json` when it is not JSON, 422 when
/// it is JSON but not an object.
pub fn json_object(body: &[u8]) -> Result<Object, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::malformed_json(
            "the request body is empty; expected a JSON document",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(ApiError::invalid_shape(format!(
            "the request body must be a JSON object, not {}",
            kind(&other)
        ))),
        Err(error) => Err(ApiError::malformed_json(format!(
            "the request body is not valid JSON: {error}"
        ))),
    }
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

fn optional_str<'a>(object: &'a Object, field: &str) -> Result<Option<&'a str>, FieldError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(FieldError::new(
            field,
            format!("must be a string, not {}", kind(other)),
        )),
    }
}

fn required_str<'a>(object: &'a Object, field: &str) -> Result<&'a str, FieldError> {
    optional_str(object, field)?.ok_or_else(|| FieldError::new(field, "is required"))
}

fn required_i64(object: &Object, field: &str) -> Result<i64, FieldError> {
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

fn uuid_field(field: &str, s: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(s.trim()).map_err(|_| FieldError::new(field, "must be a UUID"))
}

/// Keeps the value of a valid field, records the error of an invalid one.
fn check<T>(errors: &mut Vec<FieldError>, result: Result<T, FieldError>) -> Option<T> {
    result.map_err(|error| errors.push(error)).ok()
}

/// `POST /api/cars`: every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCar {
    pub owner_id: Option<Uuid>,
    pub license_plate: String,
    pub vin: String,
    pub make: String,
    pub model: String,
    pub year: i32,
}

impl NewCar {
    pub fn parse(body: &Object) -> Result<Self, Vec<FieldError>> {
        Self::parse_in(body, Utc::now().year())
    }

    pub fn parse_in(body: &Object, current_year: i32) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let owner_id = check(
            &mut errors,
            optional_str(body, "owner_id")
                .and_then(|s| s.map(|s| uuid_field("owner_id", s)).transpose()),
        );
        let license_plate = check(
            &mut errors,
            required_str(body, "license_plate").and_then(license_plate),
        );
        let vin = check(&mut errors, required_str(body, "vin").and_then(vin));
        let make = check(
            &mut errors,
            required_str(body, "make").and_then(|s| name("make", s)),
        );
        let model = check(
            &mut errors,
            required_str(body, "model").and_then(|s| name("model", s)),
        );
        let year = check(
            &mut errors,
            required_i64(body, "year").and_then(|y| model_year(y, current_year)),
        );
        match (owner_id, license_plate, vin, make, model, year) {
            (
                Some(owner_id),
                Some(license_plate),
                Some(vin),
                Some(make),
                Some(model),
                Some(year),
            ) => Ok(Self {
                owner_id,
                license_plate,
                vin,
                make,
                model,
                year,
            }),
            _ => Err(errors),
        }
    }
}

/// 17 letters or digits without I, O or Q, upper-cased.
fn vin(s: &str) -> Result<String, FieldError> {
    let s = s.trim();
    let valid = s.len() == 17
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric() && !matches!(c.to_ascii_uppercase(), 'I' | 'O' | 'Q')
        });
    if valid {
        Ok(s.to_ascii_uppercase())
    } else {
        Err(FieldError::new(
            "vin",
            "must be 17 letters or digits, without I, O or Q",
        ))
    }
}

/// 1 to 12 Latin or Cyrillic letters, digits, spaces or dashes (at least one sign), upper-cased.
fn license_plate(s: &str) -> Result<String, FieldError> {
    fn letter(c: char) -> bool {
        let latin = c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(&c);
        let cyrillic = ('\u{0400}'..='\u{04FF}').contains(&c);
        c.is_alphabetic() && (latin || cyrillic)
    }
    let plate = s.trim().to_uppercase();
    let length = plate.chars().count();
    let allowed = plate
        .chars()
        .all(|c| letter(c) || c.is_ascii_digit() || c == ' ' || c == '-');
    let has_sign = plate.chars().any(|c| letter(c) || c.is_ascii_digit());
    if (1..=12).contains(&length) && allowed && has_sign {
        Ok(plate)
    } else {
        Err(FieldError::new(
            "license_plate",
            "must be 1 to 12 Latin or Cyrillic letters, digits, spaces or dashes",
        ))
    }
}

/// A make or model: trimmed, 1 to 64 characters, no control characters.
fn name(field: &str, s: &str) -> Result<String, FieldError> {
    let s = s.trim();
    let length = s.chars().count();
    if length == 0 {
        Err(FieldError::new(field, "must not be empty"))
    } else if length > 64 {
        Err(FieldError::new(field, "must be at most 64 characters"))
    } else if s.chars().any(char::is_control) {
        Err(FieldError::new(
            field,
            "must not contain control characters",
        ))
    } else {
        Ok(s.to_owned())
    }
}

/// From 1886 to next year.
fn model_year(year: i64, current_year: i32) -> Result<i32, FieldError> {
    let last = current_year + 1;
    match i32::try_from(year) {
        Ok(year) if (1886..=last).contains(&year) => Ok(year),
        _ => Err(FieldError::new(
            "year",
            format!("must be between 1886 and {last}"),
        )),
    }
}

/// `POST /api/orders` without catalog items: every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub car_id: Uuid,
    pub desired_time: DateTime<Utc>,
    pub description: String,
}

impl NewOrder {
    pub fn parse(body: &Object) -> Result<Self, Vec<FieldError>> {
        Self::parse_at(body, Utc::now())
    }

    pub fn parse_at(body: &Object, now: DateTime<Utc>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let car_id = check(
            &mut errors,
            required_str(body, "car_id").and_then(|s| uuid_field("car_id", s)),
        );
        let desired_time = check(
            &mut errors,
            required_str(body, "desired_time").and_then(|s| desired_time(s, now)),
        );
        let description = check(
            &mut errors,
            optional_str(body, "description").and_then(|s| description(s.unwrap_or_default())),
        );
        // The twin books no catalog items (that would chain to cart-service too).
        let items = match body.get("items") {
            None | Some(Value::Null) => true,
            Some(Value::Array(list)) if list.is_empty() => true,
            Some(_) => {
                errors.push(FieldError::new(
                    "items",
                    "catalog items are not supported by the native twin",
                ));
                false
            }
        };
        match (car_id, desired_time, description, items) {
            (Some(car_id), Some(desired_time), Some(description), true) => Ok(Self {
                car_id,
                desired_time,
                description,
            }),
            _ => Err(errors),
        }
    }
}

/// RFC 3339 with an offset, on the hour or half hour (in its own offset), after `now`.
fn desired_time(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, FieldError> {
    let time: DateTime<FixedOffset> = DateTime::parse_from_rfc3339(s.trim()).map_err(|_| {
        FieldError::new(
            "desired_time",
            "must be an RFC 3339 date-time with an offset, e.g. 2030-05-01T10:30:00+03:00",
        )
    })?;
    if !time.minute().is_multiple_of(30) || time.second() != 0 || time.nanosecond() != 0 {
        return Err(FieldError::new(
            "desired_time",
            "must start on the hour or the half hour, e.g. 10:00 or 10:30",
        ));
    }
    let utc = time.with_timezone(&Utc);
    if utc <= now {
        return Err(FieldError::new(
            "desired_time",
            format!(
                "must be in the future: {} has passed",
                utc.to_rfc3339_opts(SecondsFormat::AutoSi, true)
            ),
        ));
    }
    Ok(utc)
}

/// Up to 2000 characters, no NUL.
fn description(s: &str) -> Result<String, FieldError> {
    if s.chars().count() > 2000 {
        Err(FieldError::new(
            "description",
            "must be at most 2000 characters",
        ))
    } else if s.contains('\0') {
        Err(FieldError::new(
            "description",
            "must not contain NUL characters",
        ))
    } else {
        Ok(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Object {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    fn now() -> DateTime<Utc> {
        "2026-11-25T12:00:00Z".parse().unwrap()
    }

    fn order(desired_time: &str) -> Result<NewOrder, Vec<FieldError>> {
        NewOrder::parse_at(
            &object(json!({
                "car_id": "550e8400-e29b-41d4-a716-446655440000",
                "desired_time": desired_time,
                "description": "ТО"
            })),
            now(),
        )
    }

    fn messages(result: Result<NewOrder, Vec<FieldError>>) -> Vec<String> {
        result
            .unwrap_err()
            .into_iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect()
    }

    #[test]
    fn slots_are_on_the_hour_or_half_hour_in_the_given_offset() {
        for ok in [
            "2026-12-20T10:00:00Z",
            "2026-12-20T10:30:00+03:00",
            " 2026-12-20T10:30:00.000Z ",
        ] {
            assert!(order(ok).is_ok(), "{ok}");
        }
        assert_eq!(
            order("2026-12-20T10:30:00+03:00").unwrap().desired_time,
            "2026-12-20T07:30:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        for off_slot in [
            "2026-12-20T10:15:00Z",
            "2026-12-20T10:00:01Z",
            "2026-12-20T10:00:00.5Z",
            "2026-12-20T10:15:00+05:45",
        ] {
            assert_eq!(
                messages(order(off_slot)),
                ["desired_time: must start on the hour or the half hour, e.g. 10:00 or 10:30"],
                "{off_slot}"
            );
        }
        // 10:30 as written, 04:45 in UTC: the rule reads the time in its own offset.
        assert!(order("2026-12-20T10:30:00+05:45").is_ok());
    }

    #[test]
    fn the_past_and_now_are_refused_and_formats_need_an_offset() {
        assert_eq!(
            messages(order("2026-11-25T12:00:00Z")),
            ["desired_time: must be in the future: 2026-11-25T12:00:00Z has passed"]
        );
        assert_eq!(
            messages(order("2026-11-25T14:30:00+03:00")),
            ["desired_time: must be in the future: 2026-11-25T11:30:00Z has passed"]
        );
        for bad in ["2026-12-20T10:00:00", "2026-12-20", "tomorrow"] {
            assert_eq!(
                messages(order(bad)),
                ["desired_time: must be an RFC 3339 date-time with an offset, e.g. 2030-05-01T10:30:00+03:00"]
            );
        }
    }

    #[test]
    fn every_bad_order_field_is_reported_in_order() {
        let body = object(json!({
            "car_id": "nope",
            "description": "x".repeat(2001),
            "items": [{"catalog_id": "6b1f2c1e-0001-4000-8000-000000000001"}]
        }));
        let fields: Vec<String> = NewOrder::parse_at(&body, now())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["car_id", "desired_time", "description", "items"]);
        let empty_items = object(json!({
            "car_id": "550e8400-e29b-41d4-a716-446655440000",
            "desired_time": "2030-01-01T00:00:00Z",
            "items": []
        }));
        let parsed = NewOrder::parse_at(&empty_items, now()).unwrap();
        assert_eq!(parsed.description, "");
    }

    #[test]
    fn cars_follow_car_services_rules() {
        let car = NewCar::parse_in(
            &object(json!({
                "license_plate": " а123бв799 ",
                "vin": "xta210930v0123456",
                "make": " Lada ",
                "model": "Vesta",
                "year": 2021
            })),
            2025,
        )
        .unwrap();
        assert_eq!(car.license_plate, "А123БВ799");
        assert_eq!(car.vin, "XTA210930V0123456");
        assert_eq!((car.make.as_str(), car.year), ("Lada", 2021));
        assert_eq!(car.owner_id, None);

        let errors = NewCar::parse_in(
            &object(json!({
                "owner_id": "not-a-uuid",
                "license_plate": "",
                "vin": "WVWZZZ1JZXW00000I",
                "make": 42,
                "year": 2027
            })),
            2025,
        )
        .unwrap_err();
        let got: Vec<(String, String)> = errors.into_iter().map(|e| (e.field, e.message)).collect();
        let want = [
            ("owner_id", "must be a UUID"),
            (
                "license_plate",
                "must be 1 to 12 Latin or Cyrillic letters, digits, spaces or dashes",
            ),
            ("vin", "must be 17 letters or digits, without I, O or Q"),
            ("make", "must be a string, not a number"),
            ("model", "is required"),
            ("year", "must be between 1886 and 2026"),
        ];
        assert_eq!(
            got,
            want.map(|(f, m)| (f.to_owned(), m.to_owned())).to_vec()
        );
    }

    #[test]
    fn bodies_that_are_not_objects() {
        assert_eq!(json_object(b"  ").unwrap_err().code, "malformed_json");
        assert_eq!(json_object(b"{").unwrap_err().code, "malformed_json");
        let error = json_object(b"[1]").unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (
                "validation_failed",
                "the request body must be a JSON object, not an array"
            )
        );
    }

    #[test]
    fn bearer_headers() {
        let secret = Secret::new(&[7u8; 32]).unwrap();
        let mut headers = HeaderMap::new();
        assert_eq!(caller(&headers, &secret).unwrap_err().code, "missing_token");
        for bad in ["Basic abc", "Bearer ", "token"] {
            headers.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert_eq!(caller(&headers, &secret).unwrap_err().code, "invalid_token");
        }
        let user = Uuid::from_u128(5);
        let now = unix_now();
        let token = auth::token::issue(&secret, &auth::Claims::new(user, Role::Staff, now, 60));
        headers.insert(
            header::AUTHORIZATION,
            format!("bearer {token}").parse().unwrap(),
        );
        let who = caller(&headers, &secret).unwrap();
        assert_eq!((who.user_id, who.role), (user, Role::Staff));
        assert!(who.may_access(Uuid::from_u128(6)));
        let expired = auth::token::issue(&secret, &auth::Claims::new(user, Role::Customer, 0, 60));
        headers.insert(
            header::AUTHORIZATION,
            format!("Bearer {expired}").parse().unwrap(),
        );
        assert_eq!(caller(&headers, &secret).unwrap_err().code, "token_expired");
    }
}
