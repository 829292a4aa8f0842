//! Users as the business sees them: a registration body becomes a `NewUser` only when every
//! field is valid and normalised. No spin-sdk here: `cargo test` runs these rules natively.

use api::json::{self, Object};
use api::{FieldError, FieldErrors};
use auth::{Email, Password, Role};
use serde::Serialize;
use uuid::Uuid;

/// A phone number in E.164: `+`, a country code not starting with 0, 8 to 15 digits in
/// all. Spaces, dashes, dots and parentheses people type are dropped first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let compact: String = s
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let valid = match compact.strip_prefix('+') {
            Some(digits) => {
                (8..=15).contains(&digits.len())
                    && digits.chars().all(|c| c.is_ascii_digit())
                    && !digits.starts_with('0')
            }
            None => false,
        };
        if valid {
            Ok(Self(compact))
        } else {
            Err(FieldError::new(
                "phone_number",
                "must be in E.164 form, like +79991234567",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's name as they write it: trimmed, 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub const MAX_CHARS: usize = 200;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let length = s.chars().count();
        if length == 0 {
            Err(FieldError::new("full_name", "must not be empty"))
        } else if length > Self::MAX_CHARS {
            Err(FieldError::new(
                "full_name",
                format!("must be at most {} characters", Self::MAX_CHARS),
            ))
        } else if s.chars().any(char::is_control) {
            Err(FieldError::new(
                "full_name",
                "must not contain control characters",
            ))
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/users/register`'s body as documented (the seed's example); [`NewUser::parse`]
/// reads it.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "email": "test@example.com",
    "password": "password123",
    "full_name": "Test User",
    "phone_number": "+79991234567"
}))]
#[allow(dead_code)]
pub struct RegisterRequest {
    /// Trimmed and lower-cased; unique (else 409).
    #[schema(format = Email, max_length = 254)]
    email: String,
    /// 8 to 72 bytes (bcrypt reads no more), taken as given: no trimming.
    #[schema(min_length = 8, max_length = 72, format = Password)]
    password: String,
    /// Trimmed; no control characters.
    #[schema(min_length = 1, max_length = 200)]
    full_name: String,
    /// E.164, like `+79991234567`; spaces, dashes, dots and parentheses are dropped first.
    #[schema(example = "+79991234567")]
    phone_number: String,
}

/// `POST /api/users/login`'s body as documented; [`Credentials::parse`] reads it.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({"email": "test@example.com", "password": "password123"}))]
#[allow(dead_code)]
pub struct LoginRequest {
    /// Compared trimmed and lower-cased.
    email: String,
    #[schema(format = Password)]
    password: String,
}

/// A registration, every field valid.
#[derive(Debug)]
pub struct NewUser {
    pub email: Email,
    pub password: Password,
    pub full_name: FullName,
    pub phone_number: PhoneNumber,
}

impl NewUser {
    /// Reads `{email, password, full_name, phone_number}`, reporting every invalid field.
    /// The password is taken as given: no trimming, its bytes are what bcrypt sees.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = errors.check(json::required_str(body, "email").and_then(|s| {
            Email::parse(s).map_err(|error| FieldError::new("email", error.to_string()))
        }));
        let password = errors.check(json::required_str(body, "password").and_then(|s| {
            Password::parse(s).map_err(|error| FieldError::new("password", error.to_string()))
        }));
        let full_name =
            errors.check(json::required_str(body, "full_name").and_then(FullName::parse));
        let phone_number =
            errors.check(json::required_str(body, "phone_number").and_then(PhoneNumber::parse));
        match (email, password, full_name, phone_number) {
            (Some(email), Some(password), Some(full_name), Some(phone_number)) => Ok(Self {
                email,
                password,
                full_name,
                phone_number,
            }),
            _ => Err(errors),
        }
    }
}

/// A login attempt. Only presence is checked: every other failure is the same 401.
#[derive(Debug)]
pub struct Credentials {
    /// Normalised like a stored address.
    pub email: String,
    pub password: String,
}

impl Credentials {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let email = errors.check(json::required_str(body, "email"));
        let password = errors.check(json::required_str(body, "password"));
        match (email, password) {
            (Some(email), Some(password)) => Ok(Self {
                email: auth::email::normalise(email),
                password: password.to_owned(),
            }),
            _ => Err(errors),
        }
    }
}

/// A user as the API returns it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub full_name: String,
    pub phone_number: Option<String>,
    #[schema(value_type = RoleSchema)]
    pub role: Role,
    /// RFC 3339, UTC.
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

/// What a user may do beyond their own resources: `staff` run the workshop.
// `User::role` in the document: `auth::Role` lives in a crate without utoipa, and
// serializes the same way (a test checks).
#[derive(utoipa::ToSchema)]
#[schema(as = Role, rename_all = "lowercase")]
#[allow(dead_code)]
pub enum RoleSchema {
    Customer,
    Staff,
}

/// What login needs of a stored user.
#[derive(Debug, Clone)]
pub struct StoredCredentials {
    pub id: Uuid,
    pub role: Role,
    pub password_hash: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: serde_json::Value) -> Object {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn phone_numbers_are_e164_after_dropping_separators() {
        assert_eq!(
            PhoneNumber::parse("+79991234567").unwrap().as_str(),
            "+79991234567"
        );
        assert_eq!(
            PhoneNumber::parse("+7 (999) 123-45-67").unwrap().as_str(),
            "+79991234567"
        );
        for phone in [
            "89991234567",
            "+0123456789",
            "+7999",
            "+7999123456789012",
            "+7999abc4567",
            "",
        ] {
            assert!(PhoneNumber::parse(phone).is_err(), "{phone}");
        }
    }

    #[test]
    fn full_names_are_trimmed_and_bounded() {
        assert_eq!(
            FullName::parse("  Test User ").unwrap().as_str(),
            "Test User"
        );
        assert!(FullName::parse("   ").is_err());
        assert!(FullName::parse(&"я".repeat(200)).is_ok());
        assert!(FullName::parse(&"я".repeat(201)).is_err());
        assert!(FullName::parse("Test\u{0}User").is_err());
    }

    #[test]
    fn the_seed_registration_parses() {
        let body = object(json!({"email":"test@example.com","password":"password123",
                                 "full_name":"Test User","phone_number":"+79991234567"}));
        let user = NewUser::parse(&body).unwrap();
        assert_eq!(user.email.as_str(), "test@example.com");
        assert_eq!(user.password.as_bytes(), b"password123");
    }

    #[test]
    fn a_registration_reports_every_invalid_field() {
        let body = object(json!({"email":"nope","password":"short","full_name":"",
                                 "phone_number":42}));
        let errors = NewUser::parse(&body).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password", "full_name", "phone_number"]);
        assert_eq!(
            errors.get("password").unwrap().message,
            "must be at least 8 bytes"
        );
    }

    #[test]
    fn a_password_over_72_bytes_is_refused_not_truncated() {
        let body = object(json!({"email":"a@b.co","password":"x".repeat(73),
                                 "full_name":"A","phone_number":"+79991234567"}));
        let errors = NewUser::parse(&body).unwrap_err();
        assert!(errors
            .get("password")
            .unwrap()
            .message
            .starts_with("must be at most 72 bytes"));
    }

    #[test]
    fn credentials_need_both_fields_and_normalise_the_email() {
        let body = object(json!({"email":" A@B.CO ","password":" pw "}));
        let credentials = Credentials::parse(&body).unwrap();
        assert_eq!(credentials.email, "a@b.co");
        assert_eq!(credentials.password, " pw ");
        let errors = Credentials::parse(&object(json!({}))).unwrap_err();
        assert_eq!(errors.len(), 2);
    }
}
