//! user-service: registration, login, sessions and profiles, as a Spin HTTP component routed
//! at `/api/users/...`. Login issues the HS256 access token every other component checks, and
//! a refresh token that renews it until the session ends (docs/api.md#sessions).
//! This file only maps HTTP to the domain (`domain`), the rules (`auth`) and the table
//! (`store`); it must not hold business rules.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

pub mod domain;
mod error;
mod store;

use api::http::{json_response, read_json_object};
use api::routes::Routes;
use api::ApiError;
use auth::token::Claims;
use auth::{Cost, RefreshToken, Role};
use serde::Serialize;
use spin_sdk::http::{Params, Request, Response, Router};
use uuid::Uuid;

use crate::domain::{
    ClientAddress, Credentials, LoginAttempt, LoginLimits, NewUser, PresentedToken, Refusal,
};
use crate::error::UserError;
use crate::store::{Admission, Inserted, Rotation};

const SERVICE: &str = "user-service";

api::export_router!(router);

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn routes() -> Routes {
    Routes::service("/api/users", SERVICE)
        .post("/api/users/register", register)
        .public()
        .post("/api/users/login", login)
        .public()
        .post("/api/users/refresh", refresh)
        .public()
        .post("/api/users/logout", logout)
        .public()
        .post("/api/users/logout-all", logout_all)
        .get("/api/users/me", me)
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(register, login, refresh, logout, logout_all, me))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/users", "users"));
    doc
}

/// What the component needs from Spin variables, read per request.
struct Config {
    postgres_url: String,
}

impl Config {
    fn load() -> Result<Self, ApiError> {
        Ok(Self {
            postgres_url: api::config::variable("postgres_url")?,
        })
    }

    /// The bcrypt work factor for new hashes and for the dummy check (`bcrypt_cost`, >= 10).
    fn bcrypt_cost() -> Result<Cost, ApiError> {
        let raw = api::config::variable("bcrypt_cost")?;
        Cost::parse(&raw).map_err(|error| {
            ApiError::configuration(format!(
                "the Spin variable `bcrypt_cost` is invalid: {error}"
            ))
        })
    }

    /// The failed-login limits (see [`LoginLimits`] for why three buckets):
    /// `login_failure_window_seconds` and `login_max_failures_per_{account_and_address,
    /// account,address}`, with defaults in spin.toml.
    fn login_limits() -> Result<LoginLimits, ApiError> {
        let read = |name: &str, parse: fn(&str) -> Result<u32, String>| {
            let raw = api::config::variable(name)?;
            parse(&raw).map_err(|error| {
                ApiError::configuration(format!("the Spin variable `{name}` {error}"))
            })
        };
        Ok(LoginLimits {
            window_seconds: read("login_failure_window_seconds", LoginLimits::parse_window)?,
            per_account_and_address: read(
                "login_max_failures_per_account_and_address",
                LoginLimits::parse_failures,
            )?,
            per_account: read(
                "login_max_failures_per_account",
                LoginLimits::parse_failures,
            )?,
            per_address: read(
                "login_max_failures_per_address",
                LoginLimits::parse_failures,
            )?,
        })
    }

    /// Access token lifetime (`jwt_access_token_expire_seconds`, called
    /// `JWT_ACCESS_TOKEN_EXPIRE_SECONDS` in the reference design): 60 seconds to 30 days;
    /// spin.toml's default is 15 minutes, since an access token cannot be revoked.
    fn token_ttl() -> Result<i64, ApiError> {
        let raw = api::config::variable("jwt_access_token_expire_seconds")?;
        match raw.trim().parse::<i64>() {
            Ok(seconds) if (60..=30 * 24 * 3600).contains(&seconds) => Ok(seconds),
            _ => Err(ApiError::configuration(
                "the Spin variable `jwt_access_token_expire_seconds` must be a whole number \
                 of seconds from 60 to 2592000",
            )),
        }
    }

    /// How long a session (a login's refresh tokens) lasts from login
    /// (`refresh_token_expire_seconds`): 5 minutes to a year; refreshing does not extend it.
    fn session_lifetime() -> Result<u32, ApiError> {
        let raw = api::config::variable("refresh_token_expire_seconds")?;
        domain::parse_session_lifetime(&raw).map_err(|error| {
            ApiError::configuration(format!(
                "the Spin variable `refresh_token_expire_seconds` {error}"
            ))
        })
    }
}

#[utoipa::path(post, path = "/api/users/register", tag = "users",
    summary = "Register a customer account",
    security(()),
    request_body = domain::RegisterRequest,
    responses(
        (status = 201, description = "Registered; `Location` is `/api/users/me`", body = domain::User),
        (status = 409, description = "email_taken: an account with this email exists", body = api::openapi::ErrorBody),
    ))]
fn register(request: Request, _params: Params) -> Result<Response, UserError> {
    let new_user = NewUser::parse(&read_json_object(&request)?)?;
    let cost = Config::bcrypt_cost()?;
    let config = Config::load()?;
    // Hash before taking a pooled connection: bcrypt is the slow part of this request.
    let password_hash = auth::password::hash(&new_user.password, cost).map_err(|error| {
        ApiError::internal("the password could not be hashed").with_detail(error)
    })?;
    let db = api::db::open(&config.postgres_url)?;
    match store::insert(&db, &new_user, &password_hash)? {
        Inserted::Created(user) => {
            let mut response = json_response(201, &user);
            response.set_header("location", "/api/users/me");
            Ok(response)
        }
        Inserted::EmailTaken => Err(UserError::EmailTaken(new_user.email)),
    }
}

/// `{"access_token","token_type":"bearer","expires_in","refresh_token",
/// "refresh_token_expires_in"}`, an OAuth2-style answer of login and refresh.
#[derive(Serialize, utoipa::ToSchema)]
struct TokenResponse {
    /// An HS256 JWT: send it as `Authorization: Bearer <token>`. It stays valid until it
    /// expires, whatever happens to its session.
    access_token: String,
    /// Always `bearer`.
    #[schema(example = "bearer")]
    token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    expires_in: i64,
    /// Opaque; send it once to `POST /api/users/refresh` for a new pair. Each is good for
    /// one refresh: a second use ends the session.
    #[schema(example = "q7bJ0v9mS3xW2r8tYp4kLc1nZe6uHa5dFg0iOj3sMwE")]
    refresh_token: String,
    /// Seconds until the session ends (fixed at login; refreshing does not extend it).
    #[schema(example = 2592000)]
    refresh_token_expires_in: i64,
}

impl TokenResponse {
    /// A new access token for `user` as `role`, beside the session's new refresh token.
    fn issue(
        secret: &auth::Secret,
        user: Uuid,
        role: Role,
        ttl: i64,
        refresh_token: RefreshToken,
        session_expires_in: i64,
    ) -> Response {
        let claims = Claims::new(user, role, api::auth::unix_now(), ttl);
        json_response(
            200,
            &Self {
                access_token: auth::token::issue(secret, &claims),
                token_type: "bearer",
                expires_in: ttl,
                refresh_token: refresh_token.as_str().to_owned(),
                refresh_token_expires_in: session_expires_in,
            },
        )
    }
}

/// The refresh token of a refresh or logout body: 422 when the field is missing or empty,
/// 401 `refresh_token_invalid` when its text cannot be a token (no look-up needed).
fn presented_token(request: &Request) -> Result<RefreshToken, UserError> {
    let PresentedToken(presented) = PresentedToken::parse(&read_json_object(request)?)?;
    presented.ok_or(UserError::RefreshRefused(Refusal::Unknown))
}

/// A new refresh token, or 500 when the system has no randomness to give.
fn new_refresh_token() -> Result<RefreshToken, ApiError> {
    RefreshToken::generate().map_err(|error| {
        ApiError::internal("a refresh token could not be generated").with_detail(error)
    })
}

#[utoipa::path(post, path = "/api/users/login", tag = "users",
    summary = "Log in: an access token for the other operations, and a session to renew it",
    security(()),
    request_body = domain::LoginRequest,
    responses(
        (status = 200, description = "An access token, and the refresh token of a new session", body = TokenResponse),
        (status = 401, description = "invalid_credentials: unknown email or wrong password (not told apart)", body = api::openapi::ErrorBody),
        (status = 429, description = "too_many_attempts: too many failed logins within the window (`login_failure_window_seconds`, default 15 minutes) for this account from this address (default 5), for this account from anywhere (50) or from this address for any account (20); answered before the password is checked, so even the right one gets it. An unknown email is limited like a known one", body = api::openapi::ErrorBody,
            headers(("Retry-After" = u64, description = "Seconds until the window of the exceeded limit ends"))),
    ))]
fn login(request: Request, _params: Params) -> Result<Response, UserError> {
    let credentials = Credentials::parse(&read_json_object(&request)?)?;
    let cost = Config::bcrypt_cost()?;
    let ttl = Config::token_ttl()?;
    let lifetime = Config::session_lifetime()?;
    let limits = Config::login_limits()?;
    let secret = api::auth::secret()?;
    let config = Config::load()?;
    let address = request
        .header("spin-client-addr")
        .and_then(|value| value.as_str());
    let attempt = LoginAttempt::new(&credentials, ClientAddress::from_header(address));
    let (admission, stored) = {
        let db = api::db::open(&config.postgres_url)?;
        store::begin_login(&db, &credentials.email, &attempt, &limits)?
        // The connection goes back to the pool here, before bcrypt runs.
    };
    if let Admission::Refused {
        retry_after_seconds,
    } = admission
    {
        return Err(UserError::TooManyAttempts {
            retry_after_seconds,
        });
    }
    // An unknown email is checked against a dummy hash, so it costs what a wrong password
    // does; either failure stays counted.
    let hash = stored.as_ref().map(|user| user.password_hash.as_str());
    if !auth::password::verify(&credentials.password, hash, cost) {
        return Err(UserError::InvalidCredentials);
    }
    let user = stored.ok_or(UserError::InvalidCredentials)?;
    let db = api::db::open(&config.postgres_url)?;
    // The password was right: a failure to uncount the attempt must not refuse the login;
    // it leaves one failure too many in the account's buckets until the window ends.
    if let Err(error) = store::login_succeeded(&db, &attempt) {
        eprintln!("a successful login was left counted as a failure: {error}");
    }
    let refresh_token = new_refresh_token()?;
    store::start_session(&db, user.id, &refresh_token, lifetime)?;
    Ok(TokenResponse::issue(
        &secret,
        user.id,
        user.role,
        ttl,
        refresh_token,
        i64::from(lifetime),
    ))
}

#[utoipa::path(post, path = "/api/users/refresh", tag = "users",
    summary = "Renew the access token: a new access token and the session's next refresh token",
    description = "The refresh token sent is used up: keep the new one. A refresh token sent a second time (a retry, or a copy someone stole) ends its whole session: the latest refresh token of that session stops working too. So a client refreshes one request at a time; of two concurrent refreshes with one token exactly one succeeds, and the other ends the session.",
    security(()),
    request_body = domain::RefreshRequest,
    responses(
        (status = 200, description = "A new access token and the session's next refresh token", body = TokenResponse),
        (status = 401, description = "refresh_token_invalid (not a token this service issued), refresh_token_expired (the session reached its end), refresh_token_revoked (the session was ended by logout, logout-all or a reuse) or refresh_token_reused (the token was used before: its session is ended now)", body = api::openapi::ErrorBody),
    ))]
fn refresh(request: Request, _params: Params) -> Result<Response, UserError> {
    let presented = presented_token(&request)?;
    let ttl = Config::token_ttl()?;
    let secret = api::auth::secret()?;
    let config = Config::load()?;
    let next = new_refresh_token()?;
    let db = api::db::open(&config.postgres_url)?;
    match store::rotate(&db, &presented, &next)? {
        Rotation::Rotated(session) => Ok(TokenResponse::issue(
            &secret,
            session.user_id,
            session.role,
            ttl,
            next,
            session.expires_in,
        )),
        Rotation::Refused(refusal) => Err(UserError::RefreshRefused(refusal)),
    }
}

/// What logout and logout-all answer.
#[derive(Serialize, utoipa::ToSchema)]
struct LoggedOut {
    /// Sessions this request ended: 0 when they had ended already.
    #[schema(example = 1)]
    revoked_sessions: i64,
}

#[utoipa::path(post, path = "/api/users/logout", tag = "users",
    summary = "Log out: end the session of a refresh token",
    description = "Ends the session the refresh token belongs to, in whatever state the token is (used, or its session expired or ended already: then `revoked_sessions` is 0). Needs no access token: the refresh token is the proof, and an expired access token must not keep a client from logging out. Access tokens already issued stay valid until they expire (`expires_in`, 15 minutes by default).",
    security(()),
    request_body = domain::RefreshRequest,
    responses(
        (status = 200, description = "The session is ended", body = LoggedOut),
        (status = 401, description = "refresh_token_invalid: not a token this service issued", body = api::openapi::ErrorBody),
    ))]
fn logout(request: Request, _params: Params) -> Result<Response, UserError> {
    let presented = presented_token(&request)?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    match store::end_session(&db, &presented)? {
        Some(revoked_sessions) => Ok(json_response(200, &LoggedOut { revoked_sessions })),
        None => Err(UserError::RefreshRefused(Refusal::Unknown)),
    }
}

#[utoipa::path(post, path = "/api/users/logout-all", tag = "users",
    summary = "Log out everywhere: end every session of the caller",
    description = "Ends every live session of the caller, this one included: no refresh token of theirs works any more. Access tokens already issued stay valid until they expire (`expires_in`, 15 minutes by default). No body is read.",
    responses(
        (status = 200, description = "Every session of the caller is ended", body = LoggedOut),
    ))]
fn logout_all(request: Request, _params: Params) -> Result<Response, UserError> {
    let caller = api::auth::caller(&request)?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    let revoked_sessions = store::end_all_sessions(&db, caller.user_id)?;
    Ok(json_response(200, &LoggedOut { revoked_sessions }))
}

#[utoipa::path(get, path = "/api/users/me", tag = "users",
    summary = "The caller's own profile",
    responses(
        (status = 200, description = "The caller", body = domain::User),
        (status = 401, description = "missing_token, invalid_token (also when the token's user no longer exists) or token_expired (with `WWW-Authenticate: Bearer`)", body = api::openapi::ErrorBody),
    ))]
fn me(request: Request, _params: Params) -> Result<Response, UserError> {
    let caller = api::auth::caller(&request)?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    match store::find(&db, caller.user_id)? {
        Some(user) => Ok(json_response(200, &user)),
        None => Err(UserError::UnknownUser),
    }
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, Postgres), so no host is needed. End-to-end tests live in tests/.

    use super::*;
    use serde_json::{json, Value};
    use spin_sdk::http::{IntoResponse, Method};

    fn send(method: Method, path: &str, body: &str) -> (u16, Response) {
        let response = api::testing::respond(&router(), api::testing::request(method, path, body));
        (*response.status(), response)
    }

    fn body(response: &Response) -> Value {
        serde_json::from_slice(response.body()).unwrap()
    }

    #[test]
    fn register_with_invalid_fields_is_422_listing_them() {
        let request = json!({"email": "test", "password": "short",
                             "full_name": "Test User", "phone_number": "89991234567"});
        let (status, response) = send(Method::Post, "/api/users/register", &request.to_string());
        assert_eq!(status, 422);
        let fields: Vec<String> = body(&response)["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(fields, ["email", "password", "phone_number"]);
    }

    #[test]
    fn login_with_malformed_json_is_400_and_without_fields_422() {
        let (status, response) = send(Method::Post, "/api/users/login", "{\"email\":");
        assert_eq!(status, 400);
        assert_eq!(body(&response)["error"]["code"], "malformed_json");
        let (status, _) = send(Method::Post, "/api/users/login", "{}");
        assert_eq!(status, 422);
    }

    #[test]
    fn documented_request_bodies_are_the_ones_parsed() {
        api::testing::assert_documents_request::<domain::RegisterRequest>(|body| {
            NewUser::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::LoginRequest>(|body| {
            Credentials::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::RefreshRequest>(|body| {
            PresentedToken::parse(body).map(drop)
        });
    }

    #[test]
    fn a_string_that_is_no_refresh_token_is_401_before_the_host() {
        // Natively there is no Spin host: reaching a variable or the database would panic.
        for path in ["/api/users/refresh", "/api/users/logout"] {
            let (status, response) = send(Method::Post, path, r#"{"refresh_token":"garbage"}"#);
            assert_eq!(status, 401, "{path}");
            assert_eq!(body(&response)["error"]["code"], "refresh_token_invalid");
            let (status, response) = send(Method::Post, path, r#"{"refresh_token":""}"#);
            assert_eq!(status, 422, "{path}");
            assert_eq!(
                body(&response)["error"]["fields"][0]["field"],
                "refresh_token"
            );
        }
    }

    #[test]
    fn each_refusal_is_a_401_with_its_own_code() {
        let codes: Vec<String> = [
            Refusal::Unknown,
            Refusal::Expired,
            Refusal::Revoked,
            Refusal::Reused,
        ]
        .into_iter()
        .map(|refusal| {
            let response = UserError::RefreshRefused(refusal).into_response();
            assert_eq!(*response.status(), 401);
            body(&response)["error"]["code"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
        assert_eq!(
            codes,
            [
                "refresh_token_invalid",
                "refresh_token_expired",
                "refresh_token_revoked",
                "refresh_token_reused"
            ]
        );
        // Each is named in the refresh operation's documented 401.
        let doc = serde_json::to_value(openapi()).unwrap();
        let documented = doc["paths"]["/api/users/refresh"]["post"]["responses"]["401"]
            ["description"]
            .as_str()
            .unwrap()
            .to_owned();
        for code in &codes {
            assert!(documented.contains(code.as_str()), "{code}");
        }
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schema = |path: &str, method: &str, status: &str| {
            doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
                ["$ref"]
                .clone()
        };
        assert_eq!(
            schema("/api/users/register", "post", "201"),
            "#/components/schemas/User"
        );
        assert_eq!(
            schema("/api/users/login", "post", "200"),
            "#/components/schemas/TokenResponse"
        );
        assert_eq!(
            schema("/api/users/me", "get", "200"),
            "#/components/schemas/User"
        );
        assert_eq!(
            schema("/api/users/register", "post", "409"),
            "#/components/schemas/Error"
        );
        assert_eq!(
            schema("/api/users/refresh", "post", "200"),
            "#/components/schemas/TokenResponse"
        );
        for path in ["/api/users/logout", "/api/users/logout-all"] {
            assert_eq!(
                schema(path, "post", "200"),
                "#/components/schemas/LoggedOut",
                "{path}"
            );
        }
        // logout-all needs the caller's token.
        assert!(doc["paths"]["/api/users/logout-all"]["post"]["security"].is_null());
        // Register, login, refresh and logout are public: no access token, so no 401 added
        // to them by the shared document.
        for path in [
            "/api/users/register",
            "/api/users/login",
            "/api/users/refresh",
            "/api/users/logout",
        ] {
            assert_eq!(
                doc["paths"][path]["post"]["security"],
                json!([{}]),
                "{path}"
            );
        }
        assert!(doc["paths"]["/api/users/health/live"]["get"].is_object());
        for name in ["RegisterRequest", "LoginRequest", "RefreshRequest", "Role"] {
            assert!(doc["components"]["schemas"][name].is_object(), "{name}");
        }
    }

    #[test]
    fn too_many_attempts_is_a_429_with_retry_after_as_documented() {
        let response = UserError::TooManyAttempts {
            retry_after_seconds: 42,
        }
        .into_response();
        assert_eq!(*response.status(), 429);
        assert_eq!(body(&response)["error"]["code"], "too_many_attempts");
        assert_eq!(
            response.header("retry-after").and_then(|v| v.as_str()),
            Some("42")
        );
        let doc = serde_json::to_value(openapi()).unwrap();
        let documented = &doc["paths"]["/api/users/login"]["post"]["responses"]["429"];
        assert_eq!(
            documented["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error"
        );
        assert_eq!(
            documented["headers"]["Retry-After"]["schema"]["type"],
            "integer"
        );
    }

    #[test]
    fn the_documented_roles_are_the_serialized_ones() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let roles = &doc["components"]["schemas"]["Role"]["enum"];
        for role in [auth::Role::Customer, auth::Role::Staff] {
            let name = serde_json::to_value(role).unwrap();
            assert!(roles.as_array().unwrap().contains(&name), "{name}");
        }
        assert_eq!(roles.as_array().unwrap().len(), 2);
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
