//! Users as the business sees them: a registration body becomes a `NewUser` only when every
//! field is valid and normalised. No spin-sdk here: `cargo test` runs these rules natively.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

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

/// `POST /api/users/register`'s body as documented; [`NewUser::parse`] reads it.
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

/// Where a login comes from, as its failures are counted: an IPv4 address, an IPv6 /64
/// network (one subscriber usually holds a whole /64, so single IPv6 addresses would be
/// free to rotate through), or `unknown` when the host gave no usable `spin-client-addr`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(String);

impl ClientAddress {
    /// Reads `spin-client-addr` (`1.2.3.4:5678`, `[2001:db8::1]:5678`, or a bare address).
    pub fn from_header(header: Option<&str>) -> Self {
        let ip = header.map(str::trim).and_then(|value| {
            value
                .parse::<SocketAddr>()
                .map(|socket| socket.ip())
                .or_else(|_| value.parse::<IpAddr>())
                .ok()
        });
        Self(match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                format!("{}/64", Ipv6Addr::from(network))
            }
            None => "unknown".to_owned(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One login attempt's buckets: the account it names and the address it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginAttempt {
    /// The normalised email, cut to [`LoginAttempt::MAX_ACCOUNT_CHARS`]: no stored email is
    /// longer, so only emails that cannot log in anyway share a bucket.
    pub account: String,
    pub address: ClientAddress,
}

impl LoginAttempt {
    pub const MAX_ACCOUNT_CHARS: usize = 255;

    pub fn new(credentials: &Credentials, address: ClientAddress) -> Self {
        Self {
            account: credentials
                .email
                .chars()
                .take(Self::MAX_ACCOUNT_CHARS)
                .collect(),
            address,
        }
    }
}

/// How many failed logins are allowed per window before login answers 429.
///
/// The strict bucket is one account from one address: the person who forgot their password
/// is stopped after a few tries, and so is a guesser. An attacker failing on someone else's
/// email from their own address fills only their own bucket, so they cannot lock the owner
/// out that way. The looser per-account bucket stops guessing spread over many addresses;
/// filling it does lock the owner out for the rest of the window, which takes several
/// addresses (more than `per_account / per_address`). The per-address bucket stops one
/// address from trying one password against many accounts. A success clears the account's
/// buckets, never the address's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginLimits {
    pub window_seconds: u32,
    pub per_account_and_address: u32,
    pub per_account: u32,
    pub per_address: u32,
}

impl LoginLimits {
    pub const MAX_WINDOW_SECONDS: u32 = 7 * 24 * 3600;
    pub const MAX_FAILURES: u32 = 1_000_000;

    /// A window length in seconds, 1 to a week.
    pub fn parse_window(raw: &str) -> Result<u32, String> {
        parse_in(raw, 1, Self::MAX_WINDOW_SECONDS, "seconds")
    }

    /// A number of failures, 1 to a million.
    pub fn parse_failures(raw: &str) -> Result<u32, String> {
        parse_in(raw, 1, Self::MAX_FAILURES, "failures")
    }
}

fn parse_in(raw: &str, min: u32, max: u32, unit: &str) -> Result<u32, String> {
    match raw.trim().parse::<u32>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(format!(
            "must be a whole number of {unit} from {min} to {max}"
        )),
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
    fn the_example_registration_parses() {
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
    fn client_addresses_are_ipv4_or_an_ipv6_64_or_unknown() {
        let read = |header: Option<&str>| ClientAddress::from_header(header).as_str().to_owned();
        assert_eq!(read(Some("203.0.113.7:51234")), "203.0.113.7");
        assert_eq!(read(Some("203.0.113.7")), "203.0.113.7");
        // Every address of one /64 is one bucket; the next /64 is another.
        assert_eq!(
            read(Some("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443")),
            "2001:db8:1:2::/64"
        );
        assert_eq!(read(Some("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(read(Some("[2001:db8:1:3::1]:1")), "2001:db8:1:3::/64");
        // IPv4 as an IPv4-mapped IPv6 address (a dual-stack listener) is the IPv4 address.
        assert_eq!(read(Some("[::ffff:203.0.113.7]:80")), "203.0.113.7");
        assert_eq!(read(Some("[::1]:80")), "::/64");
        for header in [None, Some(""), Some("nonsense"), Some("1.2.3:4")] {
            assert_eq!(read(header), "unknown", "{header:?}");
        }
    }

    #[test]
    fn a_login_attempt_counts_against_the_normalised_email_cut_to_255_characters() {
        let credentials =
            Credentials::parse(&object(json!({"email": " A@B.CO ", "password": "x"}))).unwrap();
        let attempt = LoginAttempt::new(&credentials, ClientAddress::from_header(None));
        assert_eq!(attempt.account, "a@b.co");
        let long = Credentials::parse(&object(json!({"email": "я".repeat(300), "password": "x"})))
            .unwrap();
        let attempt = LoginAttempt::new(&long, ClientAddress::from_header(None));
        assert_eq!(attempt.account.chars().count(), 255);
    }

    #[test]
    fn login_limits_are_positive_and_bounded() {
        assert_eq!(LoginLimits::parse_window(" 900 "), Ok(900));
        assert!(LoginLimits::parse_window("0").is_err());
        assert!(LoginLimits::parse_window("604801").is_err());
        assert_eq!(LoginLimits::parse_failures("5"), Ok(5));
        for raw in ["0", "-1", "five", "", "1000001"] {
            assert!(LoginLimits::parse_failures(raw).is_err(), "{raw}");
        }
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
