//! Who is calling: the one function every component uses to turn `Authorization: Bearer
//! <token>` into a [`Caller`], or a 401 in the shared error shape. The token rules live in
//! the `auth` crate; this module only reads the header, the clock and the `jwt_secret` variable.

use std::time::{SystemTime, UNIX_EPOCH};

pub use auth::Role;
use auth::{Secret, TokenError, VerifiedTokens};
use spin_sdk::http::Request;
use uuid::Uuid;

use crate::error::{ApiError, FieldError};
use crate::query::Query;

/// The Spin variable holding the HS256 key (required, secret, at least 32 bytes).
pub const SECRET_VARIABLE: &str = "jwt_secret";

/// The authenticated user a request acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Uuid,
    pub role: Role,
}

impl Caller {
    pub fn is_staff(&self) -> bool {
        self.role == Role::Staff
    }

    /// 403 `staff_only` unless the caller is staff; `what` completes "only staff may ...".
    pub fn require_staff(&self, what: &str) -> Result<(), ApiError> {
        if self.is_staff() {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "staff_only",
                format!("only staff may {what}"),
            ))
        }
    }

    /// Whether the caller may see or change a resource that `owner` owns: its owner or staff.
    pub fn may_access(&self, owner: Uuid) -> bool {
        self.user_id == owner || self.is_staff()
    }

    /// Whose rows a list shows: a customer always their own, whatever the query says; staff
    /// everyone's (`None`), or one user's when the query names them in `param`.
    /// A `param` that is not a UUID is refused from anyone, as the document says.
    pub fn list_scope(&self, query: &Query, param: &str) -> Result<Option<Uuid>, FieldError> {
        let named = query.uuid(param)?;
        if self.is_staff() {
            Ok(named)
        } else {
            Ok(Some(self.user_id))
        }
    }
}

thread_local! {
    /// Tokens this instance has verified: on a host that reuses instances (docs/architecture.md)
    /// checks a returning caller's signature once, not at every request. A fresh instance
    /// starts with none.
    static VERIFIED: std::cell::RefCell<VerifiedTokens> = std::cell::RefCell::default();
}

/// The caller of `request`, verified. A missing header is 401 `missing_token` (checked before
/// the secret is read, so it needs no host); a token that fails any rule is 401
/// `invalid_token` or `token_expired`; a missing or short secret is 500 `configuration`.
pub fn caller(request: &Request) -> Result<Caller, ApiError> {
    let header = request
        .header("authorization")
        .map(|value| value.as_str().ok_or_else(invalid_header))
        .transpose()?;
    let token = bearer_token(header)?;
    let verified = VERIFIED.with_borrow_mut(|memo| memo.verify(secret, token, unix_now()))?;
    let claims = verified.map_err(|error| {
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

/// The signing key from the `jwt_secret` variable. There is no fallback: a deployment
/// without a strong secret fails here, on first use.
pub fn secret() -> Result<Secret, ApiError> {
    let value = crate::config::variable(SECRET_VARIABLE)?;
    Secret::new(value.as_bytes()).map_err(|weak| {
        ApiError::configuration(format!(
            "the Spin variable `{SECRET_VARIABLE}` is too short: {weak}"
        ))
    })
}

/// Seconds since the Unix epoch, as token times are written.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs() as i64)
        .unwrap_or(0)
}

/// The token of an `Authorization` header value: the `Bearer` scheme (any case, RFC 9110
/// §11.1) followed by the token.
fn bearer_token(header: Option<&str>) -> Result<&str, ApiError> {
    let Some(header) = header else {
        return Err(ApiError::unauthorized(
            "missing_token",
            "this endpoint needs an `Authorization: Bearer <token>` header; get a token from POST /api/users/login",
        ));
    };
    match header.trim().split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(invalid_header()),
    }
}

fn invalid_header() -> ApiError {
    ApiError::unauthorized(
        "invalid_token",
        "the Authorization header must be `Bearer <token>`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::http::Method;

    #[test]
    fn the_bearer_scheme_is_case_blind_and_trimmed() {
        assert_eq!(bearer_token(Some("Bearer abc")).unwrap(), "abc");
        assert_eq!(bearer_token(Some("bearer  abc ")).unwrap(), "abc");
        assert_eq!(bearer_token(Some("BEARER abc")).unwrap(), "abc");
    }

    #[test]
    fn other_schemes_and_empty_tokens_are_invalid() {
        for header in ["Basic dXNlcjpwYXNz", "Bearer", "Bearer   ", "abc", ""] {
            let error = bearer_token(Some(header)).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (401, "invalid_token"),
                "{header}"
            );
        }
    }

    #[test]
    fn a_request_without_the_header_is_401_before_any_host_call() {
        // Natively there is no Spin host: reaching the variable would panic, so this also
        // proves the header is checked first.
        let request = Request::new(Method::Get, "/api/cars");
        let error = caller(&request).unwrap_err();
        assert_eq!((error.status, error.code), (401, "missing_token"));
    }

    #[test]
    fn only_staff_pass_require_staff_and_a_customer_is_told_what_they_asked_for() {
        let who = |role| Caller {
            user_id: Uuid::from_u128(1),
            role,
        };
        assert!(who(Role::Staff).require_staff("see the board").is_ok());
        let error = who(Role::Customer)
            .require_staff("see the board")
            .unwrap_err();
        assert_eq!((error.status, error.code), (403, "staff_only"));
        assert_eq!(error.message, "only staff may see the board");
    }

    #[test]
    fn lists_show_a_customer_their_own_and_staff_whom_they_name() {
        let me = Uuid::from_u128(1);
        let customer = Caller {
            user_id: me,
            role: Role::Customer,
        };
        let staff = Caller {
            role: Role::Staff,
            ..customer
        };
        let other = Query::parse("user_id=00000000-0000-0000-0000-000000000002").unwrap();
        assert_eq!(customer.list_scope(&other, "user_id"), Ok(Some(me)));
        assert_eq!(
            staff.list_scope(&other, "user_id"),
            Ok(Some(Uuid::from_u128(2)))
        );
        assert_eq!(staff.list_scope(&Query::default(), "user_id"), Ok(None));
        let bad = Query::parse("owner_id=x").unwrap();
        assert_eq!(
            staff.list_scope(&bad, "owner_id").unwrap_err().field,
            "owner_id"
        );
    }

    #[test]
    fn owners_and_staff_may_access_a_resource() {
        let owner = Uuid::from_u128(1);
        let customer = |id| Caller {
            user_id: Uuid::from_u128(id),
            role: Role::Customer,
        };
        assert!(customer(1).may_access(owner));
        assert!(!customer(2).may_access(owner));
        let staff = Caller {
            role: Role::Staff,
            ..customer(3)
        };
        assert!(staff.may_access(owner));
    }
}
