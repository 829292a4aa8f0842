//! Bonuses paying part of an order, end to end: `POST /api/payments` with `bonus_amount`
//! takes at most the `max_bonus_share` of the total and at most the balance, the bonuses and
//! the payment go through together or not at all (declines, refusals, retries, racing
//! requests, an attempt that died mid-way and is taken over), and bonuses accrue on the part
//! paid in money only. The signed commands payment-service sends bonus-service are replayed
//! here too.

mod common;

use std::time::{Duration, Instant};

use common::{psql_db, signed_text, Actor, ServerConfig, TestServer, TestVhost};
use serde_json::{json, Value};
use uuid::Uuid;

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";

/// A car and an order of two washes (3000.00) for `who`; the order's id.
fn order(server: &TestServer, who: &Actor) -> String {
    order_of(server, who, 2)
}

/// A car and an order of `washes` washes (1500.00 each) for `who`; the order's id.
fn order_of(server: &TestServer, who: &Actor, washes: u32) -> String {
    common::order_on_new_car(
        server,
        who,
        json!([{"catalog_id": WASH, "quantity": washes}]),
    )
}

/// Gives `who` 1500.00 of bonuses (two promocodes), or 500.00 with `small`.
fn fund(server: &TestServer, who: &Actor, small: bool) {
    let codes: &[&str] = if small {
        &["WELCOME500"]
    } else {
        &["WELCOME500", "DETAILING2026"]
    };
    for code in codes {
        common::apply_promocode(server, who, code);
    }
}

fn kopecks(amount: &Value) -> i64 {
    (amount
        .as_f64()
        .unwrap_or_else(|| panic!("not an amount: {amount}"))
        * 100.0)
        .round() as i64
}

fn balance(server: &TestServer, who: &Actor) -> i64 {
    let (status, body) = server.call("GET", "/api/bonuses/balance", who.token(), None);
    assert_eq!(status, 200, "{body}");
    kopecks(&body["balance"])
}

fn history(server: &TestServer, who: &Actor) -> Vec<Value> {
    let (status, body) = server.call("GET", "/api/bonuses/history", who.token(), None);
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// The kinds and amounts of `who`'s ledger entries about payments, oldest first.
fn payment_entries(server: &TestServer, who: &Actor) -> Vec<(String, i64)> {
    let mut entries: Vec<(String, i64)> = history(server, who)
        .iter()
        .filter(|entry| entry["payment_id"].is_string())
        .map(|entry| {
            (
                entry["kind"].as_str().unwrap().to_owned(),
                (entry["amount"].as_f64().unwrap() * 100.0).round() as i64,
            )
        })
        .collect();
    entries.reverse();
    entries
}

fn pay(
    server: &TestServer,
    who: &Actor,
    order_id: &str,
    bonus: Value,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = server
        .client()
        .post(server.url("/api/payments"))
        .bearer_auth(&who.token)
        .json(&json!({"order_id": order_id, "payment_method": "card", "bonus_amount": bonus}));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

/// Waits (up to 10 s) until the server's log has `text`: a line written while answering a
/// request may reach the log after the answer.
fn logged(server: &TestServer, text: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().contains(text) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// How many charges the simulated processor has made (it logs each one).
fn charges(server: &TestServer) -> usize {
    server.log().matches("processor: charging payment").count()
}

fn one(server: &TestServer, sql: &str) -> String {
    psql_db(&server.db, sql)
}

/// A command payment-service would send bonus-service about a payment's bonuses, signed
/// with the test key, posted to bonus-service.
fn command(server: &TestServer, command: &Value) -> (u16, Value) {
    let response = server
        .client()
        .post(server.url("/api/bonuses/payment-debits"))
        .header("content-type", "application/json")
        .body(signed_text(&command.to_string()))
        .send()
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

/// The claim time of payment `id`, as payment-service names its attempt to bonus-service.
fn attempt(server: &TestServer, id: &str) -> i64 {
    one(
        server,
        &format!(
            "SELECT (extract(epoch FROM claimed_at) * 1000000)::int8 \
             FROM payments.payments WHERE id = '{id}'"
        ),
    )
    .parse()
    .unwrap()
}

/// Polls `probe` until it returns `want` (or 30 s pass); the last value.
fn eventually(want: i64, probe: impl Fn() -> i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let value = probe();
        if value == want || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn bonuses_pay_up_to_the_share_and_accrue_on_the_money_part_only() {
    let vhost = TestVhost::create();
    let server = TestServer::start(ServerConfig::app().with_relay(&vhost));
    let me = server.customer();
    fund(&server, &me, false);
    let order_id = order(&server, &me);

    // 30 % of 3000.00, the default share, as a string for clients that keep money out of floats.
    let (status, payment) = pay(&server, &me, &order_id, json!("900.00"), None);
    assert_eq!(status, 201, "{payment}\n{}", server.log());
    assert_eq!(payment["amount"], 3000.0);
    assert_eq!(payment["bonus_amount"], 900.0);
    assert_eq!(payment["status"], "succeeded");
    let payment_id = payment["id"].as_str().unwrap();
    // The processor is charged the rest, and the event carries the rest.
    assert!(
        logged(
            &server,
            &format!("processor: charging payment {payment_id} 2100.00 by card")
        ),
        "{}",
        server.log()
    );
    assert_eq!(
        one(
            &server,
            &format!(
                "SELECT amount_kopecks FROM payments.outbox WHERE payment_id = '{payment_id}'"
            )
        ),
        "210000"
    );
    // 1500.00 - 900.00, then 1 % of the 2100.00 paid in money once the relay delivers it.
    let after = eventually(60_000 + 2_100, || balance(&server, &me));
    assert_eq!(after, 62_100, "{}", server.log());
    assert_eq!(
        payment_entries(&server, &me),
        [("payment".to_owned(), -90_000)]
    );
    let entry = history(&server, &me)
        .into_iter()
        .find(|entry| entry["kind"] == "payment")
        .unwrap();
    assert_eq!(entry["payment_id"], payment_id);
    assert_eq!(entry["order_id"], order_id.as_str());
    assert_eq!(
        server.call(
            "GET",
            &format!("/api/payments/{payment_id}"),
            me.token(),
            None
        ),
        (200, payment.clone())
    );
}

#[test]
fn bonuses_beyond_the_share_are_422_and_beyond_the_balance_409_and_nothing_moves() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    fund(&server, &me, true);
    let order_id = order(&server, &me);

    let (status, body) = pay(&server, &me, &order_id, json!(900.01), None);
    assert_eq!(
        (status, code(&body)),
        (422, Some("validation_failed")),
        "{body}"
    );
    assert_eq!(body["error"]["fields"][0]["field"], "bonus_amount");
    let message = body["error"]["fields"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("900.00") && message.contains("30 %") && message.contains("3000.00"),
        "{message}"
    );
    for bad in [
        json!(-1),
        json!("-1"),
        json!(1.234),
        json!("12.345"),
        json!("lots"),
    ] {
        let (status, body) = pay(&server, &me, &order_id, bad.clone(), None);
        assert_eq!(status, 422, "{bad}: {body}");
        assert_eq!(body["error"]["fields"][0]["field"], "bonus_amount", "{bad}");
    }
    // A fine is paid in money only.
    let fine_id = one(
        &server,
        "SELECT id FROM fines.fines WHERE license_plate = 'К456МН178'",
    );
    let (status, body) = server.call(
        "POST",
        "/api/payments",
        server.staff().token(),
        Some(&json!({"fine_id": fine_id, "payment_method": "cash", "bonus_amount": 1})),
    );
    assert_eq!(
        (status, body["error"]["fields"][0]["field"].as_str()),
        (422, Some("bonus_amount"))
    );

    // Within the share, beyond the balance (500.00): refused before any charge.
    let (status, body) = pay(&server, &me, &order_id, json!(900), None);
    assert_eq!(
        (status, code(&body)),
        (409, Some("insufficient_bonuses")),
        "{body}"
    );
    assert_eq!(balance(&server, &me), 50_000);
    assert_eq!(charges(&server), 0);
    assert_eq!(one(&server, "SELECT count(*) FROM payments.payments"), "0");
    assert_eq!(payment_entries(&server, &me), []);

    // The refusal held nothing: the order is paid with what the balance has.
    let (status, payment) = pay(&server, &me, &order_id, json!(500), None);
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payment["bonus_amount"], 500.0);
    assert_eq!(balance(&server, &me), 0);
    let charged = format!(
        "processor: charging payment {}",
        payment["id"].as_str().unwrap()
    );
    assert!(logged(&server, &charged), "{}", server.log());
    assert_eq!(charges(&server), 1);
}

#[test]
fn the_share_comes_from_max_bonus_share_and_all_bonus_payments_charge_nothing() {
    let server = TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_MAX_BONUS_SHARE", "1"));
    let me = server.customer();
    fund(&server, &me, false);
    let order_id = order_of(&server, &me, 1);
    let (status, payment) = pay(&server, &me, &order_id, json!(1500), None);
    assert_eq!(status, 201, "{payment}\n{}", server.log());
    assert_eq!(payment["bonus_amount"], 1500.0);
    assert_eq!(balance(&server, &me), 0);
    // Nothing was charged, so nothing accrues.
    assert_eq!(charges(&server), 0);
    assert_eq!(one(&server, "SELECT count(*) FROM payments.outbox"), "0");

    let server = TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_MAX_BONUS_SHARE", "0"));
    let me = server.customer();
    fund(&server, &me, true);
    let order_id = order(&server, &me);
    let (status, body) = pay(&server, &me, &order_id, json!(0.01), None);
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"]["fields"][0]["message"]
            .as_str()
            .unwrap()
            .contains("at most 0.00"),
        "{body}"
    );
    assert_eq!(pay(&server, &me, &order_id, json!(0), None).0, 201);
    assert_eq!(balance(&server, &me), 50_000);
}

#[test]
fn a_declined_charge_gives_the_bonuses_back() {
    let server =
        TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_DECLINE", "true"));
    let me = server.customer();
    fund(&server, &me, false);
    let order_id = order(&server, &me);
    for attempt in 1..=2 {
        let (status, body) = pay(&server, &me, &order_id, json!(900), None);
        assert_eq!(
            (status, code(&body)),
            (402, Some("payment_declined")),
            "attempt {attempt}: {body}\n{}",
            server.log()
        );
        assert_eq!(balance(&server, &me), 150_000, "attempt {attempt}");
    }
    // Each attempt took its bonuses and gave them back before it was recorded declined.
    assert_eq!(
        payment_entries(&server, &me),
        [
            ("payment".to_owned(), -90_000),
            ("reversal".to_owned(), 90_000),
            ("payment".to_owned(), -90_000),
            ("reversal".to_owned(), 90_000),
        ]
    );
    let (_, listed) = server.call(
        "GET",
        &format!("/api/payments?order_id={order_id}"),
        me.token(),
        None,
    );
    for payment in listed["items"].as_array().unwrap() {
        assert_eq!(payment["status"], "declined");
        assert_eq!(payment["bonus_amount"], 900.0);
    }
    assert_eq!(one(&server, "SELECT count(*) FROM payments.outbox"), "0");
}

#[test]
fn a_retried_or_racing_payment_takes_its_bonuses_once() {
    let server = TestServer::start(
        ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_PROCESSING_DELAY_MS", "300"),
    );
    let me = server.customer();
    fund(&server, &me, false);

    // Retries with one key, racing the first: one payment, one debit, one answer.
    let order_id = order(&server, &me);
    let key = Uuid::new_v4().to_string();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| pay(&server, &me, &order_id, json!(900), Some(&key))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers[0].0, 201, "{answers:?}\n{}", server.log());
    assert!(answers.iter().all(|a| a == &answers[0]), "{answers:?}");
    assert_eq!(
        pay(&server, &me, &order_id, json!(900), Some(&key)),
        answers[0]
    );
    assert_eq!(balance(&server, &me), 60_000);
    // The same key with other bonuses is another request.
    let (status, body) = pay(&server, &me, &order_id, json!(800), Some(&key));
    assert_eq!((status, code(&body)), (422, Some("idempotency_key_reused")));

    // Racing payments without a key: one wins and takes bonuses; the rest take none.
    let order_id = order(&server, &me);
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| pay(&server, &me, &order_id, json!(300), None).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [201, 409].contains(s)),
        "{statuses:?}"
    );
    assert_eq!(balance(&server, &me), 30_000);
    assert_eq!(
        payment_entries(&server, &me),
        [
            ("payment".to_owned(), -90_000),
            ("payment".to_owned(), -30_000)
        ]
    );

    // The signed debit replayed (a retry after a lost answer) takes nothing more.
    let payment_id = answers[0].1["id"].as_str().unwrap();
    let debit = json!({"action": "debit", "payment_id": payment_id,
                       "order_id": answers[0].1["order_id"], "user_id": me.id,
                       "amount": 900, "attempt": attempt(&server, payment_id)});
    let (status, answer) = command(&server, &debit);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["state"].as_str(), answer["duplicate"].as_bool()),
        (Some("debited"), Some(true))
    );
    assert_eq!(balance(&server, &me), 30_000);
    // Only payment-service's signature counts.
    let response = server
        .client()
        .post(server.url("/api/bonuses/payment-debits"))
        .bearer_auth(&me.token)
        .json(&debit)
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
}

#[test]
fn a_payment_cut_off_after_its_debit_is_finished_by_the_attempt_that_takes_it_over() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    fund(&server, &me, false);
    let order_id = order(&server, &me);
    // An attempt that died after bonus-service took its bonuses: its payment is pending.
    let payment_id = one(
        &server,
        &format!(
            "WITH p AS (\
               INSERT INTO payments.payments \
                 (order_id, user_id, amount_kopecks, bonus_kopecks, method, status) \
               VALUES ('{order_id}', '{}', 300000, 90000, 'card', 'pending') RETURNING id\
             ) SELECT id FROM p",
            me.id
        ),
    );
    let first = attempt(&server, &payment_id);
    let debit = |action: &str, attempt: i64| {
        json!({"action": action, "payment_id": payment_id, "order_id": order_id,
               "user_id": me.id, "amount": "900.00", "attempt": attempt})
    };
    assert_eq!(command(&server, &debit("debit", first)).0, 200);
    assert_eq!(balance(&server, &me), 60_000);

    // Within the lease the order is held, and nothing is taken twice.
    let (status, body) = pay(&server, &me, &order_id, json!(900), None);
    assert_eq!(
        (status, code(&body)),
        (409, Some("payment_in_progress")),
        "{body}"
    );
    assert_eq!(balance(&server, &me), 60_000);

    // Past the lease the next payment takes the claim over with its id and its bonuses (this
    // request asked for none) and finishes it: the debit stands, once.
    psql_db(
        &server.db,
        "UPDATE payments.payments SET claimed_at = now() - interval '61 seconds'",
    );
    let (status, payment) = pay(&server, &me, &order_id, json!(0), None);
    assert_eq!(status, 201, "{payment}\n{}", server.log());
    assert_eq!(payment["id"], payment_id.as_str());
    assert_eq!(payment["bonus_amount"], 900.0);
    assert_eq!(balance(&server, &me), 60_000);
    assert_eq!(
        payment_entries(&server, &me),
        [("payment".to_owned(), -90_000)]
    );
    assert!(logged(
        &server,
        &format!("processor: charging payment {payment_id} 2100.00")
    ));

    // A reversal still on its way from the dead attempt gives nothing back now.
    let (status, body) = command(&server, &debit("reverse", first));
    assert_eq!(
        (status, code(&body)),
        (409, Some("bonus_debit_taken_over")),
        "{body}"
    );
    assert_eq!(balance(&server, &me), 60_000);
}

#[test]
fn a_taken_over_payment_that_is_declined_gives_the_bonuses_back() {
    let server =
        TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_DECLINE", "true"));
    let me = server.customer();
    fund(&server, &me, false);
    let order_id = order(&server, &me);
    let payment_id = one(
        &server,
        &format!(
            "WITH p AS (\
               INSERT INTO payments.payments \
                 (order_id, user_id, amount_kopecks, bonus_kopecks, method, status, claimed_at) \
               VALUES ('{order_id}', '{}', 300000, 90000, 'card', 'pending', \
                       now() - interval '61 seconds') RETURNING id\
             ) SELECT id FROM p",
            me.id
        ),
    );
    let debit = json!({"action": "debit", "payment_id": payment_id, "order_id": order_id,
                       "user_id": me.id, "amount": 900, "attempt": attempt(&server, &payment_id)});
    assert_eq!(command(&server, &debit).0, 200);
    assert_eq!(balance(&server, &me), 60_000);
    let (status, body) = pay(&server, &me, &order_id, json!(0), None);
    assert_eq!(
        (status, code(&body)),
        (402, Some("payment_declined")),
        "{body}"
    );
    assert_eq!(balance(&server, &me), 150_000);
    assert_eq!(
        one(
            &server,
            &format!("SELECT status FROM payments.payments WHERE id = '{payment_id}'")
        ),
        "declined"
    );
}

#[test]
fn a_reversal_that_overtakes_its_debit_makes_the_payment_take_nothing() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    fund(&server, &me, false);
    let payment = json!({"payment_id": Uuid::new_v4(), "order_id": Uuid::new_v4(),
                         "user_id": me.id, "amount": 900, "attempt": 1});
    let with = |action: &str| {
        let mut command = payment.clone();
        command["action"] = json!(action);
        command
    };
    let (status, answer) = command(&server, &with("reverse"));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        (answer["state"].as_str(), answer["duplicate"].as_bool()),
        (Some("reversed"), Some(false))
    );
    let (status, body) = command(&server, &with("debit"));
    assert_eq!(
        (status, code(&body)),
        (409, Some("bonus_debit_reversed")),
        "{body}"
    );
    assert_eq!(balance(&server, &me), 150_000);
    assert_eq!(payment_entries(&server, &me), []);
    // Without `action` a signed body is no command at all.
    let (status, body) = command(&server, &payment);
    assert_eq!(
        (status, code(&body)),
        (422, Some("validation_failed")),
        "{body}"
    );
}
