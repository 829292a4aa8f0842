//! user-service end to end: registration, login, the caller's profile, token rules as the
//! components apply them, sessions (refresh, rotation, reuse, logout, logout-all) and
//! `detailing user create-staff`.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use common::{mint_token, psql_db, ServerConfig, TestServer};
use serde_json::{json, Value};

fn register(server: &TestServer, body: &Value) -> (u16, Value) {
    server.call("POST", "/api/users/register", None, Some(body))
}

fn login(server: &TestServer, email: &str, password: &str) -> (u16, Value) {
    let body = json!({"email": email, "password": password});
    server.call("POST", "/api/users/login", None, Some(&body))
}

fn example_registration() -> Value {
    // The reference design's curl example, byte for byte.
    json!({"email":"test@example.com","password":"password123","full_name":"Test User","phone_number":"+79991234567"})
}

#[test]
fn register_the_example_user_then_login_then_me() {
    let server = TestServer::start(ServerConfig::app());
    let (status, user) = register(&server, &example_registration());
    assert_eq!(status, 201, "{user}");
    let keys: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "created_at",
            "email",
            "full_name",
            "id",
            "phone_number",
            "role"
        ]
    );
    assert_eq!(user["email"], "test@example.com");
    assert_eq!(user["phone_number"], "+79991234567");
    assert_eq!(user["role"], "customer");

    let (status, token) = login(&server, "test@example.com", "password123");
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["token_type"], "bearer");
    assert_eq!(token["expires_in"], 900);
    let access = token["access_token"].as_str().unwrap();

    let (status, me) = server.call("GET", "/api/users/me", Some(access), None);
    assert_eq!((status, me), (200, user.clone()));

    // Stored as a bcrypt hash at the configured cost, never as the password.
    let id = user["id"].as_str().unwrap();
    let hash = psql_db(
        &server.db,
        &format!("SELECT password_hash FROM users.users WHERE id = '{id}'"),
    );
    assert!(
        hash.starts_with(&format!("$2b${}$", common::TEST_BCRYPT_COST)),
        "{hash}"
    );
    assert!(!hash.contains("password123"));
}

#[test]
fn duplicate_email_is_409_whatever_its_case_and_spacing() {
    let server = TestServer::start(ServerConfig::app());
    assert_eq!(register(&server, &example_registration()).0, 201);
    let mut again = example_registration();
    again["email"] = json!("  TEST@Example.com ");
    let (status, body) = register(&server, &again);
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "email_taken");
    // The differently written address logs in to the one account.
    assert_eq!(login(&server, " Test@EXAMPLE.com", "password123").0, 200);
}

#[test]
fn concurrent_registrations_of_one_email_create_exactly_one_account() {
    let server = TestServer::start(ServerConfig::app());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    let mut body = example_registration();
                    body["full_name"] = json!(format!("Racer {i}"));
                    register(server, &body).0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        7,
        "{statuses:?}"
    );
    assert_eq!(psql_db(&server.db, "SELECT count(*) FROM users.users"), "1");
}

#[test]
fn registration_rules_are_enforced_with_field_errors() {
    let server = TestServer::start(ServerConfig::app());
    for (field, value) in [
        ("password", json!("x".repeat(257))),
        ("password", json!("short")),
        ("email", json!("not-an-email")),
        ("phone_number", json!("89991234567")),
        ("full_name", json!("   ")),
    ] {
        let mut body = example_registration();
        body[field] = value;
        let (status, answer) = register(&server, &body);
        assert_eq!(status, 422, "{field}: {answer}");
        assert_eq!(answer["error"]["fields"][0]["field"], field, "{answer}");
    }
    assert_eq!(psql_db(&server.db, "SELECT count(*) FROM users.users"), "0");
}

#[test]
fn unknown_email_and_wrong_password_get_the_same_401() {
    let server = TestServer::start(ServerConfig::app());
    assert_eq!(register(&server, &example_registration()).0, 201);
    let wrong_password = login(&server, "test@example.com", "password124");
    let unknown_email = login(&server, "nobody@example.com", "password123");
    let too_long = login(&server, "test@example.com", &"x".repeat(100));
    assert_eq!(wrong_password.0, 401);
    assert_eq!(wrong_password.1["error"]["code"], "invalid_credentials");
    assert_eq!(unknown_email, wrong_password);
    assert_eq!(too_long, wrong_password);
}

#[test]
fn me_refuses_missing_expired_forged_and_orphaned_tokens() {
    let server = TestServer::start(ServerConfig::app());
    let (_, user) = register(&server, &example_registration());
    let id: uuid::Uuid = user["id"].as_str().unwrap().parse().unwrap();

    let (status, body) = server.call("GET", "/api/users/me", None, None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_token"))
    );

    let expired = mint_token(id, auth::Role::Customer, 7200, 3600);
    let (status, body) = server.call("GET", "/api/users/me", Some(&expired), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("token_expired"))
    );

    let other_key = auth::Secret::new(b"some-other-secret-of-32-bytes-or-more").unwrap();
    let forged = auth::token::issue(
        &other_key,
        &auth::Claims::new(id, auth::Role::Staff, api_now(), 3600),
    );
    let (status, body) = server.call("GET", "/api/users/me", Some(&forged), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("invalid_token"))
    );

    // A valid token whose account is gone.
    let orphan = mint_token(uuid::Uuid::new_v4(), auth::Role::Customer, 0, 3600);
    let (status, _) = server.call("GET", "/api/users/me", Some(&orphan), None);
    assert_eq!(status, 401);
}

fn api_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn a_bcrypt_cost_below_10_is_a_configuration_error_not_a_weak_hash() {
    let config = ServerConfig::app().env("SPIN_VARIABLE_BCRYPT_COST", "9");
    let server = TestServer::start(config);
    let (status, body) = register(&server, &example_registration());
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "configuration");
    assert_eq!(psql_db(&server.db, "SELECT count(*) FROM users.users"), "0");
}

#[test]
fn a_jwt_secret_under_32_bytes_stops_the_host_at_startup() {
    let db = common::TestDb::create();
    let output = Command::new(env!("CARGO_BIN_EXE_detailing"))
        .arg("--manifest")
        .arg(common::repo_root().join("spin.toml"))
        .args(["up", "--listen", "127.0.0.1:0", "--skip-migrations"])
        .env("SPIN_VARIABLE_POSTGRES_URL", db.url())
        .env(
            "SPIN_VARIABLE_JWT_SECRET",
            "only-31-bytes-long-secret-value",
        )
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("SPIN_VARIABLE_JWT_SECRET is too short") && stderr.contains("has 31 bytes"),
        "{stderr}"
    );
}

fn create_staff(db_url: &str, email: &str, password: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_detailing"))
        .arg("--manifest")
        .arg(common::repo_root().join("spin.toml"))
        .args([
            "user",
            "create-staff",
            "--email",
            email,
            "--full-name",
            "Boss",
        ])
        .env("SPIN_VARIABLE_POSTGRES_URL", db_url)
        .env("SPIN_VARIABLE_JWT_SECRET", common::TEST_JWT_SECRET)
        .env("SPIN_VARIABLE_BCRYPT_COST", common::TEST_BCRYPT_COST)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn create_staff_makes_an_account_that_logs_in_as_staff() {
    let server = TestServer::start(ServerConfig::app());
    let out = create_staff(
        &server.db.url(),
        "Boss@Detailing.example",
        "staff password 1",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = server.login("boss@detailing.example", "staff password 1");
    let (status, me) = server.call("GET", "/api/users/me", Some(&token), None);
    assert_eq!(status, 200);
    assert_eq!(me["role"], "staff");
    assert_eq!(me["phone_number"], Value::Null);

    // Once only, and never with a password the API would refuse.
    let again = create_staff(
        &server.db.url(),
        "boss@detailing.example",
        "staff password 2",
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let short = create_staff(&server.db.url(), "other@detailing.example", "short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8 characters"));
    assert_eq!(
        psql_db(
            &server.db,
            "SELECT count(*) FROM users.users WHERE role = 'staff'"
        ),
        "1"
    );
}

#[test]
fn accounts_survive_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let (_, user) = register(&server, &example_registration());
    server.restart();
    let token = server.login("test@example.com", "password123");
    let (status, me) = server.call("GET", "/api/users/me", Some(&token), None);
    assert_eq!((status, me), (200, user));
}

// Sessions: refresh tokens, rotation, reuse, logout and logout-all.

const PASSWORD: &str = "correct horse battery";

/// Registers `email` and logs in once: the login's answer.
fn sign_up(server: &TestServer, email: &str) -> Value {
    let mut body = example_registration();
    body["email"] = json!(email);
    body["password"] = json!(PASSWORD);
    let (status, user) = register(server, &body);
    assert_eq!(status, 201, "{user}");
    logged_in(server, email)
}

/// Logs `email` in again: one more session.
fn logged_in(server: &TestServer, email: &str) -> Value {
    let (status, answer) = login(server, email, PASSWORD);
    assert_eq!(status, 200, "{answer}");
    answer
}

fn refresh_token(answer: &Value) -> &str {
    answer["refresh_token"].as_str().unwrap()
}

fn refresh(server: &TestServer, token: &str) -> (u16, Value) {
    let body = json!({"refresh_token": token});
    server.call("POST", "/api/users/refresh", None, Some(&body))
}

fn logout(server: &TestServer, token: &str) -> (u16, Value) {
    let body = json!({"refresh_token": token});
    server.call("POST", "/api/users/logout", None, Some(&body))
}

/// Asserts a 401 with `code`, in the shared error shape.
fn assert_refused(answer: (u16, Value), code: &str) {
    let (status, body) = answer;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
}

fn access_works(server: &TestServer, answer: &Value) -> bool {
    let access = answer["access_token"].as_str().unwrap();
    server.call("GET", "/api/users/me", Some(access), None).0 == 200
}

#[test]
fn login_answers_a_refresh_token_that_rotates_and_is_stored_hashed() {
    let server = TestServer::start(ServerConfig::app());
    let first = sign_up(&server, "driver@example.com");
    // The login answer keeps its fields and adds the session's.
    assert_eq!(first["token_type"], "bearer");
    assert_eq!(first["expires_in"], 900);
    assert_eq!(first["refresh_token_expires_in"], 2_592_000);
    let token = refresh_token(&first);
    assert_eq!(token.len(), 43, "{token}");

    let (status, second) = refresh(&server, token);
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["token_type"], "bearer");
    assert_eq!(second["expires_in"], 900);
    // The session's end is fixed at login: refreshing does not push it back.
    let left = second["refresh_token_expires_in"].as_i64().unwrap();
    assert!((2_592_000 - 60..=2_592_000).contains(&left), "{left}");
    assert_ne!(refresh_token(&second), token);
    assert!(access_works(&server, &second));

    // The new token rotates again; each is one row of the one session, stored as its hash.
    let (status, third) = refresh(&server, refresh_token(&second));
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        psql_db(
            &server.db,
            "SELECT count(*) || ' ' || count(DISTINCT session_id) || ' ' || count(used_at) \
             FROM users.refresh_tokens"
        ),
        "3 1 2"
    );
    for answer in [&first, &second, &third] {
        let token = refresh_token(answer);
        let hash = auth::RefreshToken::parse(token).unwrap().hash();
        let found = psql_db(
            &server.db,
            &format!(
                "SELECT count(*) FROM users.refresh_tokens WHERE token_hash = '{hash}' \
                 AND token_hash <> '{token}'"
            ),
        );
        assert_eq!(found, "1");
    }

    // A refresh reads the user's role as it is now.
    psql_db(&server.db, "UPDATE users.users SET role = 'staff'");
    let (status, fourth) = refresh(&server, refresh_token(&third));
    assert_eq!(status, 200, "{fourth}");
    let secret = auth::Secret::new(common::TEST_JWT_SECRET.as_bytes()).unwrap();
    let claims =
        auth::token::verify(&secret, fourth["access_token"].as_str().unwrap(), api_now()).unwrap();
    assert_eq!(claims.role, auth::Role::Staff);
    assert_eq!(claims.exp - claims.iat, 900);
}

#[test]
fn a_reused_refresh_token_ends_its_whole_session_and_no_other() {
    let server = TestServer::start(ServerConfig::app());
    let stolen = sign_up(&server, "victim@example.com");
    let elsewhere = logged_in(&server, "victim@example.com");
    let (status, rotated) = refresh(&server, refresh_token(&stolen));
    assert_eq!(status, 200, "{rotated}");

    // The used token comes back (a thief's copy, or the owner's after the thief's refresh).
    assert_refused(
        refresh(&server, refresh_token(&stolen)),
        "refresh_token_reused",
    );
    // The session is over: its latest token is refused too, and the reuse stays refused.
    assert_refused(
        refresh(&server, refresh_token(&rotated)),
        "refresh_token_revoked",
    );
    assert_refused(
        refresh(&server, refresh_token(&stolen)),
        "refresh_token_reused",
    );
    // Access tokens already issued live until they expire: that is what short-lived means.
    assert!(access_works(&server, &rotated));
    // The user's other session is untouched.
    assert_eq!(refresh(&server, refresh_token(&elsewhere)).0, 200);
    assert_eq!(
        psql_db(
            &server.db,
            "SELECT string_agg(coalesce(revoked_reason, 'live'), ',' ORDER BY revoked_reason) \
             FROM users.sessions"
        ),
        "reuse,live"
    );
}

#[test]
fn of_concurrent_refreshes_with_one_token_exactly_one_succeeds() {
    let server = TestServer::start(ServerConfig::app());
    let login = sign_up(&server, "racer@example.com");
    let token = refresh_token(&login);
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let server = &server;
                scope.spawn(move || refresh(server, token))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(winners.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(*status, 401, "{body}");
        assert_eq!(body["error"]["code"], "refresh_token_reused", "{body}");
    }
    // One new token was issued, and the losers' reuse ended the session it belongs to.
    assert_eq!(
        psql_db(&server.db, "SELECT count(*) FROM users.refresh_tokens"),
        "2"
    );
    assert_refused(
        refresh(&server, refresh_token(winners[0])),
        "refresh_token_revoked",
    );
}

#[test]
fn logout_ends_the_session_of_its_refresh_token_only() {
    let server = TestServer::start(ServerConfig::app());
    let phone = sign_up(&server, "leaver@example.com");
    let laptop = logged_in(&server, "leaver@example.com");
    let (status, _) = refresh(&server, refresh_token(&phone));
    assert_eq!(status, 200);

    // No access token needed: the refresh token is the proof. A used token of the session
    // ends it as well as the latest one does.
    let (status, body) = logout(&server, refresh_token(&phone));
    assert_eq!((status, &body), (200, &json!({"revoked_sessions": 1})));
    let (status, body) = logout(&server, refresh_token(&phone));
    assert_eq!((status, &body), (200, &json!({"revoked_sessions": 0})));
    assert_refused(
        refresh(&server, refresh_token(&phone)),
        "refresh_token_reused",
    );
    // The other session goes on.
    let (status, laptop_next) = refresh(&server, refresh_token(&laptop));
    assert_eq!(status, 200, "{laptop_next}");
    let (status, _) = logout(&server, refresh_token(&laptop_next));
    assert_eq!(status, 200);
    assert_refused(
        refresh(&server, refresh_token(&laptop_next)),
        "refresh_token_revoked",
    );

    assert_refused(logout(&server, "garbage"), "refresh_token_invalid");
    let unknown = auth::RefreshToken::generate().unwrap();
    assert_refused(logout(&server, unknown.as_str()), "refresh_token_invalid");
}

#[test]
fn logout_all_ends_every_session_of_the_caller_and_no_one_elses() {
    let server = TestServer::start(ServerConfig::app());
    let first = sign_up(&server, "many@example.com");
    let second = logged_in(&server, "many@example.com");
    let (status, third) = refresh(&server, refresh_token(&second));
    assert_eq!(status, 200);
    let other = sign_up(&server, "other@example.com");

    let (status, body) = server.call("POST", "/api/users/logout-all", None, None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("missing_token"))
    );

    let access = third["access_token"].as_str().unwrap();
    let (status, body) = server.call("POST", "/api/users/logout-all", Some(access), None);
    assert_eq!((status, &body), (200, &json!({"revoked_sessions": 2})));
    assert_refused(
        refresh(&server, refresh_token(&first)),
        "refresh_token_revoked",
    );
    assert_refused(
        refresh(&server, refresh_token(&third)),
        "refresh_token_revoked",
    );
    assert_eq!(refresh(&server, refresh_token(&other)).0, 200);
    // The access token stays valid until it expires; a new login starts a new session.
    assert!(access_works(&server, &third));
    let (status, body) = server.call("POST", "/api/users/logout-all", Some(access), None);
    assert_eq!((status, &body), (200, &json!({"revoked_sessions": 0})));
    let again = logged_in(&server, "many@example.com");
    assert_eq!(refresh(&server, refresh_token(&again)).0, 200);
}

#[test]
fn garbage_unknown_and_expired_refresh_tokens_are_401() {
    let server = TestServer::start(ServerConfig::app());
    let login = sign_up(&server, "late@example.com");
    let access = login["access_token"].as_str().unwrap();

    for garbage in ["garbage", access, &"A".repeat(43)] {
        assert_refused(refresh(&server, garbage), "refresh_token_invalid");
    }
    let unknown = auth::RefreshToken::generate().unwrap();
    assert_refused(refresh(&server, unknown.as_str()), "refresh_token_invalid");
    for body in [
        json!({}),
        json!({"refresh_token": 7}),
        json!({"refresh_token": ""}),
    ] {
        let (status, answer) = server.call("POST", "/api/users/refresh", None, Some(&body));
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["fields"][0]["field"], "refresh_token");
    }

    // The session reaches its end, as if 30 days had passed.
    psql_db(
        &server.db,
        "UPDATE users.sessions SET created_at = created_at - interval '30 days', \
         expires_at = expires_at - interval '30 days'",
    );
    assert_refused(
        refresh(&server, refresh_token(&login)),
        "refresh_token_expired",
    );
    // The next login prunes it, tokens and all.
    logged_in(&server, "late@example.com");
    assert_eq!(
        psql_db(
            &server.db,
            "SELECT count(*) FROM users.sessions WHERE expires_at <= now()"
        ),
        "0"
    );
    assert_refused(
        refresh(&server, refresh_token(&login)),
        "refresh_token_invalid",
    );
}
