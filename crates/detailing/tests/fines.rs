//! fines-service end to end: the seeded fines found through the caller's cars (car-service
//! chaining with the caller's token), paid exactly once, and kept paid across a restart.

mod common;

use std::collections::BTreeSet;

use common::{psql_db, Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

/// The README's example car; migrations/0007_fines.sql seeds four fines on it.
const SEED_PLATE: &str = "А123БВ799";

fn get(server: &TestServer, who: &Actor, path: &str) -> (u16, Value) {
    server.call("GET", path, who.token(), None)
}

fn pay(server: &TestServer, who: &Actor, fine_id: &str) -> (u16, Value) {
    server.call(
        "POST",
        &format!("/api/fines/{fine_id}/pay"),
        who.token(),
        None,
    )
}

fn register_car(server: &TestServer, owner: &Actor, plate: &str, vin: &str) {
    let body =
        json!({"license_plate": plate, "vin": vin, "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", owner.token(), Some(&body));
    assert_eq!(status, 201, "{car}\n{}", server.log());
}

/// A check that must succeed: its items and its total in kopecks.
fn check(server: &TestServer, who: &Actor, query: &str) -> (Vec<Value>, i64) {
    let (status, body) = get(server, who, &format!("/api/fines/check{query}"));
    assert_eq!(status, 200, "{body}\n{}", server.log());
    (
        body["items"].as_array().unwrap().clone(),
        kopecks(&body["total"]),
    )
}

fn kopecks(amount: &Value) -> i64 {
    (amount.as_f64().unwrap() * 100.0).round() as i64
}

fn ids(items: &[Value]) -> BTreeSet<String> {
    items
        .iter()
        .map(|fine| fine["id"].as_str().unwrap().to_owned())
        .collect()
}

/// The ids and the summed amount of the unpaid fines on `plate`, read from the table.
fn unpaid_in_db(server: &TestServer, plate: &str) -> (BTreeSet<String>, i64) {
    let where_unpaid = format!("license_plate = '{plate}' AND paid_at IS NULL");
    let ids = psql_db(
        &server.db,
        &format!("SELECT id FROM fines.fines WHERE {where_unpaid}"),
    );
    let total = psql_db(
        &server.db,
        &format!("SELECT coalesce(sum(amount), 0) FROM fines.fines WHERE {where_unpaid}"),
    );
    (
        ids.lines().map(str::to_owned).collect(),
        total.parse().unwrap(),
    )
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[test]
fn the_seed_plate_shows_its_unpaid_fines_newest_first_with_their_total() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");

    let (items, total) = check(&server, &me, "");
    let (seeded, seeded_total) = unpaid_in_db(&server, SEED_PLATE);
    assert_eq!(seeded.len(), 4);
    assert_eq!(ids(&items), seeded);
    assert_eq!(total, seeded_total);
    assert_eq!(total, 975_000);
    for fine in &items {
        assert_eq!(fine["license_plate"], SEED_PLATE);
        assert_eq!(fine["paid"], false);
        assert_eq!(fine["paid_at"], Value::Null);
        assert!(kopecks(&fine["amount"]) > 0);
        assert!(!fine["reason"].as_str().unwrap().is_empty());
    }
    let issued: Vec<&str> = items
        .iter()
        .map(|f| f["issued_at"].as_str().unwrap())
        .collect();
    assert!(issued.windows(2).all(|w| w[0] >= w[1]), "{issued:?}");
    assert_eq!(issued[0], "2025-12-02T04:58:00Z");
}

#[test]
fn a_fine_is_paid_once_then_409_and_leaves_the_check() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    let (items, total) = check(&server, &me, "");
    let fine = &items[0];
    let id = fine["id"].as_str().unwrap();

    let (status, paid) = pay(&server, &me, id);
    assert_eq!(status, 200, "{paid}\n{}", server.log());
    assert_eq!(paid["id"], fine["id"]);
    assert_eq!(paid["amount"], fine["amount"]);
    assert_eq!(paid["paid"], true);
    assert!(paid["paid_at"].as_str().unwrap().ends_with('Z'), "{paid}");

    let (status, again) = pay(&server, &me, id);
    assert_eq!((status, code(&again)), (409, Some("fine_already_paid")));

    let (after, total_after) = check(&server, &me, "");
    assert_eq!(after.len(), items.len() - 1);
    assert!(!ids(&after).contains(id));
    assert_eq!(total_after, total - kopecks(&fine["amount"]));
    assert_eq!(
        psql_db(
            &server.db,
            &format!("SELECT paid_by FROM fines.fines WHERE id = '{id}'")
        ),
        me.id.to_string()
    );
}

#[test]
fn another_customer_sees_none_of_them_and_cannot_pay_them() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other) = (server.customer(), server.customer());
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    let (mine, _) = check(&server, &me, "");

    let (theirs, total) = check(&server, &other, "");
    assert_eq!((theirs.len(), total), (0, 0));
    register_car(&server, &other, "К456МН178", "XTA210930V0123457");
    let (theirs, _) = check(&server, &other, "");
    assert!(ids(&theirs).is_disjoint(&ids(&mine)));
    assert!(theirs.iter().all(|f| f["license_plate"] == "К456МН178"));

    let id = mine[0]["id"].as_str().unwrap();
    let (status, body) = pay(&server, &other, id);
    assert_eq!(
        (status, code(&body)),
        (404, Some("fine_not_found")),
        "{body}"
    );
    assert_eq!(check(&server, &me, "").0.len(), mine.len());
    for missing in ["not-a-uuid", &uuid::Uuid::new_v4().to_string()] {
        let (status, body) = pay(&server, &me, missing);
        assert_eq!((status, code(&body)), (404, Some("fine_not_found")));
    }
}

#[test]
fn checking_a_plate_that_is_not_on_your_cars_is_404() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    register_car(&server, &me, "К456МН178", "XTA210930V0123457");

    let (status, body) = get(&server, &me, "/api/fines/check?license_plate=О777ОО77");
    assert_eq!(
        (status, code(&body)),
        (404, Some("license_plate_not_found"))
    );
    // Written the way people type it: lower case, padded. Only that car's fines answer.
    let (only, total) = check(&server, &me, "?license_plate=%20а123бв799%20");
    assert_eq!(ids(&only), unpaid_in_db(&server, SEED_PLATE).0);
    assert_eq!(total, 975_000);
    let (status, body) = get(&server, &me, "/api/fines/check?license_plate=");
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "license_plate");
}

#[test]
fn the_check_covers_every_car_of_the_caller() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    register_car(&server, &me, "К456МН178", "XTA210930V0123457");
    let (items, total) = check(&server, &me, "");
    let (mut expected, seed_total) = unpaid_in_db(&server, SEED_PLATE);
    let (other, other_total) = unpaid_in_db(&server, "К456МН178");
    expected.extend(other);
    assert_eq!(ids(&items), expected);
    assert_eq!(total, seed_total + other_total);
}

#[test]
fn the_check_follows_car_service_pages_past_the_first_hundred_cars() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    // Registered first, so it is last in car-service's newest-first list: on page two.
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    psql_db(
        &server.db,
        &format!(
            "INSERT INTO cars.cars (owner_id, license_plate, vin, make, model, year) \
             SELECT '{}', 'Т' || i || 'ТТ77', 'XTA21093' || lpad(i::text, 9, '0'), \
                    'Lada', 'Vesta', 2021 \
             FROM generate_series(1, 100) AS i",
            me.id
        ),
    );
    let (status, page) = get(&server, &me, "/api/cars?limit=100");
    assert_eq!(status, 200);
    assert!(page["next_cursor"].is_string(), "{page}");
    let (items, total) = check(&server, &me, "");
    assert_eq!(ids(&items), unpaid_in_db(&server, SEED_PLATE).0);
    assert_eq!(total, 975_000);
}

#[test]
fn staff_check_any_plate_and_without_one_their_own_cars() {
    let server = TestServer::start(ServerConfig::app());
    let (customer, staff) = (server.customer(), server.staff());
    register_car(&server, &customer, SEED_PLATE, "XTA210930V0123456");

    let (items, total) = check(&server, &staff, "?license_plate=о777оо77");
    assert_eq!(ids(&items), unpaid_in_db(&server, "О777ОО77").0);
    assert_eq!(total, 450_000);
    // Staff own no car: everyone's cars are not "their cars".
    assert_eq!(check(&server, &staff, ""), (Vec::new(), 0));

    let (customers, _) = check(&server, &customer, "");
    let id = customers[0]["id"].as_str().unwrap();
    let (status, paid) = pay(&server, &staff, id);
    assert_eq!(
        (status, paid["paid"].as_bool()),
        (200, Some(true)),
        "{paid}"
    );
    let plate_fine = items[0]["id"].as_str().unwrap();
    assert_eq!(pay(&server, &staff, plate_fine).0, 200);
    assert_eq!(check(&server, &customer, "").0.len(), customers.len() - 1);
}

#[test]
fn concurrent_payments_of_one_fine_succeed_exactly_once() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    let (items, _) = check(&server, &me, "");
    let id = items[0]["id"].as_str().unwrap();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| pay(&server, &me, id).0))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 409].contains(s)),
        "{statuses:?}"
    );
}

#[test]
fn check_and_pay_are_503_when_car_service_is_unroutable() {
    let config = ServerConfig::app().env(
        "SPIN_VARIABLE_CAR_SERVICE_URL",
        "http://nosuch.spin.internal",
    );
    let server = TestServer::start(config);
    let (me, staff) = (server.customer(), server.staff());
    let (status, body) = get(&server, &me, "/api/fines/check");
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body), Some("car_service_unavailable"));
    let (status, body) = pay(&server, &me, &uuid::Uuid::new_v4().to_string());
    assert_eq!(
        (status, code(&body)),
        (503, Some("car_service_unavailable"))
    );
    // Staff naming a plate need no car-service.
    let (items, _) = check(&server, &staff, &format!("?license_plate={SEED_PLATE}"));
    assert_eq!(items.len(), 4);
}

#[test]
fn a_paid_fine_stays_paid_after_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    let (items, _) = check(&server, &me, "");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(pay(&server, &me, &id).0, 200);

    server.restart();
    let (after, _) = check(&server, &me, "");
    assert_eq!(after.len(), items.len() - 1);
    assert!(!ids(&after).contains(&id));
    let (status, body) = pay(&server, &me, &id);
    assert_eq!((status, code(&body)), (409, Some("fine_already_paid")));
}

#[test]
fn fines_health_is_public_and_checks_the_database() {
    let server = TestServer::start(ServerConfig::app());
    let (status, body) = server.call("GET", "/api/fines/health", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service"], "fines-service");
}
