//! Payment -> bonus through the real broker: the basic check, the fault test (relay killed
//! with SIGKILL, the broker's connections dropped, bonus-service failing for a while) with
//! nothing lost and nothing doubled, and the dead-letter path. Each test has its own
//! RabbitMQ vhost and database.

mod common;

use std::time::Duration;

use common::{psql_db, Actor, ServerConfig, TestServer, TestVhost};
use serde_json::{json, Value};

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";
const POLISH: &str = "6b1f2c1e-0001-4000-8000-000000000003";

/// An order of `washes` washes and `polishes` polishes for `who`, on a fresh car.
fn order(server: &TestServer, who: &Actor, washes: u32, polishes: u32) -> String {
    let mut items = vec![json!({"catalog_id": WASH, "quantity": washes})];
    if polishes > 0 {
        items.push(json!({"catalog_id": POLISH, "quantity": polishes}));
    }
    common::order_on_new_car(server, who, Value::Array(items))
}

fn pay(server: &TestServer, who: &Actor, order_id: &str) -> Value {
    let body = json!({"order_id": order_id, "payment_method": "card"});
    let (status, payment) = server.call("POST", "/api/payments", who.token(), Some(&body));
    assert_eq!(status, 201, "{payment}");
    payment
}

#[test]
fn paying_an_order_accrues_one_percent_through_rabbitmq() {
    let vhost = TestVhost::create();
    let server = TestServer::start(ServerConfig::app().with_relay(&vhost));
    let me = server.customer();
    let order_id = order(&server, &me, 2, 0);
    pay(&server, &me, &order_id);

    let balance = common::wait_for(
        Duration::from_secs(30),
        || {
            server
                .call("GET", "/api/bonuses/balance", me.token(), None)
                .1
        },
        |balance| balance["balance"] == 30.0,
    );
    assert_eq!(balance["balance"], 30.0, "{}", server.log());
    let line = format!("Accrued 30.00 bonuses to user {}", me.id);
    assert!(server.log_has(&line), "no `{line}` in:\n{}", server.log());
    assert_eq!(
        psql_db(
            &server.db,
            "SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL"
        ),
        "0"
    );
}

#[test]
fn faults_lose_nothing_and_double_nothing() {
    const CUSTOMERS: usize = 20;
    const ORDERS_EACH: usize = 10;
    let vhost = TestVhost::create();
    let good = TestServer::start(ServerConfig::app());
    // The same database behind a host whose bonus-service answers 500 to every event.
    let failing = TestServer::start(
        ServerConfig::app()
            .with_fault_switch()
            .env("SPIN_VARIABLE_POSTGRES_URL", &good.db.url())
            .env("SPIN_VARIABLE_BONUS_FAIL_EVENTS", "true"),
    );
    let db_url = good.db.url();
    let customers: Vec<Actor> = (0..CUSTOMERS).map(|_| good.customer()).collect();
    let orders: Vec<(usize, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = customers
            .iter()
            .enumerate()
            .map(|(i, who)| {
                let good = &good;
                scope.spawn(move || {
                    (0..ORDERS_EACH)
                        .map(|n| (i, order(good, who, 1 + (n % 3) as u32, (n % 2) as u32)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(orders.len(), CUSTOMERS * ORDERS_EACH);

    // Relay 1 delivers to the failing bonus-service: every delivery is retried.
    let failing_url = failing.url("/api/bonuses/events");
    let mut relay = common::start_relay(
        &db_url,
        &vhost,
        &failing_url,
        &["--relay-max-attempts", "50"],
    );
    let third = orders.len() / 3;
    for (i, order_id) in &orders[..third] {
        pay(&good, &customers[*i], order_id);
    }
    // (a) SIGKILL mid-flight, then (c) ends: a new relay delivers to the healthy host.
    common::kill(&mut relay);
    let good_url = good.url("/api/bonuses/events");
    let mut relay =
        common::start_relay(&db_url, &vhost, &good_url, &["--relay-max-attempts", "50"]);
    for (i, order_id) in &orders[third..2 * third] {
        pay(&good, &customers[*i], order_id);
    }
    // (b) The broker drops every connection of the vhost; the relay must reconnect.
    common::rabbitmqctl(&["close_all_connections", "-p", &vhost.name, "fault test"]);
    for (i, order_id) in &orders[2 * third..] {
        pay(&good, &customers[*i], order_id);
    }

    let accruals = common::wait_for(
        Duration::from_secs(90),
        || {
            psql_db(
                &good.db,
                "SELECT count(*) FROM bonuses.ledger WHERE kind = 'accrual'",
            )
        },
        |count| count == &orders.len().to_string(),
    );
    common::kill(&mut relay);
    assert_eq!(
        accruals,
        orders.len().to_string(),
        "accruals never caught up"
    );
    // Exactly one accrual per payment event...
    assert_eq!(
        psql_db(
            &good.db,
            "SELECT count(*) FROM payments.outbox o \
             WHERE (SELECT count(*) FROM bonuses.ledger l WHERE l.event_id = o.event_id) <> 1"
        ),
        "0"
    );
    // ...and every balance is 1 % of what its owner paid, rounded per payment.
    assert_eq!(
        psql_db(
            &good.db,
            "SELECT count(*) FROM (SELECT user_id, sum((amount_kopecks + 50) / 100) AS owed \
             FROM payments.payments GROUP BY user_id) p \
             LEFT JOIN bonuses.accounts a USING (user_id) \
             WHERE a.balance_kopecks IS DISTINCT FROM p.owed"
        ),
        "0"
    );
    assert_eq!(vhost.ready(relay::topology::DEAD_LETTER_QUEUE), 0);
    assert_eq!(
        psql_db(
            &good.db,
            "SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL"
        ),
        "0"
    );
}

#[test]
fn events_that_keep_failing_are_dead_lettered_not_lost() {
    let vhost = TestVhost::create();
    let server = TestServer::start(
        ServerConfig::app()
            .with_fault_switch()
            .with_relay(&vhost)
            .arg("--relay-max-attempts")
            .arg("3")
            .env("SPIN_VARIABLE_BONUS_FAIL_EVENTS", "true"),
    );
    let me = server.customer();
    let order_id = order(&server, &me, 1, 0);
    let payment = pay(&server, &me, &order_id);
    let dead = common::wait_for(
        Duration::from_secs(30),
        || vhost.ready(relay::topology::DEAD_LETTER_QUEUE),
        |count| *count == 1,
    );
    assert_eq!(dead, 1, "{}", server.log());
    assert_eq!(vhost.ready(relay::topology::QUEUE), 0);
    assert_eq!(
        psql_db(&server.db, "SELECT count(*) FROM bonuses.ledger"),
        "0"
    );
    // The dead letter is the event itself, ready to be replayed once the cause is fixed.
    let event_id = psql_db(
        &server.db,
        &format!(
            "SELECT event_id FROM payments.outbox WHERE payment_id = '{}'",
            payment["id"].as_str().unwrap()
        ),
    );
    assert!(server.log_has(&event_id), "{}", server.log());
}

#[test]
fn the_redis_transport_accrues_through_the_redis_trigger() {
    // A channel of its own: Redis pub/sub channels are shared by every test on this server.
    let channel = format!("payment_events_{}", uuid::Uuid::new_v4().simple());
    let server = TestServer::start(
        ServerConfig::app()
            .env("SPIN_VARIABLE_PAYMENT_EVENTS_TRANSPORT", "redis")
            .env("SPIN_VARIABLE_PAYMENT_EVENTS_CHANNEL", &channel),
    );
    // The subscription is made in the background after startup; wait until Redis has it.
    let subscribed = common::wait_for(
        Duration::from_secs(20),
        || common::redis_subscribers("redis://127.0.0.1:6379", &channel),
        |count| *count >= 1,
    );
    assert_eq!(subscribed, 1, "{}", server.log());
    let me = server.customer();
    let order_id = order(&server, &me, 2, 0);
    let payment = pay(&server, &me, &order_id);

    let balance = common::wait_for(
        Duration::from_secs(20),
        || {
            server
                .call("GET", "/api/bonuses/balance", me.token(), None)
                .1
        },
        |balance| balance["balance"] == 30.0,
    );
    assert_eq!(balance["balance"], 30.0, "{}", server.log());
    // The guest's line reaches the host's log after its answer: wait for it too.
    let accrued = format!("Accrued 30.00 bonuses to user {}", me.id);
    let log = common::wait_for(
        Duration::from_secs(10),
        || server.log(),
        |log| log.contains(&accrued),
    );
    assert!(log.contains(&accrued), "{log}");
    // The outbox still records the event, marked sent: the relay has nothing to do.
    let sent = psql_db(
        &server.db,
        &format!(
            "SELECT sent_at IS NOT NULL FROM payments.outbox WHERE payment_id = '{}'",
            payment["id"].as_str().unwrap()
        ),
    );
    assert_eq!(sent, "t");
}

/// A stand-in for bonus-service that answers 200 to every POST and records the `event_id`s
/// of the events inside the envelopes: it counts deliveries, which bonus-service's
/// deduplication would hide.
fn counting_endpoint() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/api/bonuses/events",
        listener.local_addr().unwrap()
    );
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let record = record.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                // One keep-alive connection carries many requests.
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap();
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let envelope: Value = serde_json::from_slice(&body).unwrap();
                    let event: Value =
                        serde_json::from_str(envelope["event"].as_str().unwrap()).unwrap();
                    record
                        .lock()
                        .unwrap()
                        .push(event["event_id"].as_str().unwrap().to_owned());
                    writer
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .unwrap();
                }
            });
        }
    });
    (url, seen)
}

#[test]
fn two_relays_share_the_outbox_without_publishing_an_event_twice() {
    const EVENTS: usize = 400;
    let vhost = TestVhost::create();
    let server = TestServer::start(ServerConfig::app());
    psql_db(
        &server.db,
        &format!(
            "WITH p AS (INSERT INTO payments.payments (order_id, user_id, amount_kopecks, method, status) \
             SELECT gen_random_uuid(), gen_random_uuid(), 150000, 'card', 'succeeded' \
             FROM generate_series(1, {EVENTS}) \
             RETURNING id, order_id, user_id, amount_kopecks) \
             INSERT INTO payments.outbox \
               (event_id, payment_id, order_id, user_id, amount_kopecks, body, signature) \
             SELECT e, id, order_id, user_id, amount_kopecks, \
               json_build_object('order_id', order_id, 'user_id', user_id, \
                 'amount', 1500.0, 'event_id', e)::text, \
               'hmac-sha256=' || repeat('0', 64) \
             FROM (SELECT gen_random_uuid() AS e, * FROM p) AS signed"
        ),
    );
    // (The stand-in signature is never checked: the endpoint below verifies nothing.)
    let (url, seen) = counting_endpoint();
    // Small batches, so both relays keep claiming while the other holds rows.
    let tuning = ["--relay-batch-size", "10"];
    let mut first = common::start_relay(&server.db.url(), &vhost, &url, &tuning);
    let mut second = common::start_relay(&server.db.url(), &vhost, &url, &tuning);
    let delivered = common::wait_for(
        Duration::from_secs(60),
        || seen.lock().unwrap().len(),
        |count| *count >= EVENTS,
    );
    // Anything published twice would still be arriving: give it a moment to show.
    std::thread::sleep(Duration::from_millis(500));
    common::kill(&mut first);
    common::kill(&mut second);
    assert_eq!(delivered, EVENTS);
    let mut ids = seen.lock().unwrap().clone();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (total, ids.len()),
        (EVENTS, EVENTS),
        "an event was delivered twice"
    );
    assert_eq!(
        psql_db(
            &server.db,
            "SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL"
        ),
        "0"
    );
}
