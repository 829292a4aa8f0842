//! payment-service end to end: paying orders once, refusals, declines, the outbox row
//! written with the payment, and Idempotency-Key retries (also racing ones).

mod common;

use common::{psql_db, Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";

/// A car and an order of two washes (3000.00) for `who`; the order's id.
fn order(server: &TestServer, who: &Actor, vin: &str, items: Value) -> String {
    let car = json!({"license_plate": "А123БВ799", "vin": vin, "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", who.token(), Some(&car));
    assert_eq!(status, 201, "{car}");
    let body = json!({"car_id": car["id"], "desired_time": "2030-12-20T10:00:00Z", "description": "ТО", "items": items});
    let (status, order) = server.call("POST", "/api/orders", who.token(), Some(&body));
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_owned()
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
fn a_declined_charge_is_402_and_leaves_no_payment_and_no_event() {
    let server =
        TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_DECLINE", "true"));
    let me = server.customer();
    let order_id = order(&server, &me, "XTA210930V0000304", two_washes());
    let (status, body) = pay(&server, &me, &order_id, "card", None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (402, Some("payment_declined"))
    );
    assert_eq!(
        (count(&server, "payments"), count(&server, "outbox")),
        ("0".into(), "0".into())
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
fn a_paid_order_cannot_be_cancelled_while_there_is_no_refund() {
    let server = TestServer::start(ServerConfig::app());
    let (me, staff) = (server.customer(), server.staff());
    let order_id = order(&server, &me, "XTA210930V0000309", two_washes());
    assert_eq!(pay(&server, &me, &order_id, "card", None).0, 201);
    let path = format!("/api/orders/{order_id}/status");
    for who in [&me, &staff] {
        let (status, body) = server.call(
            "PATCH",
            &path,
            who.token(),
            Some(&json!({"status": "cancelled"})),
        );
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("order_paid")),
            "{body}"
        );
    }
    // Work on a paid order goes on as usual.
    let (status, _) = server.call(
        "PATCH",
        &path,
        staff.token(),
        Some(&json!({"status": "confirmed"})),
    );
    assert_eq!(status, 200);
}
