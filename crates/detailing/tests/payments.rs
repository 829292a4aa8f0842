//! payment-service end to end: paying orders once (claimed before the charge, so racing
//! payments charge once), refusals, declines, the outbox row written with the payment,
//! Idempotency-Key retries (also racing ones), payments racing cancellations, fines.

mod common;

use common::{psql_db, Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";

/// A car and an order of two washes (3000.00) for `who`; the order's id.
fn order(server: &TestServer, who: &Actor, vin: &str, items: Value) -> String {
    let car = json!({"license_plate": "А123БВ799", "vin": vin, "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", who.token(), Some(&car));
    assert_eq!(status, 201, "{car}");
    order_for_car(server, who, car["id"].as_str().unwrap(), items)
}

fn order_for_car(server: &TestServer, who: &Actor, car_id: &str, items: Value) -> String {
    let body = json!({"car_id": car_id, "desired_time": common::next_slot(), "description": "ТО", "items": items});
    let (status, order) = server.call("POST", "/api/orders", who.token(), Some(&body));
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_owned()
}

fn cancel(server: &TestServer, who: &Actor, order_id: &str) -> (u16, Value) {
    server.call(
        "PATCH",
        &format!("/api/orders/{order_id}/status"),
        who.token(),
        Some(&json!({"status": "cancelled"})),
    )
}

/// How many charges the simulated processor has made (it logs each one).
fn charges(server: &TestServer) -> usize {
    server.log().matches("processor: charging payment").count()
}

fn two_washes() -> Value {
    json!([{"catalog_id": WASH, "quantity": 2}])
}

fn pay(
    server: &TestServer,
    who: &Actor,
    order_id: &str,
    method: &str,
    key: Option<&str>,
) -> (u16, Value) {
    let mut request = server
        .client()
        .post(server.url("/api/payments"))
        .bearer_auth(&who.token)
        .json(&json!({"order_id": order_id, "payment_method": method}));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn count(server: &TestServer, table: &str) -> String {
    psql_db(
        &server.db,
        &format!("SELECT count(*) FROM payments.{table}"),
    )
}

#[test]
fn an_order_is_paid_once_with_its_total_and_an_outbox_event() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other) = (server.customer(), server.customer());
    let order_id = order(&server, &me, "XTA210930V0000301", two_washes());
    let (status, payment) = pay(&server, &me, &order_id, "card", None);
    assert_eq!(status, 201, "{payment}\n{}", server.log());
    assert_eq!(payment["amount"], 3000.0);
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["payment_method"], "card");
    assert_eq!(payment["user_id"], me.id.to_string());
    let event = psql_db(
        &server.db,
        &format!("SELECT order_id || ' ' || user_id || ' ' || amount_kopecks FROM payments.outbox WHERE payment_id = '{}'", payment["id"].as_str().unwrap()),
    );
    assert_eq!(event, format!("{order_id} {} 300000", me.id));

    let (status, body) = pay(&server, &me, &order_id, "cash", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("order_already_paid"))
    );
    assert_eq!(
        (count(&server, "payments"), count(&server, "outbox")),
        ("1".into(), "1".into())
    );

    let path = format!("/api/payments/{}", payment["id"].as_str().unwrap());
    assert_eq!(
        server.call("GET", &path, me.token(), None),
        (200, payment.clone())
    );
    assert_eq!(
        server.call("GET", &path, server.staff().token(), None).0,
        200
    );
    assert_eq!(server.call("GET", &path, other.token(), None).0, 404);
    let (_, mine) = server.call(
        "GET",
        &format!("/api/payments?order_id={order_id}"),
        me.token(),
        None,
    );
    assert_eq!(mine["items"], json!([payment]));
    let (_, theirs) = server.call(
        "GET",
        &format!("/api/payments?order_id={order_id}"),
        other.token(),
        None,
    );
    assert_eq!(theirs["items"], json!([]));
}

#[test]
fn orders_that_cannot_be_paid_are_refused_before_any_charge() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other) = (server.customer(), server.customer());
    let order_id = order(&server, &me, "XTA210930V0000302", two_washes());

    let (status, body) = pay(&server, &other, &order_id, "card", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("order_not_found"))
    );
    let (status, body) = pay(&server, &me, &order_id, "bitcoin", None);
    assert_eq!(
        (status, body["error"]["fields"][0]["field"].as_str()),
        (422, Some("payment_method"))
    );

    let empty = order(&server, &me, "XTA210930V0000303", Value::Null);
    let (status, body) = pay(&server, &me, &empty, "card", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("nothing_to_pay"))
    );

    let path = format!("/api/orders/{order_id}/status");
    let (status, _) = server.call(
        "PATCH",
        &path,
        me.token(),
        Some(&json!({"status": "cancelled"})),
    );
    assert_eq!(status, 200);
    let (status, body) = pay(&server, &me, &order_id, "card", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("order_cancelled"))
    );
    assert_eq!(count(&server, "payments"), "0");
}

#[test]
fn a_declined_charge_is_402_is_listed_declined_and_does_not_block_the_next_attempt() {
    let server =
        TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_DECLINE", "true"));
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000304", two_washes());
    for attempt in 1..=2 {
        let (status, body) = pay(&server, &me, &order_id, "card", None);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (402, Some("payment_declined")),
            "attempt {attempt}"
        );
    }
    let (_, mine) = server.call(
        "GET",
        &format!("/api/payments?order_id={order_id}"),
        me.token(),
        None,
    );
    let statuses: Vec<&Value> = mine["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["status"])
        .collect();
    assert_eq!(statuses, [&json!("declined"), &json!("declined")]);
    assert_eq!(count(&server, "outbox"), "0");
    // Declined payments hold nothing: the order may still be cancelled.
    assert_eq!(cancel(&server, &me, &order_id).0, 200);
}

#[test]
fn concurrent_payments_of_one_order_without_a_key_charge_once() {
    const DELAY_MS: u128 = 1500;
    let server = TestServer::start(
        ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_PROCESSING_DELAY_MS", "1500"),
    );
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000310", two_washes());
    let answers: Vec<(u16, Value, u128)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let started = std::time::Instant::now();
                    let (status, body) = pay(&server, &me, &order_id, "card", None);
                    (status, body, started.elapsed().as_millis())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let paid: Vec<_> = answers.iter().filter(|a| a.0 == 201).collect();
    assert_eq!(paid.len(), 1, "{answers:?}\n{}", server.log());
    for (status, body, elapsed) in answers.iter().filter(|a| a.0 != 201) {
        assert_eq!(
            (*status, body["error"]["code"].as_str()),
            (409, Some("payment_in_progress")),
            "{answers:?}"
        );
        // The loser was turned away before the processor: it never waited for a charge.
        assert!(*elapsed < DELAY_MS, "{answers:?}");
    }
    assert_eq!(charges(&server), 1, "{}", server.log());
    assert_eq!(
        (count(&server, "payments"), count(&server, "outbox")),
        ("1".into(), "1".into())
    );
}

#[test]
fn payments_racing_cancellations_never_leave_an_order_paid_and_cancelled() {
    // Under Spin, fewer: Spin 4.0.2 gives every component a pool of up to 64 PostgreSQL
    // connections of its own, kept open, so 50 payments racing 50 cancellations (each payment
    // also chains to order-service) take more than the 100 connections a default PostgreSQL
    // allows, which this suite shares (docs/spin-compatibility.md, "PostgreSQL connections").
    let pairs: usize = if common::under_spin() { 12 } else { 50 };
    let server = TestServer::start(
        ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_PROCESSING_DELAY_MS", "300"),
    );
    let me = server.customer();
    let car = json!({"license_plate": "А123БВ799", "vin": "XTA210930V0000320", "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", me.token(), Some(&car));
    assert_eq!(status, 201, "{car}");
    let car_id = car["id"].as_str().unwrap();
    let orders: Vec<String> = (0..pairs)
        .map(|_| order_for_car(&server, &me, car_id, two_washes()))
        .collect();
    let answers: Vec<((u16, Value), (u16, Value))> = std::thread::scope(|scope| {
        let handles: Vec<_> = orders
            .iter()
            .map(|order_id| {
                let (server, me) = (&server, &me);
                let payment = scope.spawn(move || pay(server, me, order_id, "card", None));
                let cancellation = scope.spawn(move || cancel(server, me, order_id));
                (payment, cancellation)
            })
            .collect();
        handles
            .into_iter()
            .map(|(p, c)| (p.join().unwrap(), c.join().unwrap()))
            .collect()
    });
    let state = psql_db(
        &server.db,
        "SELECT o.id || ' ' || o.status || ' ' \
           || count(p.id) FILTER (WHERE p.status = 'succeeded') || ' ' \
           || count(p.id) FILTER (WHERE p.status = 'pending') || ' ' \
           || count(p.id) FILTER (WHERE p.status = 'refunded') \
         FROM orders.orders AS o LEFT JOIN payments.payments AS p ON p.order_id = o.id \
         GROUP BY o.id, o.status",
    );
    let (mut paid, mut cancelled) = (0, 0);
    for line in state.lines() {
        let [id, status, succeeded, pending, refunded] = line.split(' ').collect::<Vec<_>>()[..]
        else {
            panic!("{line}");
        };
        let (order_id, answer) = orders
            .iter()
            .zip(&answers)
            .find(|(order_id, _)| order_id.as_str() == id)
            .unwrap();
        assert_eq!(pending, "0", "{order_id}: {answer:?}");
        // A cancellation that came after the payment refunded it.
        match (status, succeeded) {
            ("cancelled", "0") => cancelled += 1,
            (status, "1") if status != "cancelled" => paid += 1,
            _ => panic!(
                "order {order_id} ends {status} with {succeeded} succeeded payments: {answer:?}"
            ),
        }
        // What each side was told matches the end state.
        let ((pay_status, _), (cancel_status, cancel_body)) = answer;
        assert_eq!(
            *pay_status == 201,
            succeeded == "1" || refunded == "1",
            "{answer:?}"
        );
        assert_eq!(*cancel_status == 200, status == "cancelled", "{answer:?}");
        if *cancel_status != 200 {
            assert!(
                ["payment_pending", "status_changed"]
                    .contains(&cancel_body["error"]["code"].as_str().unwrap()),
                "{answer:?}"
            );
        }
    }
    assert_eq!(paid + cancelled, pairs, "{state}");
    println!("{paid} paid, {cancelled} cancelled");
}

#[test]
fn a_pending_payment_holds_its_order_until_its_lease_runs_out() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000311", two_washes());
    // An attempt that died after claiming: its payment is pending, claimed just now.
    let claimed = psql_db(
        &server.db,
        &format!(
            "WITH p AS (\
               INSERT INTO payments.payments (order_id, user_id, amount_kopecks, method, status) \
               VALUES ('{order_id}', '{}', 300000, 'card', 'pending') RETURNING id\
             ) SELECT id FROM p",
            me.id
        ),
    );
    let (status, body) = pay(&server, &me, &order_id, "card", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("payment_in_progress"))
    );
    // The cancellation waits for an outcome, and stops waiting after 10 s.
    let (status, body) = cancel(&server, &me, &order_id);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("payment_pending")),
        "a pending payment may have charged: the order is not cancelled"
    );
    assert_eq!(charges(&server), 0);
    // Past the lease, the next payment takes the claim over, with its id.
    psql_db(
        &server.db,
        "UPDATE payments.payments SET claimed_at = now() - interval '61 seconds'",
    );
    let (status, payment) = pay(&server, &me, &order_id, "card", None);
    assert_eq!(status, 201, "{payment}");
    assert_eq!(payment["id"], claimed.as_str());
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(
        (count(&server, "payments"), count(&server, "outbox")),
        ("1".into(), "1".into())
    );
}

#[test]
fn a_retry_with_the_same_idempotency_key_gets_the_first_answer() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000305", two_washes());
    let key = uuid::Uuid::new_v4().to_string();
    let first = pay(&server, &me, &order_id, "card", Some(&key));
    assert_eq!(first.0, 201, "{}", first.1);
    assert_eq!(pay(&server, &me, &order_id, "card", Some(&key)), first);
    let (status, body) = pay(&server, &me, &order_id, "cash", Some(&key));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (422, Some("idempotency_key_reused"))
    );
    // A new key is a new attempt: the order is paid already.
    let (status, _) = pay(&server, &me, &order_id, "card", Some("another-key"));
    assert_eq!(status, 409);
    assert_eq!(
        (count(&server, "payments"), count(&server, "outbox")),
        ("1".into(), "1".into())
    );
}

#[test]
fn racing_retries_of_one_key_pay_once_and_all_see_the_same_answer() {
    let server = TestServer::start(
        ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_PROCESSING_DELAY_MS", "200"),
    );
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000306", two_washes());
    let key = uuid::Uuid::new_v4().to_string();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..6)
            .map(|_| scope.spawn(|| pay(&server, &me, &order_id, "card", Some(&key))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers[0].0, 201, "{answers:?}");
    assert!(
        answers.iter().all(|answer| answer == &answers[0]),
        "{answers:?}"
    );
    assert_eq!(
        (count(&server, "payments"), count(&server, "outbox")),
        ("1".into(), "1".into())
    );
}

#[test]
fn racing_payments_without_keys_pay_once() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000307", two_washes());
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| pay(&server, &me, &order_id, "card", None).0))
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
    assert_eq!(count(&server, "outbox"), "1");
}

#[test]
fn payments_survive_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000308", two_washes());
    let (_, payment) = pay(&server, &me, &order_id, "cash", None);
    server.restart();
    let path = format!("/api/payments/{}", payment["id"].as_str().unwrap());
    assert_eq!(server.call("GET", &path, me.token(), None), (200, payment));
}

#[test]
fn a_paid_order_is_refunded_when_its_owner_or_staff_cancel_it() {
    let server = TestServer::start(ServerConfig::app());
    let (me, staff) = (server.customer(), server.staff());
    for (who, vin) in [(&me, "XTA210930V0000309"), (&staff, "XTA210930V0000310")] {
        let order_id = order(&server, &me, vin, two_washes());
        let (status, payment) = pay(&server, &me, &order_id, "card", None);
        assert_eq!(status, 201, "{payment}");
        let (status, body) = server.call(
            "PATCH",
            &format!("/api/orders/{order_id}/status"),
            who.token(),
            Some(&json!({"status": "cancelled"})),
        );
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some("cancelled")),
            "{body}"
        );
        let path = format!("/api/payments/{}", payment["id"].as_str().unwrap());
        let (_, payment) = server.call("GET", &path, me.token(), None);
        assert_eq!(payment["status"], "refunded");
        // A cancelled order is not paid again.
        let (status, body) = pay(&server, &me, &order_id, "card", None);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("order_cancelled"))
        );
    }
}

fn pay_body(server: &TestServer, who: &Actor, body: &Value) -> (u16, Value) {
    server.call("POST", "/api/payments", who.token(), Some(body))
}

#[test]
fn a_fine_is_paid_once_charging_once_and_raises_no_event() {
    let server = TestServer::start(
        ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_PROCESSING_DELAY_MS", "500"),
    );
    let (staff, stranger) = (server.staff(), server.customer());
    let fine_id = psql_db(
        &server.db,
        "SELECT id FROM fines.fines WHERE license_plate = 'К456МН178'",
    );
    let fine = json!({"fine_id": fine_id, "payment_method": "cash"});
    // fines-service decides who may see a fine: not someone who proves no plate.
    let (status, body) = pay_body(&server, &stranger, &fine);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("fine_not_found")),
        "{body}\n{}",
        server.log()
    );
    let missing = json!({"fine_id": uuid::Uuid::new_v4(), "payment_method": "cash"});
    assert_eq!(
        pay_body(&server, &staff, &missing).1["error"]["code"],
        "fine_not_found"
    );
    for body in [
        json!({"payment_method": "cash"}),
        json!({"fine_id": fine_id, "order_id": fine_id, "payment_method": "cash"}),
    ] {
        let (status, answer) = pay_body(&server, &staff, &body);
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (422, Some("validation_failed")),
            "{body}"
        );
    }

    // Staff take cash at the desk, twice at once: one payment, one charge.
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| pay_body(&server, &staff, &fine)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let paid: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(paid.len(), 1, "{answers:?}\n{}", server.log());
    let payment = paid[0];
    assert_eq!(payment["fine_id"], fine_id.as_str());
    assert_eq!(payment["order_id"], Value::Null);
    assert_eq!(payment["amount"], 3000.0);
    assert_eq!(payment["status"], "succeeded");
    assert_eq!(payment["user_id"], staff.id.to_string());
    for (status, body) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(*status, 409, "{body}");
        assert!(
            ["payment_in_progress", "fine_already_paid"]
                .contains(&body["error"]["code"].as_str().unwrap()),
            "{body}"
        );
    }
    let (status, body) = pay_body(&server, &staff, &fine);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("fine_already_paid"))
    );
    assert_eq!(charges(&server), 1);
    // Bonuses accrue on paid orders only.
    assert_eq!(count(&server, "outbox"), "0");
    let (_, listed) = server.call(
        "GET",
        &format!("/api/payments?fine_id={fine_id}&status=succeeded"),
        staff.token(),
        None,
    );
    assert_eq!(listed["items"], json!([payment]));
}
