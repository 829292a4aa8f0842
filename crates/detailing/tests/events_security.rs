//! Forged payment events credit nothing, whichever way they come in: published to the Redis
//! channel (with the default RabbitMQ transport and with the Redis one) or straight onto the
//! RabbitMQ exchange (dead-lettered at once, not retried). Events payment-service signed
//! still accrue once on both transports, a replayed one is a duplicate, and an outbox row from
//! before signing waits unsent until it is signed as migrations/0011_signed_events.sql shows.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{psql_db, signed_event, under_spin, Actor, ServerConfig, TestServer, TestVhost};
use serde_json::{json, Value};

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";
const REDIS_URL: &str = "redis://127.0.0.1:6379";
const REFUSED_FROM_REDIS: &str = "refused a payment event from Redis";
const REFUSED_FROM_RELAY: &str = "refused a payment event from the relay";

/// The attack as it stood: an event with a made-up id for `who`, worth 10,000.00 bonuses.
fn forged(who: &Actor) -> Value {
    json!({
        "event_id": uuid::Uuid::new_v4(),
        "order_id": uuid::Uuid::new_v4(),
        "user_id": who.id,
        "amount": 1_000_000.0,
    })
}

/// The same event signed with a key that is not the app's.
fn signed_with_another_key(event: &Value) -> Vec<u8> {
    events::SigningKey::new(b"an-attackers-key-that-is-32-bytes-long")
        .unwrap()
        .seal(&event.to_string())
}

/// A real signature over one event, put on another (the amount raised).
fn altered(event: &Value) -> Vec<u8> {
    let genuine: Value = serde_json::from_slice(&signed_event(event)).unwrap();
    let mut raised = event.clone();
    raised["amount"] = json!(2_000_000.0);
    events::envelope(&raised.to_string(), genuine["signature"].as_str().unwrap())
}

/// A server with its metrics listener (ours only: under Spin, a plain server). Under the Spin
/// CLI there are no metrics of ours: the tests then count what the components log and what
/// the database and the broker hold, as they also do on our host.
fn observed(config: ServerConfig) -> TestServer {
    if under_spin() {
        return TestServer::start(config);
    }
    TestServer::start(config.arg("--metrics-listen").arg("127.0.0.1:0"))
}

/// Each series of one scrape of the server's metrics, by `name{labels}`.
fn scrape(server: &TestServer) -> HashMap<String, f64> {
    let url = server
        .log()
        .lines()
        .find_map(|line| line.strip_prefix("Metrics "))
        .unwrap_or_else(|| panic!("no `Metrics` line:\n{}", server.log()))
        .trim()
        .to_owned();
    let text = server.client().get(url).send().unwrap().text().unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect()
}

fn metric(server: &TestServer, key: &str) -> f64 {
    scrape(server).get(key).copied().unwrap_or(0.0)
}

const REDIS_FAILED: &str =
    r#"detailing_redis_messages_total{component="bonus-service",outcome="failed"}"#;
const REDIS_HANDLED: &str =
    r#"detailing_redis_messages_total{component="bonus-service",outcome="handled"}"#;
const BONUS_4XX: &str =
    r#"detailing_http_requests_total{component="bonus-service",status_class="4xx"}"#;

/// How many times the components logged `text` (counted in the text, not by lines: under the
/// Spin CLI, lines of instances running at once may interleave).
fn times_logged(server: &TestServer, text: &str) -> usize {
    server.log().matches(text).count()
}

fn balance(server: &TestServer, who: &Actor) -> Value {
    let (status, body) = server.call("GET", "/api/bonuses/balance", who.token(), None);
    assert_eq!(status, 200, "{body}");
    body["balance"].clone()
}

fn ledger(server: &TestServer) -> String {
    psql_db(&server.db, "SELECT count(*) FROM bonuses.ledger")
}

/// A server whose Redis trigger listens on a channel of its own (channels are shared by every
/// test on this Redis), subscribed before it returns: Redis itself says so.
fn on_own_channel(transport: &str) -> (TestServer, String) {
    let channel = format!("payment_events_{}", uuid::Uuid::new_v4().simple());
    let server = observed(
        ServerConfig::app()
            .env("SPIN_VARIABLE_PAYMENT_EVENTS_TRANSPORT", transport)
            .env("SPIN_VARIABLE_PAYMENT_EVENTS_CHANNEL", &channel),
    );
    let subscribed = common::wait_for(
        Duration::from_secs(20),
        || common::redis_subscribers(REDIS_URL, &channel),
        |count| *count >= 1,
    );
    assert_eq!(subscribed, 1, "{}", server.log());
    (server, channel)
}

/// PUBLISH, as anyone who reaches Redis can; the number of subscribers that got it.
fn publish_to_redis(channel: &str, message: &[u8]) -> i64 {
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut connection = client.get_connection().unwrap();
    redis::cmd("PUBLISH")
        .arg(channel)
        .arg(message)
        .query(&mut connection)
        .unwrap()
}

/// Publishes straight onto the payment exchange of `vhost`, as anyone holding RabbitMQ
/// credentials can, and waits for the broker's confirm.
fn publish_to_exchange(vhost: &TestVhost, messages: &[Vec<u8>]) {
    use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let properties = lapin::ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio);
        let connection = lapin::Connection::connect(&vhost.url(), properties)
            .await
            .unwrap();
        let channel = connection.create_channel().await.unwrap();
        relay::topology::declare(&channel).await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for message in messages {
            let confirm = channel
                .basic_publish(
                    relay::topology::EXCHANGE,
                    relay::topology::ROUTING_KEY,
                    BasicPublishOptions::default(),
                    message,
                    lapin::BasicProperties::default()
                        .with_content_type("application/json".into())
                        .with_message_id(uuid::Uuid::new_v4().to_string().into()),
                )
                .await
                .unwrap();
            assert!(confirm.await.unwrap().is_ack());
        }
        connection.close(200, "done").await.unwrap();
    });
}

/// An order of two washes (3000.00, 30.00 in bonuses) for `who`, paid by card.
fn pay_an_order(server: &TestServer, who: &Actor) -> Value {
    let order = common::order_on_new_car(server, who, json!([{"catalog_id": WASH, "quantity": 2}]));
    let body = json!({"order_id": order, "payment_method": "card"});
    let (status, payment) = server.call("POST", "/api/payments", who.token(), Some(&body));
    assert_eq!(status, 201, "{payment}\n{}", server.log());
    payment
}

/// The outbox row of `payment` as a message: its body and signature in the envelope, after
/// checking the signature is the test key's over exactly that body.
fn signed_message_of(server: &TestServer, payment: &Value) -> Vec<u8> {
    let row = psql_db(
        &server.db,
        &format!(
            "SELECT body || E'\\t' || signature FROM payments.outbox WHERE payment_id = '{}'",
            payment["id"].as_str().unwrap()
        ),
    );
    let (body, signature) = row.split_once('\t').expect("a signed outbox row");
    let key = events::SigningKey::new(common::TEST_EVENT_SIGNING_KEY.as_bytes()).unwrap();
    key.verify(body, signature)
        .expect("signed with the app's key");
    let event: Value = serde_json::from_str(body).unwrap();
    assert_eq!(event["amount"], 3000.0);
    assert_eq!(event["order_id"], payment["order_id"]);
    events::envelope(body, signature)
}

#[test]
fn forged_redis_events_credit_nothing_with_the_rabbitmq_transport() {
    // The default transport: the Redis trigger subscribes all the same, as Spin's does.
    let (server, channel) = on_own_channel("rabbitmq");
    let me = server.customer();
    let event = forged(&me);
    let messages = [
        event.to_string().into_bytes(),
        signed_with_another_key(&event),
        // Even a correctly signed event: with this transport, Redis carries none.
        signed_event(&event),
    ];
    for message in &messages {
        assert_eq!(publish_to_redis(&channel, message), 1, "one subscriber");
    }
    let refused = common::wait_for(
        Duration::from_secs(20),
        || times_logged(&server, "payment_events_transport is `rabbitmq`"),
        |refused| *refused >= 3,
    );
    assert_eq!(refused, 3, "{}", server.log());
    if !under_spin() {
        assert_eq!(metric(&server, REDIS_FAILED), 3.0, "{}", server.log());
        assert_eq!(metric(&server, REDIS_HANDLED), 0.0);
    }
    assert_eq!(balance(&server, &me), 0.0);
    assert_eq!(ledger(&server), "0");
    assert!(!server.log().contains(common::TEST_EVENT_SIGNING_KEY));
}

#[test]
fn forged_redis_events_credit_nothing_with_the_redis_transport_and_signed_ones_accrue_once() {
    let (server, channel) = on_own_channel("redis");
    let me = server.customer();
    let event = forged(&me);
    for message in [
        event.to_string().into_bytes(),
        signed_with_another_key(&event),
        altered(&event),
    ] {
        assert_eq!(publish_to_redis(&channel, &message), 1, "one subscriber");
    }
    let log = common::wait_for(
        Duration::from_secs(20),
        || server.log(),
        |log| log.matches(REFUSED_FROM_REDIS).count() >= 3,
    );
    if !under_spin() {
        assert_eq!(metric(&server, REDIS_FAILED), 3.0, "{}", server.log());
    }
    assert_eq!(
        log.matches(&format!("{REFUSED_FROM_REDIS}: not a signed event"))
            .count(),
        1,
        "{log}"
    );
    assert_eq!(
        log.matches("the signature does not match the event")
            .count(),
        2,
        "{log}"
    );
    assert!(!log.contains(common::TEST_EVENT_SIGNING_KEY));
    assert_eq!(balance(&server, &me), 0.0);
    assert_eq!(ledger(&server), "0");

    // The real thing: payment-service signs and publishes, bonus-service accrues once.
    let payment = pay_an_order(&server, &me);
    let accrued = common::wait_for(
        Duration::from_secs(20),
        || balance(&server, &me),
        |balance| *balance == 30.0,
    );
    assert_eq!(accrued, 30.0, "{}", server.log());
    // Replayed (captured off the channel, say): a duplicate, nothing more.
    let message = signed_message_of(&server, &payment);
    assert_eq!(publish_to_redis(&channel, &message), 1);
    if under_spin() {
        // A duplicate logs nothing and Spin has no count of handled messages: give it time.
        std::thread::sleep(Duration::from_secs(3));
    } else {
        let handled = common::wait_for(
            Duration::from_secs(20),
            || metric(&server, REDIS_HANDLED),
            |handled| *handled >= 2.0,
        );
        assert_eq!(handled, 2.0, "{}", server.log());
        assert_eq!(metric(&server, REDIS_FAILED), 3.0);
    }
    assert_eq!(
        server.log().matches(REFUSED_FROM_REDIS).count(),
        3,
        "{}",
        server.log()
    );
    assert_eq!(balance(&server, &me), 30.0);
    assert_eq!(ledger(&server), "1");
}

#[test]
fn forged_messages_on_the_exchange_are_dead_lettered_at_once_and_signed_ones_accrue_once() {
    let vhost = TestVhost::create();
    // Twelve attempts, the default: retried, a refused message would take minutes to reach
    // the dead-letter queue.
    let server = observed(ServerConfig::app().with_relay(&vhost));
    let me = server.customer();
    let event = forged(&me);
    let started = Instant::now();
    publish_to_exchange(
        &vhost,
        &[
            event.to_string().into_bytes(),
            signed_with_another_key(&event),
        ],
    );
    // Retried like other failures, the two would take about 140 s (twelve attempts, backoff
    // doubling from 0.2 s to 30 s); 45 s leaves room for a loaded machine's relay start.
    let dead = common::wait_for(
        Duration::from_secs(45),
        || vhost.ready(relay::topology::DEAD_LETTER_QUEUE),
        |dead| *dead == 2,
    );
    assert_eq!(dead, 2, "{}", server.log());
    assert!(started.elapsed() < Duration::from_secs(45));
    assert_eq!(
        times_logged(&server, REFUSED_FROM_RELAY),
        2,
        "{}",
        server.log()
    );
    if !under_spin() {
        assert_eq!(metric(&server, BONUS_4XX), 2.0);
        assert_eq!(
            metric(
                &server,
                r#"detailing_relay_delivered_total{outcome="dead_lettered"}"#
            ),
            2.0
        );
    }
    assert_eq!(balance(&server, &me), 0.0);
    assert_eq!(ledger(&server), "0");

    // A paid order's event, signed by payment-service, goes through and accrues once...
    let payment = pay_an_order(&server, &me);
    let accrued = common::wait_for(
        Duration::from_secs(30),
        || balance(&server, &me),
        |balance| *balance == 30.0,
    );
    assert_eq!(accrued, 30.0, "{}", server.log());
    // ...and the same signed message replayed onto the exchange is a duplicate.
    publish_to_exchange(&vhost, &[signed_message_of(&server, &payment)]);
    if under_spin() {
        // The relay beside Spin counts its deliveries only with a metrics listener of its
        // own: give the duplicate time to be delivered and acked.
        std::thread::sleep(Duration::from_secs(3));
    } else {
        let acked = common::wait_for(
            Duration::from_secs(15),
            || {
                metric(
                    &server,
                    r#"detailing_relay_delivered_total{outcome="acked"}"#,
                )
            },
            |acked| *acked >= 2.0,
        );
        assert_eq!(acked, 2.0, "{}", server.log());
    }
    assert_eq!(balance(&server, &me), 30.0);
    assert_eq!(ledger(&server), "1");
    assert_eq!(vhost.ready(relay::topology::DEAD_LETTER_QUEUE), 2);
}

#[test]
fn an_unsigned_outbox_row_from_before_signing_waits_until_signed_as_documented() {
    let vhost = TestVhost::create();
    let mut server = TestServer::start(ServerConfig::app().with_relay(&vhost));
    let me = server.customer();
    // A payment and its event as they were written before migration 0011.
    psql_db(
        &server.db,
        &format!(
            "WITH p AS (INSERT INTO payments.payments (order_id, user_id, amount_kopecks, method, status) \
             VALUES (gen_random_uuid(), '{}', 150000, 'card', 'succeeded') RETURNING *) \
             INSERT INTO payments.outbox (payment_id, order_id, user_id, amount_kopecks) \
             SELECT id, order_id, user_id, amount_kopecks FROM p",
            me.id
        ),
    );
    // The relay says so when it (re)connects...
    server.restart();
    let log = common::wait_for(
        Duration::from_secs(20),
        || server.log(),
        |log| log.contains("written before events were signed"),
    );
    assert!(log.contains("1 unsent event(s)"), "{log}");
    // ...and publishes other events meanwhile, but not that one.
    pay_an_order(&server, &me);
    let accrued = common::wait_for(
        Duration::from_secs(30),
        || balance(&server, &me),
        |balance| *balance == 30.0,
    );
    assert_eq!(accrued, 30.0, "{}", server.log());
    let unsent = "SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL";
    assert_eq!(psql_db(&server.db, unsent), "1");

    // The migration's recipe, run as written with the key.
    let migration =
        std::fs::read_to_string(common::repo_root().join("migrations/0011_signed_events.sql"))
            .unwrap();
    let recipe: String = migration
        .lines()
        .skip_while(|line| !line.contains("CREATE EXTENSION"))
        .take_while(|line| line.starts_with("--   "))
        .map(|line| &line[5..])
        .collect::<Vec<_>>()
        .join("\n");
    assert!(recipe.contains("UPDATE payments.outbox"), "{recipe}");
    let recipe = recipe.replace(":'key'", &format!("'{}'", common::TEST_EVENT_SIGNING_KEY));
    psql_db(&server.db, &recipe);
    let accrued = common::wait_for(
        Duration::from_secs(30),
        || balance(&server, &me),
        |balance| *balance == 45.0,
    );
    assert_eq!(accrued, 45.0, "{}", server.log());
    assert_eq!(psql_db(&server.db, unsent), "0");
    assert_eq!(ledger(&server), "2");
}
