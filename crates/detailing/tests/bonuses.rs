//! bonus-service end to end: payment events delivered the way the relay delivers them
//! (POST with `x-relay-token`, signed as payment-service signs them), accrued once however
//! often and however concurrently they arrive; spends that never overdraw; promocodes once
//! per user; the ledger as history. Forged events: events_security.rs.

mod common;

use std::time::{Duration, Instant};

use common::{psql_db, signed_event, Actor, ServerConfig, TestServer, TEST_RELAY_TOKEN};
use serde_json::{json, Value};
use uuid::Uuid;

/// `POST /api/bonuses/events` of `event`, signed, with extra headers (the relay's token, a
/// user's bearer token).
fn deliver_with(server: &TestServer, headers: &[(&str, &str)], event: &Value) -> (u16, Value) {
    let mut request = server
        .client()
        .post(server.url("/api/bonuses/events"))
        .header("content-type", "application/json")
        .body(signed_event(event));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// Delivers `event` as the relay does.
fn deliver(server: &TestServer, event: &Value) -> (u16, Value) {
    deliver_with(server, &[("x-relay-token", TEST_RELAY_TOKEN)], event)
}

/// A delivery that must be accepted.
fn accrue(server: &TestServer, event: &Value) -> Value {
    let (status, answer) = deliver(server, event);
    assert_eq!(status, 200, "{answer}\n{}", server.log());
    answer
}

/// A payment_succeeded event for `user`, as payment-service's outbox row becomes one.
fn payment_event(user: &Actor, amount: f64) -> Value {
    json!({
        "event_id": Uuid::new_v4(),
        "order_id": Uuid::new_v4(),
        "user_id": user.id,
        "amount": amount,
    })
}

fn balance(server: &TestServer, who: &Actor) -> i64 {
    let (status, body) = server.call("GET", "/api/bonuses/balance", who.token(), None);
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert_eq!(body["user_id"], json!(who.id));
    kopecks(&body["balance"])
}

fn spend(server: &TestServer, who: &Actor, body: &Value) -> (u16, Value) {
    server.call("POST", "/api/bonuses/spend", who.token(), Some(body))
}

fn apply(server: &TestServer, who: &Actor, code: &str) -> (u16, Value) {
    let body = json!({ "code": code });
    server.call(
        "POST",
        "/api/bonuses/promocodes/apply",
        who.token(),
        Some(&body),
    )
}

fn history(server: &TestServer, who: &Actor, query: &str) -> Value {
    let path = format!("/api/bonuses/history{query}");
    let (status, body) = server.call("GET", &path, who.token(), None);
    assert_eq!(status, 200, "{body}\n{}", server.log());
    body
}

fn kopecks(amount: &Value) -> i64 {
    (amount
        .as_f64()
        .unwrap_or_else(|| panic!("not an amount: {amount}"))
        * 100.0)
        .round() as i64
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// One number from the test's database.
fn count(server: &TestServer, sql: &str) -> i64 {
    psql_db(&server.db, sql).parse().unwrap()
}

fn accrual_line(amount: &str, user: Uuid) -> String {
    format!("Accrued {amount} bonuses to user {user}")
}

/// How often `line` is a whole line of the server's output, once `marker` has appeared.
/// Components write stdout in order, so after the marker, every line printed before it
/// has been captured too.
fn lines_once_output_reaches(server: &TestServer, line: &str, marker: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let log = server.log();
        if log.lines().any(|l| l == marker) {
            return log.lines().filter(|l| *l == line).count();
        }
        assert!(
            Instant::now() < deadline,
            "no `{marker}` in the output:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_payment_event_accrues_one_percent_and_logs_the_accrual_line() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let event = payment_event(&me, 3000.0);

    let answer = accrue(&server, &event);
    assert_eq!(answer["event_id"], event["event_id"]);
    assert_eq!(answer["user_id"], json!(me.id));
    assert_eq!(kopecks(&answer["accrued"]), 3_000);
    assert_eq!(kopecks(&answer["balance"]), 3_000);
    assert_eq!(answer["duplicate"], false);
    assert_eq!(balance(&server, &me), 3_000);

    let line = accrual_line("30.00", me.id);
    assert_eq!(lines_once_output_reaches(&server, &line, &line), 1);
    let stored = psql_db(
        &server.db,
        &format!(
            "SELECT kind, amount_kopecks, order_id FROM bonuses.ledger WHERE event_id = '{}'",
            event["event_id"].as_str().unwrap()
        ),
    );
    assert_eq!(
        stored,
        format!("accrual|3000|{}", event["order_id"].as_str().unwrap())
    );
}

#[test]
fn a_redelivered_event_accrues_once_and_answers_duplicate() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let event = payment_event(&me, 999.99);

    let first = accrue(&server, &event);
    assert_eq!(
        (kopecks(&first["accrued"]), first["duplicate"].clone()),
        (1_000, json!(false))
    );
    let again = accrue(&server, &event);
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["user_id"], json!(me.id));
    assert_eq!(
        kopecks(&again["accrued"]),
        1_000,
        "the first accrual, told again"
    );
    assert_eq!(kopecks(&again["balance"]), 1_000);
    assert_eq!(balance(&server, &me), 1_000);
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.ledger"), 1);

    // Another user's event afterwards: once its line is out, a second line for the first
    // event would be out too.
    let other = server.customer();
    accrue(&server, &payment_event(&other, 100.0));
    let marker = accrual_line("1.00", other.id);
    assert_eq!(
        lines_once_output_reaches(&server, &accrual_line("10.00", me.id), &marker),
        1
    );
}

#[test]
fn sixteen_concurrent_deliveries_of_one_event_accrue_exactly_once() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let event = payment_event(&me, 3000.0);

    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let deliveries: Vec<_> = (0..16)
            .map(|_| scope.spawn(|| deliver(&server, &event)))
            .collect();
        deliveries.into_iter().map(|d| d.join().unwrap()).collect()
    });
    for (status, answer) in &answers {
        assert_eq!(*status, 200, "{answer}\n{}", server.log());
        assert_eq!(kopecks(&answer["accrued"]), 3_000, "{answer}");
    }
    let firsts = answers
        .iter()
        .filter(|(_, answer)| answer["duplicate"] == false)
        .count();
    assert_eq!(firsts, 1, "{answers:?}");
    let event_id = event["event_id"].as_str().unwrap();
    assert_eq!(
        count(
            &server,
            &format!("SELECT count(*) FROM bonuses.ledger WHERE event_id = '{event_id}'")
        ),
        1
    );
    assert_eq!(balance(&server, &me), 3_000);
}

#[test]
fn events_need_the_relay_token_and_a_users_bearer_token_is_not_one() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let staff = server.staff();
    let event = payment_event(&me, 3000.0);
    let my_bearer = format!("Bearer {}", me.token);
    let staff_bearer = format!("Bearer {}", staff.token);

    for headers in [
        vec![],
        vec![("x-relay-token", "not-the-relay-token")],
        vec![("x-relay-token", "")],
        vec![("x-relay-token", &TEST_RELAY_TOKEN[1..])],
        vec![("authorization", my_bearer.as_str())],
        vec![("authorization", staff_bearer.as_str())],
        vec![
            ("authorization", staff_bearer.as_str()),
            ("x-relay-token", "not-the-relay-token"),
        ],
    ] {
        let (status, answer) = deliver_with(&server, &headers, &event);
        assert_eq!(status, 401, "{headers:?}: {answer}");
        assert_eq!(code(&answer), Some("invalid_relay_token"), "{headers:?}");
    }
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.ledger"), 0);
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.accounts"), 0);
    assert_eq!(balance(&server, &me), 0);
    // The token is the relay's only: the same event with it is accepted.
    accrue(&server, &event);
    assert_eq!(balance(&server, &me), 3_000);
}

#[test]
fn malformed_events_are_refused_and_record_nothing() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let good = payment_event(&me, 3000.0);
    let mut cases = Vec::new();
    for (field, bad) in [
        ("amount", json!(0)),
        ("amount", json!(-5.0)),
        ("amount", json!(10.001)),
        ("amount", Value::Null),
        ("user_id", json!("someone")),
        ("event_id", json!(42)),
    ] {
        let mut event = good.clone();
        event[field] = bad;
        cases.push((field, event));
    }
    for (field, event) in &cases {
        let (status, answer) = deliver(&server, event);
        assert_eq!(status, 422, "{event}: {answer}");
        let named = answer["error"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["field"] == *field);
        assert!(named, "{event}: {answer}");
    }
    // Signed, but not JSON inside.
    let response = server
        .client()
        .post(server.url("/api/bonuses/events"))
        .header("x-relay-token", TEST_RELAY_TOKEN)
        .body(common::signed_text("{not json"))
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.ledger"), 0);
}

#[test]
fn spending_within_the_balance_succeeds_and_beyond_it_is_409() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    accrue(&server, &payment_event(&me, 3000.0));

    let order_id = Uuid::new_v4();
    let (status, spent) = spend(&server, &me, &json!({"amount": 12.5, "order_id": order_id}));
    assert_eq!(status, 200, "{spent}");
    assert_eq!(
        (kopecks(&spent["spent"]), kopecks(&spent["balance"])),
        (1_250, 1_750)
    );

    let (status, refused) = spend(&server, &me, &json!({"amount": 17.51}));
    assert_eq!(
        (status, code(&refused)),
        (409, Some("insufficient_bonuses"))
    );
    assert_eq!(balance(&server, &me), 1_750);

    let (status, spent) = spend(&server, &me, &json!({"amount": "17.50"}));
    assert_eq!((status, kopecks(&spent["balance"])), (200, 0));
    let (status, refused) = spend(&server, &me, &json!({"amount": 0.01}));
    assert_eq!(
        (status, code(&refused)),
        (409, Some("insufficient_bonuses"))
    );

    // Someone who never had bonuses has nothing to spend.
    let newcomer = server.customer();
    let (status, refused) = spend(&server, &newcomer, &json!({"amount": 1}));
    assert_eq!(
        (status, code(&refused)),
        (409, Some("insufficient_bonuses"))
    );

    for bad in [
        json!({"amount": 0}),
        json!({"amount": -1}),
        json!({"amount": 1.005}),
        json!({"amount": "lots"}),
        json!({}),
        json!({"amount": 1, "order_id": "not-a-uuid"}),
    ] {
        let (status, refused) = spend(&server, &me, &bad);
        assert_eq!(
            (status, code(&refused)),
            (422, Some("validation_failed")),
            "{bad}"
        );
    }
    assert_eq!(
        psql_db(
            &server.db,
            &format!(
                "SELECT string_agg(amount_kopecks::text || ':' || coalesce(order_id::text, '-'), ',' \
                 ORDER BY created_at) FROM bonuses.ledger WHERE kind = 'spend' AND user_id = '{}'",
                me.id
            )
        ),
        format!("-1250:{order_id},-1750:-")
    );
}

#[test]
fn concurrent_spends_never_take_the_balance_below_zero() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    accrue(&server, &payment_event(&me, 10_000.0));
    assert_eq!(balance(&server, &me), 10_000);

    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let spends: Vec<_> = (0..10)
            .map(|_| scope.spawn(|| spend(&server, &me, &json!({"amount": 30})).0))
            .collect();
        spends.into_iter().map(|s| s.join().unwrap()).collect()
    });
    let succeeded = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!(
        (succeeded, refused),
        (3, 7),
        "{statuses:?}\n{}",
        server.log()
    );
    assert_eq!(balance(&server, &me), 1_000);
    let user = me.id;
    assert_eq!(
        count(
            &server,
            &format!(
                "SELECT count(*) FROM bonuses.ledger WHERE kind = 'spend' AND user_id = '{user}'"
            )
        ),
        3
    );
    assert_eq!(
        count(
            &server,
            &format!("SELECT sum(amount_kopecks) FROM bonuses.ledger WHERE user_id = '{user}'")
        ),
        1_000,
        "the ledger explains the balance"
    );
}

#[test]
fn a_promocode_credits_once_per_user() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();

    let (status, credited) = apply(&server, &me, "  welcome500 ");
    assert_eq!(status, 200, "{credited}\n{}", server.log());
    assert_eq!(credited["code"], "WELCOME500");
    assert_eq!(kopecks(&credited["credited"]), 50_000);
    assert_eq!(kopecks(&credited["balance"]), 50_000);

    let (status, again) = apply(&server, &me, "WELCOME500");
    assert_eq!(
        (status, code(&again)),
        (409, Some("promocode_already_used"))
    );
    assert_eq!(balance(&server, &me), 50_000);

    // Once per user, not once overall.
    let other = server.customer();
    assert_eq!(apply(&server, &other, "Welcome500").0, 200);
    assert_eq!(balance(&server, &other), 50_000);
}

#[test]
fn concurrent_applications_of_one_promocode_credit_it_once() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let applies: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| apply(&server, &me, "DETAILING2026").0))
            .collect();
        applies.into_iter().map(|a| a.join().unwrap()).collect()
    });
    let succeeded = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 409).count();
    assert_eq!(
        (succeeded, refused),
        (1, 7),
        "{statuses:?}\n{}",
        server.log()
    );
    assert_eq!(balance(&server, &me), 100_000);
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.ledger"), 1);
}

#[test]
fn unknown_promocodes_are_404_and_expired_ones_422() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();

    let (status, body) = apply(&server, &me, "NO-SUCH-CODE");
    assert_eq!((status, code(&body)), (404, Some("promocode_not_found")));
    let (status, body) = apply(&server, &me, "summer2024");
    assert_eq!(
        (status, code(&body)),
        (422, Some("promocode_expired")),
        "{body}"
    );
    for bad in [json!({"code": "  "}), json!({"code": 2024}), json!({})] {
        let (status, body) = server.call(
            "POST",
            "/api/bonuses/promocodes/apply",
            me.token(),
            Some(&bad),
        );
        assert_eq!(
            (status, code(&body)),
            (422, Some("validation_failed")),
            "{bad}"
        );
    }
    assert_eq!(balance(&server, &me), 0);
    assert_eq!(
        count(&server, "SELECT count(*) FROM bonuses.redemptions"),
        0
    );
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.ledger"), 0);
}

#[test]
fn history_lists_every_entry_newest_first_in_pages() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let event = payment_event(&me, 3000.0);
    accrue(&server, &event);
    assert_eq!(apply(&server, &me, "WELCOME500").0, 200);
    let order_id = Uuid::new_v4();
    assert_eq!(
        spend(&server, &me, &json!({"amount": 100, "order_id": order_id})).0,
        200
    );

    let all = history(&server, &me, "");
    assert_eq!(all["next_cursor"], Value::Null);
    let items = all["items"].as_array().unwrap();
    let kinds: Vec<&str> = items.iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["spend", "promocode", "accrual"]);
    let amounts: Vec<i64> = items.iter().map(|i| kopecks(&i["amount"])).collect();
    assert_eq!(amounts, [-10_000, 50_000, 3_000]);
    assert_eq!(amounts.iter().sum::<i64>(), balance(&server, &me));

    let (spent, promo, accrual) = (&items[0], &items[1], &items[2]);
    assert_eq!(spent["order_id"], json!(order_id));
    assert!(
        spent.get("event_id").is_none() && spent.get("promocode").is_none(),
        "{spent}"
    );
    assert_eq!(promo["promocode"], "WELCOME500");
    assert!(promo.get("order_id").is_none(), "{promo}");
    assert_eq!(accrual["event_id"], event["event_id"]);
    assert_eq!(accrual["order_id"], event["order_id"]);
    let times: Vec<&str> = items
        .iter()
        .map(|i| i["created_at"].as_str().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let first = history(&server, &me, "?limit=2");
    assert_eq!(first["items"].as_array().unwrap()[..], items[..2]);
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = history(&server, &me, &format!("?limit=2&cursor={cursor}"));
    assert_eq!(rest["items"].as_array().unwrap()[..], items[2..]);
    assert_eq!(rest["next_cursor"], Value::Null);

    let (status, body) = server.call("GET", "/api/bonuses/history?limit=0", me.token(), None);
    assert_eq!((status, code(&body)), (422, Some("validation_failed")));

    // Staff read anyone's; a customer's `user_id` changes nothing: they see their own.
    let staff = server.staff();
    let seen_by_staff = history(&server, &staff, &format!("?user_id={}", me.id));
    assert_eq!(seen_by_staff["items"], all["items"]);
    let (status, body) = server.call(
        "GET",
        &format!("/api/bonuses/balance?user_id={}", me.id),
        staff.token(),
        None,
    );
    assert_eq!((status, kopecks(&body["balance"])), (200, 43_000));
    let other = server.customer();
    let snooped = history(&server, &other, &format!("?user_id={}", me.id));
    assert_eq!(snooped["items"], json!([]));
    assert_eq!(balance(&server, &other), 0);
}

#[test]
fn the_fail_events_switch_answers_500_and_records_nothing() {
    let server = TestServer::start(
        ServerConfig::app()
            .with_fault_switch()
            .env("SPIN_VARIABLE_BONUS_FAIL_EVENTS", "true"),
    );
    let me = server.customer();
    let event = payment_event(&me, 3000.0);
    for _ in 0..3 {
        let (status, answer) = deliver(&server, &event);
        assert_eq!(
            (status, code(&answer)),
            (500, Some("failing_on_purpose")),
            "{answer}"
        );
    }
    // The relay's credentials are still checked first.
    let (status, _) = deliver_with(&server, &[], &event);
    assert_eq!(status, 401);
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.ledger"), 0);
    assert_eq!(count(&server, "SELECT count(*) FROM bonuses.accounts"), 0);
    assert_eq!(balance(&server, &me), 0);
    assert!(!server.log().contains("Accrued "), "{}", server.log());
    // Only events fail: the users' endpoints work.
    assert_eq!(apply(&server, &me, "WELCOME500").0, 200);
}

#[test]
fn the_accrual_rate_comes_from_the_variable_and_rounds_half_up() {
    let server =
        TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_BONUS_ACCRUAL_RATE", "0.05"));
    let me = server.customer();
    // 5 % of 999.99 is 49.9995: half a kopeck rounds up.
    let answer = accrue(&server, &payment_event(&me, 999.99));
    assert_eq!(kopecks(&answer["accrued"]), 5_000);
    // Too small to earn a kopeck: recorded all the same, so a redelivery is a duplicate.
    let tiny = payment_event(&me, 0.09);
    let answer = accrue(&server, &tiny);
    assert_eq!(
        (kopecks(&answer["accrued"]), answer["duplicate"].clone()),
        (0, json!(false))
    );
    assert_eq!(accrue(&server, &tiny)["duplicate"], true);
    assert_eq!(balance(&server, &me), 5_000);
    let line = accrual_line("0.00", me.id);
    assert_eq!(lines_once_output_reaches(&server, &line, &line), 1);
}

#[test]
fn balances_and_history_survive_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let event = payment_event(&me, 3000.0);
    accrue(&server, &event);
    assert_eq!(spend(&server, &me, &json!({"amount": 10})).0, 200);
    let before = history(&server, &me, "");

    server.restart();
    assert_eq!(balance(&server, &me), 2_000);
    assert_eq!(history(&server, &me, ""), before);
    // The event is remembered too: redelivered after the restart, it accrues nothing.
    assert_eq!(accrue(&server, &event)["duplicate"], true);
    assert_eq!(balance(&server, &me), 2_000);
}

#[test]
fn health_is_public_and_the_rest_needs_a_token() {
    let server = TestServer::start(ServerConfig::app());
    let (status, body) = server.call("GET", "/api/bonuses/health", None, None);
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    for (method, path) in [
        ("GET", "/api/bonuses/balance"),
        ("GET", "/api/bonuses/history"),
        ("POST", "/api/bonuses/spend"),
        ("POST", "/api/bonuses/promocodes/apply"),
    ] {
        let (status, body) = server.call(method, path, None, Some(&json!({"amount": 1})));
        assert_eq!(
            (status, code(&body)),
            (401, Some("missing_token")),
            "{path}"
        );
    }
    let (status, body) = server.call("DELETE", "/api/bonuses/balance", None, None);
    assert_eq!((status, code(&body)), (405, Some("method_not_allowed")));
    let (status, body) = server.call("GET", "/api/bonuses/nothing-here", None, None);
    assert_eq!((status, code(&body)), (404, Some("not_found")));
}
