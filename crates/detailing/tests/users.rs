//! user-service end to end: registration, login, the caller's profile, token rules as the
//! components apply them, and `detailing user create-staff`.

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
    assert_eq!(token["expires_in"], 3600);
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
