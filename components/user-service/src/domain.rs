//! Users as the business sees them: a registration body becomes a `NewUser` only when every
//! field is valid and normalised. No spin-sdk here: `cargo test` runs these rules natively.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use api::json::Object;
use api::{FieldError, FieldErrors};
use auth::{Email, Password, RefreshToken, Role};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A phone number in E.164: `+`, a country code not starting with 0, 8 to 15 digits in
/// all. Spaces, dashes, dots and parentheses people type are dropped (the pattern of
/// [`RegisterRequest::phone_number`] says which strings are phone numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// A number the schema accepted, without its separators.
    fn compact(s: &str) -> Self {
        Self(
            s.chars()
                .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
                .collect(),
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A person's name as they write it, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FullName(String);

impl FullName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/users/register`'s body: documented and read as this type (see `api::body`);
/// [`NewUser::parse`] adds what no schema states. Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "email": "test@example.com",
    "password": "password123",
    "full_name": "Test User",
    "phone_number": "+79991234567"
}))]
pub struct RegisterRequest {
    /// Trimmed and lower-cased; at most 254 bytes, 64 before the `@`, a dot in the domain;
    /// unique (else 409).
    #[schema(format = Email, min_length = 5, max_length = 254)]
    pub email: String,
    /// Taken as given, no trimming; every character counts.
    #[schema(min_length = 8, max_length = 256, format = Password)]
    pub password: String,
    /// Stored trimmed; no control characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub full_name: String,
    /// E.164, like `+79991234567`: `+`, a first digit other than 0, 8 to 15 digits in all;
    /// spaces, dashes, dots and parentheses may come anywhere and are dropped.
    #[schema(
        example = "+79991234567",
        pattern = r"^[ ().-]*\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}[ ().-]*$"
    )]
    pub phone_number: String,
}

/// `POST /api/users/login`'s body: documented and read as this type. Unknown properties are
/// ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"email": "test@example.com", "password": "password123"}))]
pub struct LoginRequest {
    /// Compared trimmed and lower-cased; not blank, no NUL (any other text is a login that
    /// fails with 401).
    #[schema(
        min_length = 1,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    pub email: String,
    #[schema(format = Password)]
    pub password: String,
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
    /// Reads [`RegisterRequest`]; the email's rules beyond its length are checked here.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: RegisterRequest = api::body::parse(body)?;
        let mut errors = FieldErrors::new();
        let email = errors.check(
            Email::parse(&request.email)
                .map_err(|error| FieldError::new("email", error.to_string())),
        );
        let password = errors.check(
            Password::parse(&request.password)
                .map_err(|error| FieldError::new("password", error.to_string())),
        );
        match (email, password) {
            (Some(email), Some(password)) => Ok(Self {
                email,
                password,
                full_name: FullName(request.full_name.trim().to_owned()),
                phone_number: PhoneNumber::compact(&request.phone_number),
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
        let request: LoginRequest = api::body::parse(body)?;
        Ok(Self {
            email: auth::email::normalise(&request.email),
            password: request.password,
        })
    }
}

/// The body of `POST /api/users/refresh` and `POST /api/users/logout`: documented and read as
/// this type. Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"refresh_token": "q7bJ0v9mS3xW2r8tYp4kLc1nZe6uHa5dFg0iOj3sMwE"}))]
pub struct RefreshRequest {
    /// The `refresh_token` of the last login or refresh answer, as given. Any other string is
    /// answered 401 `refresh_token_invalid`.
    #[schema(min_length = 1)]
    pub refresh_token: String,
}

/// A refresh token as presented: `None` when the text cannot be a token at all (it is then
/// refused like an unknown one, without a look-up).
#[derive(Debug)]
pub struct PresentedToken(pub Option<RefreshToken>);

impl PresentedToken {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: RefreshRequest = api::body::parse(body)?;
        Ok(Self(RefreshToken::parse(&request.refresh_token)))
    }
}

/// Why a refresh token was refused (401 each; the codes are in `error.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No session has this token (or the text is not a token).
    Unknown,
    /// Its session reached its end (`refresh_token_expire_seconds` after login).
    Expired,
    /// Its session was revoked: logout, logout-all, or a reuse of another of its tokens.
    Revoked,
    /// It was used before: its session is revoked now, every token of it with it.
    Reused,
}

impl Refusal {
    /// The name the store's statement answers.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "unknown" => Some(Self::Unknown),
            "expired" => Some(Self::Expired),
            "revoked" => Some(Self::Revoked),
            "reused" => Some(Self::Reused),
            _ => None,
        }
    }
}

/// Whom a live session is for, as a refresh reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user_id: Uuid,
    /// The user's role now, not at login.
    pub role: Role,
    /// Seconds until the session ends.
    pub expires_in: i64,
}

/// A session's lifetime in seconds (`refresh_token_expire_seconds`): 5 minutes to a year.
pub fn parse_session_lifetime(raw: &str) -> Result<u32, String> {
    parse_in(raw, 300, 365 * 24 * 3600, "seconds")
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![
        api::body::Documented::new::<RegisterRequest, _>(NewUser::parse),
        api::body::Documented::new::<LoginRequest, _>(Credentials::parse),
        api::body::Documented::new::<RefreshRequest, _>(PresentedToken::parse),
    ]
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

    fn register(full_name: &str, phone_number: &str) -> Result<NewUser, FieldErrors> {
        NewUser::parse(&object(
            json!({"email": "test@example.com", "password": "password123",
                                      "full_name": full_name, "phone_number": phone_number}),
        ))
    }

    #[test]
    fn phone_numbers_are_e164_after_dropping_separators() {
        for (given, stored) in [
            ("+79991234567", "+79991234567"),
            ("+7 (999) 123-45-67", "+79991234567"),
            ("+1.212.555.0100", "+12125550100"),
        ] {
            assert_eq!(register("A", given).unwrap().phone_number.as_str(), stored);
        }
        for phone in [
            "89991234567",
            "+0123456789",
            "+7999",
            "+7999123456789012",
            "+7999abc4567",
            "",
        ] {
            let errors = register("A", phone).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "phone_number", "{phone}");
        }
    }

    #[test]
    fn full_names_are_trimmed_bounded_and_printable() {
        let phone = "+79991234567";
        assert_eq!(
            register("  Test User ", phone).unwrap().full_name.as_str(),
            "Test User"
        );
        assert!(register(&"я".repeat(200), phone).is_ok());
        for bad in [
            "",
            "   ",
            "\u{3000}",
            &"я".repeat(201),
            "Test\u{0}User",
            "Test\tUser",
        ] {
            let errors = register(bad, phone).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "full_name", "{bad:?}");
        }
    }

    #[test]
    fn the_example_registration_parses() {
        let user = register("Test User", "+79991234567").unwrap();
        assert_eq!(user.email.as_str(), "test@example.com");
        assert_eq!(user.password.as_bytes(), b"password123");
    }

    #[test]
    fn a_registration_reports_every_invalid_field() {
        let body = object(json!({"email":"","password":"short","full_name":"",
                                 "phone_number":42}));
        let errors = NewUser::parse(&body).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "full_name", "password", "phone_number"]);
        assert_eq!(
            errors.get("password").unwrap().message,
            "must be 8 to 256 characters long"
        );
        assert_eq!(
            errors.get("phone_number").unwrap().message,
            "must be a string, not a number"
        );
        // The email's own rules come after the schema's.
        let body = object(
            json!({"email":"nope","password":"password123","full_name":"A",
                                 "phone_number":"+79991234567"}),
        );
        assert_eq!(
            NewUser::parse(&body).unwrap_err().as_slice()[0].field,
            "email"
        );
    }

    #[test]
    fn a_long_password_is_taken_whole() {
        let body = object(json!({"email":"a@b.co","password":"я".repeat(256),
                                 "full_name":"A","phone_number":"+79991234567"}));
        assert_eq!(
            NewUser::parse(&body).unwrap().password.as_bytes().len(),
            512
        );
        let body = object(json!({"email":"a@b.co","password":"x".repeat(257),
                                 "full_name":"A","phone_number":"+79991234567"}));
        assert_eq!(
            NewUser::parse(&body).unwrap_err().as_slice()[0].message,
            "must be 8 to 256 characters long"
        );
    }

    #[test]
    fn the_document_and_the_parsers_agree() {
        for documented in request_bodies() {
            let found = api::body::disagreements(&documented);
            assert!(found.is_empty(), "{}", found.join("\n"));
        }
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
        for blank in ["", "  ", "a\u{0}b"] {
            let errors =
                Credentials::parse(&object(json!({"email": blank, "password": "x"}))).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "email", "{blank:?}");
        }
        let errors = Credentials::parse(&object(json!({"email": 7, "password": "x"}))).unwrap_err();
        assert_eq!(
            errors.as_slice()[0].message,
            "must be a string, not a number"
        );
    }

    #[test]
    fn a_presented_refresh_token_is_a_token_or_nothing() {
        let token = RefreshToken::generate().unwrap();
        let presented =
            PresentedToken::parse(&object(json!({"refresh_token": token.as_str()}))).unwrap();
        assert_eq!(presented.0, Some(token));
        for garbage in ["garbage", "eyJhbGciOiJIUzI1NiJ9.e30.x", &"A".repeat(44)] {
            let presented =
                PresentedToken::parse(&object(json!({"refresh_token": garbage}))).unwrap();
            assert_eq!(presented.0, None, "{garbage}");
        }
        for body in [
            json!({}),
            json!({"refresh_token": ""}),
            json!({"refresh_token": 7}),
        ] {
            let errors = PresentedToken::parse(&object(body.clone())).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "refresh_token", "{body}");
        }
    }

    #[test]
    fn refusals_are_read_by_name() {
        for (name, refusal) in [
            ("unknown", Refusal::Unknown),
            ("expired", Refusal::Expired),
            ("revoked", Refusal::Revoked),
            ("reused", Refusal::Reused),
        ] {
            assert_eq!(Refusal::parse(name), Some(refusal));
        }
        assert_eq!(Refusal::parse("used"), None);
    }

    #[test]
    fn a_session_lasts_5_minutes_to_a_year() {
        assert_eq!(parse_session_lifetime("2592000"), Ok(2_592_000));
        assert_eq!(parse_session_lifetime(" 300 "), Ok(300));
        for raw in ["299", "31536001", "-1", "30d", ""] {
            assert!(parse_session_lifetime(raw).is_err(), "{raw}");
        }
    }
}
