//! Failed-login limits end to end: 429 with `Retry-After` before bcrypt, per account and
//! address, per address, per account, for unknown emails too, and the window's end. The host
//! strips client-sent `spin-*` headers, so every request here comes from the loopback address;
//! other addresses are rows written into the test database.

mod common;

use common::{psql_db, ServerConfig, TestServer};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery";

/// A login: its status, `Retry-After` in seconds if any, and the JSON answer.
fn login(server: &TestServer, email: &str, password: &str) -> (u16, Option<u64>, Value) {
    let response = server
        .client()
        .post(server.url("/api/users/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().parse().unwrap());
    (status, retry_after, response.json().unwrap_or(Value::Null))
}

/// Asserts a 429 `too_many_attempts` and returns its `Retry-After`.
fn assert_refused(answer: (u16, Option<u64>, Value)) -> u64 {
    let (status, retry_after, body) = answer;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "too_many_attempts", "{body}");
    retry_after.expect("a 429 carries Retry-After")
}

fn assert_wrong(answer: (u16, Option<u64>, Value)) {
    let (status, retry_after, body) = answer;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "invalid_credentials");
    assert_eq!(retry_after, None);
}

/// Moves every failure window back by `seconds`, as if that much time had passed.
fn age_failures(server: &TestServer, seconds: u32) {
    psql_db(
        &server.db,
        &format!(
            "UPDATE users.login_failures \
             SET window_started = window_started - interval '{seconds} seconds'"
        ),
    );
}

#[test]
fn five_failures_lock_the_account_from_that_address_until_the_window_ends() {
    let server = TestServer::start(ServerConfig::app());
    server.register("victim@example.com");
    server.register("other@example.com");
    for _ in 0..5 {
        assert_wrong(login(&server, "victim@example.com", "wrong password"));
    }
    // The sixth is refused before the password is looked at: the right one too.
    let wait = assert_refused(login(&server, "victim@example.com", PASSWORD));
    assert!((890..=900).contains(&wait), "Retry-After: {wait}");
    assert_refused(login(&server, " VICTIM@example.com", "wrong password"));
    // Another account from the same address is not affected.
    assert_eq!(login(&server, "other@example.com", PASSWORD).0, 200);

    // Refused attempts were not counted: the account saw 5 failures, the address too.
    let counts = psql_db(
        &server.db,
        "SELECT string_agg(kind || '=' || failures, ',' ORDER BY kind) \
         FROM users.login_failures",
    );
    assert_eq!(counts, "account=5,account_address=5,address=5");

    // Fifteen minutes later the window is over and the right password works again; the
    // success forgets the account's failures.
    age_failures(&server, 900);
    assert_eq!(login(&server, "victim@example.com", PASSWORD).0, 200);
    assert_eq!(
        psql_db(
            &server.db,
            "SELECT count(*) FROM users.login_failures WHERE subject LIKE 'victim@%'"
        ),
        "0"
    );
}

#[test]
fn a_success_clears_the_accounts_failures_so_they_do_not_add_up() {
    let server = TestServer::start(ServerConfig::app());
    server.register("forgetful@example.com");
    for _ in 0..3 {
        for _ in 0..4 {
            assert_wrong(login(&server, "forgetful@example.com", "wrong password"));
        }
        assert_eq!(login(&server, "forgetful@example.com", PASSWORD).0, 200);
    }
    // Without those successes the second round would have been refused; the limit is there.
    for _ in 0..5 {
        assert_wrong(login(&server, "forgetful@example.com", "wrong password"));
    }
    assert_refused(login(&server, "forgetful@example.com", PASSWORD));
}

#[test]
fn a_concurrent_burst_of_wrong_passwords_gets_only_five_checked() {
    let server = TestServer::start(ServerConfig::app());
    server.register("target@example.com");
    let started = std::time::Instant::now();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..30)
            .map(|_| {
                let server = &server;
                scope.spawn(move || login(server, "target@example.com", "wrong password").0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    eprintln!("30 concurrent wrong logins took {:?}", started.elapsed());
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(401), count(429)), (5, 25), "{statuses:?}");
    assert_refused(login(&server, "target@example.com", PASSWORD));
}

#[test]
fn unknown_emails_are_limited_like_known_ones_and_one_address_across_accounts() {
    let server = TestServer::start(ServerConfig::app());
    server.register("known@example.com");
    // An email with no account: the same 401s, then the same 429.
    for _ in 0..5 {
        assert_wrong(login(&server, "nobody@example.com", "wrong password"));
    }
    let unknown = login(&server, "nobody@example.com", "wrong password");
    assert_refused(unknown.clone());
    for _ in 0..5 {
        assert_wrong(login(&server, "known@example.com", "wrong password"));
    }
    let known = login(&server, "known@example.com", "wrong password");
    assert_refused(known.clone());
    assert_eq!(unknown.2, known.2);

    // Ten failures so far from this address; ten more on ten other accounts reach the
    // per-address limit of 20, and then no account logs in from here.
    server.register("bystander@example.com");
    for i in 0..10 {
        assert_wrong(login(&server, &format!("guess{i}@example.com"), PASSWORD));
    }
    let wait = assert_refused(login(&server, "bystander@example.com", PASSWORD));
    assert!((1..=900).contains(&wait), "Retry-After: {wait}");
}

#[test]
fn failures_from_other_addresses_count_only_in_the_looser_per_account_limit() {
    let server = TestServer::start(ServerConfig::app());
    server.register("victim@example.com");
    // An attacker at 203.0.113.7 has used up the account's attempts from there...
    psql_db(
        &server.db,
        "INSERT INTO users.login_failures (kind, subject, failures, window_started) VALUES \
         ('account_address', 'victim@example.com 203.0.113.7', 5, now()), \
         ('address', '203.0.113.7', 5, now()), \
         ('account', 'victim@example.com', 5, now())",
    );
    // ...which does not lock the owner out from here, and the owner's success clears the
    // account's failures, not the attacker's own bucket.
    assert_eq!(login(&server, "victim@example.com", PASSWORD).0, 200);
    let left = psql_db(
        &server.db,
        "SELECT string_agg(kind || ' ' || subject || '=' || failures, ',' ORDER BY kind) \
         FROM users.login_failures",
    );
    assert_eq!(
        left,
        "account_address victim@example.com 203.0.113.7=5,address 203.0.113.7=5"
    );

    // Guessing spread over many addresses: 49 failures from elsewhere, the 50th from here,
    // and then the account is refused from everywhere until the window ends.
    psql_db(
        &server.db,
        "INSERT INTO users.login_failures (kind, subject, failures, window_started) \
         VALUES ('account', 'victim@example.com', 49, now())",
    );
    assert_wrong(login(&server, "victim@example.com", "wrong password"));
    assert_refused(login(&server, "victim@example.com", PASSWORD));
    age_failures(&server, 900);
    assert_eq!(login(&server, "victim@example.com", PASSWORD).0, 200);
}

#[test]
fn the_limits_and_the_window_are_spin_variables() {
    let config = ServerConfig::app()
        .env(
            "SPIN_VARIABLE_LOGIN_MAX_FAILURES_PER_ACCOUNT_AND_ADDRESS",
            "2",
        )
        .env("SPIN_VARIABLE_LOGIN_FAILURE_WINDOW_SECONDS", "2");
    let server = TestServer::start(config);
    server.register("quick@example.com");
    assert_wrong(login(&server, "quick@example.com", "wrong password"));
    assert_wrong(login(&server, "quick@example.com", "wrong password"));
    let wait = assert_refused(login(&server, "quick@example.com", PASSWORD));
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    std::thread::sleep(std::time::Duration::from_millis(wait * 1000 + 200));
    assert_eq!(login(&server, "quick@example.com", PASSWORD).0, 200);

    // A limit that is not a positive number is a configuration error, not "no limit".
    let config = ServerConfig::app().env("SPIN_VARIABLE_LOGIN_MAX_FAILURES_PER_ADDRESS", "0");
    let server = TestServer::start(config);
    let (status, _, body) = login(&server, "quick@example.com", PASSWORD);
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["code"], "configuration");
}
