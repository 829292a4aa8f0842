//! Refunds, end to end: cancelling a paid order before work starts refunds its payment (a
//! refund record, the payment `refunded`, the order `cancelled`), gives back the bonuses it
//! took, and reverses the bonuses it accrued exactly once through the relay, also when the
//! relay is killed in between; a refund asked for twice refunds once; a balance too small to
//! take the accrual back records the rest as owed and stays at 0; a refund that overtakes
//! its accrual makes that accrual credit nothing; a refund whose bonuses could not be given
//! back is finished by cancelling again; and pay racing cancel on 50 orders leaves no order
//! both cancelled and holding a succeeded payment.

mod common;

use std::time::Duration;

use common::{psql_db, Actor, ServerConfig, TestServer, TestVhost};
use serde_json::{json, Value};

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";

/// A car and an order of two washes (3000.00) for `who`; the order's id.
fn order(server: &TestServer, who: &Actor) -> String {
    common::order_on_new_car(server, who, json!([{"catalog_id": WASH, "quantity": 2}]))
}

fn pay(server: &TestServer, who: &Actor, order_id: &str, bonus: Value) -> Value {
    let body = json!({"order_id": order_id, "payment_method": "card", "bonus_amount": bonus});
    let (status, payment) = server.call("POST", "/api/payments", who.token(), Some(&body));
    assert_eq!(status, 201, "{payment}");
    payment
}

fn cancel(server: &TestServer, who: &Actor, order_id: &str) -> (u16, Value) {
    server.call(
        "PATCH",
        &format!("/api/orders/{order_id}/status"),
        who.token(),
        Some(&json!({"status": "cancelled"})),
    )
}

fn kopecks(amount: &Value) -> i64 {
    (amount
        .as_f64()
        .unwrap_or_else(|| panic!("not an amount: {amount}"))
        * 100.0)
        .round() as i64
}

/// `who`'s balance and what they owe, in kopecks.
fn account(server: &TestServer, who: &Actor) -> (i64, i64) {
    let (status, body) = server.call("GET", "/api/bonuses/balance", who.token(), None);
    assert_eq!(status, 200, "{body}");
    (kopecks(&body["balance"]), kopecks(&body["owed"]))
}

fn one(server: &TestServer, sql: &str) -> String {
    psql_db(&server.db, sql)
}

/// Delivers the outbox event of `payment_id` of `kind` to bonus-service as the relay does.
fn deliver(server: &TestServer, payment_id: &str, kind: &str) -> Value {
    let row = one(
        server,
        &format!(
            "SELECT json_build_object('event', body, 'signature', signature) \
             FROM payments.outbox WHERE payment_id = '{payment_id}' AND kind = '{kind}'"
        ),
    );
    assert!(!row.is_empty(), "no {kind} event for payment {payment_id}");
    let response = server
        .client()
        .post(server.url("/api/bonuses/events"))
        .header("x-relay-token", common::TEST_RELAY_TOKEN)
        .header("content-type", "application/json")
        .body(row)
        .send()
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap_or(Value::Null);
    assert_eq!(status, 200, "{body}\n{}", server.log());
    body
}

fn eventually(server: &TestServer, who: &Actor, want: (i64, i64)) -> (i64, i64) {
    common::wait_for(
        Duration::from_secs(30),
        || account(server, who),
        |got| *got == want,
    )
}

#[test]
fn cancelling_a_paid_order_refunds_it_and_reverses_its_bonuses_once_through_a_killed_relay() {
    let vhost = TestVhost::create();
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let mut relay = common::start_relay(
        &server.db.url(),
        &vhost,
        &server.url("/api/bonuses/events"),
        &[],
    );
    let order_id = order(&server, &me);
    let payment = pay(&server, &me, &order_id, json!(0));
    let payment_id = payment["id"].as_str().unwrap();
    // 1 % of 3000.00 accrues through the relay.
    assert_eq!(eventually(&server, &me, (3_000, 0)), (3_000, 0));

    let (status, cancelled) = cancel(&server, &me, &order_id);
    // The relay dies at once: the refund's event may be published, acked or neither.
    common::kill(&mut relay);
    assert_eq!(status, 200, "{cancelled}\n{}", server.log());
    assert_eq!(cancelled["status"], "cancelled");
    let (status, refunded) = server.call(
        "GET",
        &format!("/api/payments/{payment_id}"),
        me.token(),
        None,
    );
    assert_eq!(
        (status, refunded["status"].as_str()),
        (200, Some("refunded"))
    );
    assert_eq!(
        one(
            &server,
            &format!(
                "SELECT amount_kopecks || ' ' || bonus_kopecks || ' ' || bonuses_returned \
                 FROM payments.refunds WHERE payment_id = '{payment_id}'"
            )
        ),
        "300000 0 true"
    );
    assert!(server.log_has(&format!(
        "processor: refunding payment {payment_id} 3000.00"
    )));

    // Another relay takes over: the reversal is applied, once.
    let mut relay = common::start_relay(
        &server.db.url(),
        &vhost,
        &server.url("/api/bonuses/events"),
        &[],
    );
    assert_eq!(eventually(&server, &me, (0, 0)), (0, 0), "{}", server.log());
    // A redelivery of the same event changes nothing.
    let again = deliver(&server, payment_id, "payment_refunded");
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(kopecks(&again["taken"]), 3_000);
    std::thread::sleep(Duration::from_millis(500));
    common::kill(&mut relay);
    assert_eq!(account(&server, &me), (0, 0));
    assert_eq!(
        one(
            &server,
            &format!(
                "SELECT count(*) || ' ' || sum(amount_kopecks) FROM bonuses.ledger \
                 WHERE kind = 'refund' AND payment_id = '{payment_id}'"
            )
        ),
        "1 -3000"
    );
    assert_eq!(
        one(
            &server,
            "SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL"
        ),
        "0"
    );
    // The order may be cancelled only once, and its payment refunded only once.
    let (status, _) = cancel(&server, &me, &order_id);
    assert_eq!(status, 409);
    assert_eq!(one(&server, "SELECT count(*) FROM payments.refunds"), "1");
}

#[test]
fn a_refund_asked_for_twice_refunds_once_and_work_started_is_not_refunded() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let staff = server.staff();
    let order_id = order(&server, &me);
    let payment = pay(&server, &me, &order_id, json!(0));
    let path = format!("/api/payments/{}/refund", payment["id"].as_str().unwrap());
    // Racing refunds, then one more: the same refund every time.
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|i| {
                let (server, path) = (&server, &path);
                let who = if i % 2 == 0 { &me } else { &staff };
                scope.spawn(move || server.call("POST", path, who.token(), None))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let (status, last) = server.call("POST", &path, me.token(), None);
    assert_eq!(status, 200, "{last}");
    for (status, refund) in &answers {
        assert_eq!(*status, 200, "{refund}");
        assert_eq!(refund, &last);
    }
    assert_eq!(kopecks(&last["amount"]), 300_000);
    assert_eq!(one(&server, "SELECT count(*) FROM payments.refunds"), "1");
    assert_eq!(
        one(
            &server,
            "SELECT count(*) FROM payments.outbox WHERE kind = 'payment_refunded'"
        ),
        "1"
    );
    // Its order is no longer held: it is cancelled without another refund.
    let (status, cancelled) = cancel(&server, &me, &order_id);
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(one(&server, "SELECT count(*) FROM payments.refunds"), "1");

    // Work started: neither the refund nor the cancellation.
    let busy = order(&server, &me);
    let payment = pay(&server, &me, &busy, json!(0));
    for status in ["confirmed", "in_progress"] {
        let (code, body) = server.call(
            "PATCH",
            &format!("/api/orders/{busy}/status"),
            staff.token(),
            Some(&json!({ "status": status })),
        );
        assert_eq!(code, 200, "{body}");
    }
    let path = format!("/api/payments/{}/refund", payment["id"].as_str().unwrap());
    let (status, refused) = server.call("POST", &path, me.token(), None);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("order_in_work"))
    );
    let (status, refused) = cancel(&server, &me, &busy);
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (409, Some("illegal_status_change"))
    );
    // Someone else's payment is not found.
    let stranger = server.customer();
    let (status, _) = server.call("POST", &path, stranger.token(), None);
    assert_eq!(status, 404);
}

#[test]
fn a_short_balance_gives_what_it_has_and_records_the_rest_as_owed() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    common::apply_promocode(&server, &me, "WELCOME500");
    let order_id = order(&server, &me);
    let payment = pay(&server, &me, &order_id, json!(0));
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    deliver(&server, &payment_id, "payment_succeeded");
    assert_eq!(account(&server, &me), (53_000, 0));
    // Spent all but 10.00 of it.
    let (status, body) = server.call(
        "POST",
        "/api/bonuses/spend",
        me.token(),
        Some(&json!({"amount": 520})),
    );
    assert_eq!(status, 200, "{body}");

    let (status, body) = cancel(&server, &me, &order_id);
    assert_eq!(status, 200, "{body}");
    let reversed = deliver(&server, &payment_id, "payment_refunded");
    assert_eq!(
        (
            kopecks(&reversed["reversed"]),
            kopecks(&reversed["taken"]),
            kopecks(&reversed["owed"])
        ),
        (3_000, 1_000, 2_000),
        "{reversed}"
    );
    assert_eq!(account(&server, &me), (0, 2_000));
    let again = deliver(&server, &payment_id, "payment_refunded");
    assert_eq!(again["duplicate"], true);
    assert_eq!(account(&server, &me), (0, 2_000));
    let (status, history) = server.call("GET", "/api/bonuses/history", me.token(), None);
    assert_eq!(status, 200);
    let refund = &history["items"][0];
    assert_eq!(refund["kind"], "refund", "{history}");
    assert_eq!(kopecks(&refund["amount"]), -1_000);
    assert_eq!(kopecks(&refund["owed"]), 2_000);
    assert_eq!(refund["payment_id"], payment_id.as_str());

    // A refund whose event overtakes its payment's: the accrual then credits nothing.
    let order_id = order(&server, &me);
    let payment = pay(&server, &me, &order_id, json!(0));
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    let (status, body) = cancel(&server, &me, &order_id);
    assert_eq!(status, 200, "{body}");
    let reversed = deliver(&server, &payment_id, "payment_refunded");
    assert_eq!(kopecks(&reversed["reversed"]), 0, "{reversed}");
    let late = deliver(&server, &payment_id, "payment_succeeded");
    assert_eq!(late["duplicate"], true, "{late}");
    assert_eq!(account(&server, &me), (0, 2_000));
}

#[test]
fn the_bonuses_a_refunded_payment_took_come_back() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    for code in ["WELCOME500", "DETAILING2026"] {
        common::apply_promocode(&server, &me, code);
    }
    let order_id = order(&server, &me);
    let payment = pay(&server, &me, &order_id, json!("900.00"));
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    assert_eq!(account(&server, &me), (60_000, 0));
    deliver(&server, &payment_id, "payment_succeeded");
    // 1 % of the 2100.00 paid in money.
    assert_eq!(account(&server, &me), (62_100, 0));

    let (status, body) = cancel(&server, &me, &order_id);
    assert_eq!(status, 200, "{body}");
    let (status, refund) = server.call(
        "POST",
        &format!("/api/payments/{payment_id}/refund"),
        me.token(),
        None,
    );
    assert_eq!(status, 200, "{refund}");
    assert_eq!(
        (
            kopecks(&refund["amount"]),
            kopecks(&refund["bonus_amount"]),
            refund["bonuses_returned"].as_bool()
        ),
        (210_000, 90_000, Some(true))
    );
    // The 900.00 are back at once; the 21.00 accrued go with the refund's event.
    assert_eq!(account(&server, &me), (152_100, 0));
    deliver(&server, &payment_id, "payment_refunded");
    assert_eq!(account(&server, &me), (150_000, 0));
    assert!(server.log_has(&format!(
        "processor: refunding payment {payment_id} 2100.00"
    )));
    assert_eq!(
        one(
            &server,
            &format!(
                "SELECT string_agg(kind || ' ' || amount_kopecks, ', ' ORDER BY created_at) \
                 FROM bonuses.ledger WHERE payment_id = '{payment_id}'"
            )
        ),
        "payment -90000, reversal 90000, refund -2100"
    );
}

#[test]
fn paying_racing_cancelling_never_leaves_an_order_cancelled_and_paid() {
    let pairs = if common::under_spin() { 15 } else { 50 };
    let server = TestServer::start(
        ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_PROCESSING_DELAY_MS", "20"),
    );
    let people: Vec<Actor> = (0..pairs).map(|_| server.customer()).collect();
    let orders: Vec<String> = people.iter().map(|who| order(&server, who)).collect();
    let outcomes: Vec<(u16, u16)> = std::thread::scope(|scope| {
        let handles: Vec<_> = people
            .iter()
            .zip(&orders)
            .enumerate()
            .map(|(i, (who, order_id))| {
                let server = &server;
                scope.spawn(move || {
                    let body = json!({"order_id": order_id, "payment_method": "card"});
                    let payer = std::thread::spawn({
                        let url = server.url("/api/payments");
                        let client = server.client();
                        let token = who.token.clone();
                        move || {
                            client
                                .post(url)
                                .bearer_auth(token)
                                .json(&body)
                                .send()
                                .unwrap()
                                .status()
                                .as_u16()
                        }
                    });
                    // Half the pairs give the payment a head start.
                    if i % 2 == 0 {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let (cancelled, _) = cancel(server, who, order_id);
                    (payer.join().unwrap(), cancelled)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (paid, cancelled) in &outcomes {
        assert!(matches!(paid, 201 | 409), "{outcomes:?}\n{}", server.log());
        assert!(
            matches!(cancelled, 200 | 409),
            "{outcomes:?}\n{}",
            server.log()
        );
    }
    assert_eq!(
        one(
            &server,
            "SELECT count(*) FROM orders.orders o JOIN payments.payments p ON p.order_id = o.id \
             WHERE o.status = 'cancelled' AND p.status IN ('succeeded', 'pending')"
        ),
        "0",
        "{outcomes:?}"
    );
    // Every refunded payment belongs to a cancelled order, and has one refund.
    assert_eq!(
        one(
            &server,
            "SELECT count(*) FROM payments.payments p JOIN orders.orders o ON o.id = p.order_id \
             LEFT JOIN payments.refunds r ON r.payment_id = p.id \
             WHERE p.status = 'refunded' AND (o.status <> 'cancelled' OR r.payment_id IS NULL)"
        ),
        "0"
    );
    let cancelled = outcomes.iter().filter(|(_, c)| *c == 200).count();
    let refunded = one(
        &server,
        "SELECT count(*) FROM payments.payments WHERE status = 'refunded'",
    );
    eprintln!("{pairs} pairs: {cancelled} cancelled, {refunded} of them refunded");
}

#[test]
fn a_refund_whose_bonuses_did_not_come_back_is_finished_by_cancelling_again() {
    let server = TestServer::start(ServerConfig::app());
    // The same database behind a host whose payment-service cannot reach bonus-service.
    let cut_off = TestServer::start(
        ServerConfig::app()
            .env("SPIN_VARIABLE_POSTGRES_URL", &server.db.url())
            .env("SPIN_VARIABLE_BONUS_SERVICE_URL", "http://127.0.0.1:9"),
    );
    let me = server.customer();
    common::apply_promocode(&server, &me, "WELCOME500");
    let order_id = order(&server, &me);
    let payment = pay(&server, &me, &order_id, json!(500));
    let payment_id = payment["id"].as_str().unwrap().to_owned();
    assert_eq!(account(&server, &me), (0, 0));

    let (status, body) = cancel(&cut_off, &me, &order_id);
    assert_eq!(status, 503, "{body}\n{}", cut_off.log());
    // Refunded, its bonuses not yet back, the order not yet cancelled.
    assert_eq!(
        one(
            &server,
            &format!(
                "SELECT p.status || ' ' || r.bonuses_returned || ' ' || o.status \
                 FROM payments.payments p JOIN payments.refunds r ON r.payment_id = p.id \
                 JOIN orders.orders o ON o.id = p.order_id WHERE p.id = '{payment_id}'"
            )
        ),
        "refunded false created"
    );
    assert_eq!(account(&server, &me), (0, 0));

    let (status, body) = cancel(&server, &me, &order_id);
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("cancelled")),
        "{body}"
    );
    assert_eq!(account(&server, &me), (50_000, 0));
    assert_eq!(
        one(
            &server,
            &format!(
                "SELECT bonuses_returned FROM payments.refunds WHERE payment_id = '{payment_id}'"
            )
        ),
        "t"
    );
    // Once, however often it is asked for.
    let (status, _) = server.call(
        "POST",
        &format!("/api/payments/{payment_id}/refund"),
        me.token(),
        None,
    );
    assert_eq!(status, 200);
    assert_eq!(account(&server, &me), (50_000, 0));
}
