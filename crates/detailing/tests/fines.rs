//! fines-service end to end: a plate counts as the caller's only with the registration
//! certificate its fines were issued against (car-service chaining with the caller's token);
//! the demonstration fines found that way, read one by one, paid through payment-service exactly
//! once (also concurrently), refusals passed on, and kept paid across a restart.

mod common;

use std::collections::BTreeSet;

use common::{psql_db, Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

/// The README's example car; migrations/0007_fines.sql seeds four fines on it, and
/// 0012_fines_certificates.sql records the certificate they were issued against.
const SEED_PLATE: &str = "А123БВ799";
const SEED_CERTIFICATE: &str = "99 АА 123456";
const OTHER_PLATE: &str = "К456МН178";
const OTHER_CERTIFICATE: &str = "78 09 456178";

fn get(server: &TestServer, who: &Actor, path: &str) -> (u16, Value) {
    server.call("GET", path, who.token(), None)
}

/// `POST /api/fines/{id}/pay` with no body at all, as clients did before payment methods.
fn pay(server: &TestServer, who: &Actor, fine_id: &str) -> (u16, Value) {
    server.call(
        "POST",
        &format!("/api/fines/{fine_id}/pay"),
        who.token(),
        None,
    )
}

fn pay_with(server: &TestServer, who: &Actor, fine_id: &str, body: &Value) -> (u16, Value) {
    server.call(
        "POST",
        &format!("/api/fines/{fine_id}/pay"),
        who.token(),
        Some(body),
    )
}

/// Registers a car and returns its id.
fn register_car(server: &TestServer, owner: &Actor, plate: &str, vin: &str) -> String {
    let body =
        json!({"license_plate": plate, "vin": vin, "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", owner.token(), Some(&body));
    assert_eq!(status, 201, "{car}\n{}", server.log());
    car["id"].as_str().unwrap().to_owned()
}

/// Attaches a document of `kind` numbered `number` to the car; its answer.
fn add_document(
    server: &TestServer,
    owner: &Actor,
    car_id: &str,
    kind: &str,
    number: &str,
) -> (u16, Value) {
    let body = json!({"kind": kind, "number": number, "issued_at": "2021-05-01"});
    server.call(
        "POST",
        &format!("/api/cars/{car_id}/documents"),
        owner.token(),
        Some(&body),
    )
}

/// A car with its registration certificate: the plate is then proven the owner's.
fn register_proven_car(
    server: &TestServer,
    owner: &Actor,
    plate: &str,
    vin: &str,
    certificate: &str,
) -> String {
    let car_id = register_car(server, owner, plate, vin);
    let (status, document) = add_document(server, owner, &car_id, "registration", certificate);
    assert_eq!(status, 201, "{document}\n{}", server.log());
    car_id
}

/// `who` registers the demonstration plate's car with its registration certificate.
fn prove_demo_car(server: &TestServer, who: &Actor) -> String {
    register_proven_car(
        server,
        who,
        SEED_PLATE,
        "XTA210930V0123456",
        SEED_CERTIFICATE,
    )
}

/// `who` registers the second seeded plate's car with its registration certificate.
fn prove_other_car(server: &TestServer, who: &Actor) -> String {
    register_proven_car(
        server,
        who,
        OTHER_PLATE,
        "XTA210930V0123457",
        OTHER_CERTIFICATE,
    )
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

/// One of the demonstration fines on `plate`, read from the table (no API call needed to know it).
fn a_seeded_fine(server: &TestServer, plate: &str) -> String {
    psql_db(
        &server.db,
        &format!(
            "SELECT id FROM fines.fines WHERE license_plate = '{plate}' ORDER BY issued_at LIMIT 1"
        ),
    )
}

fn paid_in_db(server: &TestServer, fine_id: &str) -> bool {
    psql_db(
        &server.db,
        &format!("SELECT paid_at IS NOT NULL FROM fines.fines WHERE id = '{fine_id}'"),
    ) == "t"
}

/// The caller's payments of fine `fine_id`, as payment-service lists them.
fn payments_of_fine(server: &TestServer, who: &Actor, fine_id: &str) -> Vec<Value> {
    let (status, page) = get(server, who, "/api/payments?limit=100");
    assert_eq!(status, 200, "{page}\n{}", server.log());
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|payment| payment["fine_id"] == fine_id)
        .cloned()
        .collect()
}

fn code(body: &Value) -> Option<&str> {
    body["error"]["code"].as_str()
}

#[test]
fn a_plate_without_a_registration_certificate_shows_no_fines_and_pays_none() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let car = register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    // Another paper with the certificate's number proves nothing: only a registration does.
    let (status, _) = add_document(&server, &me, &car, "insurance", SEED_CERTIFICATE);
    assert_eq!(status, 201);

    assert_eq!(check(&server, &me, ""), (Vec::new(), 0));
    let (status, body) = get(
        &server,
        &me,
        &format!("/api/fines/check?license_plate={SEED_PLATE}"),
    );
    assert_eq!(
        (status, code(&body)),
        (404, Some("license_plate_not_found")),
        "{body}"
    );
    let fine = a_seeded_fine(&server, SEED_PLATE);
    let (status, body) = get(&server, &me, &format!("/api/fines/{fine}"));
    assert_eq!(
        (status, code(&body)),
        (404, Some("fine_not_found")),
        "{body}"
    );
    let (status, body) = pay(&server, &me, &fine);
    assert_eq!(
        (status, code(&body)),
        (404, Some("fine_not_found")),
        "{body}"
    );
    assert!(!paid_in_db(&server, &fine));
}

#[test]
fn a_wrong_certificate_number_shows_no_fines_and_pays_none() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let car = register_proven_car(
        &server,
        &me,
        SEED_PLATE,
        "XTA210930V0123456",
        "99 АА 654321",
    );
    // Another seeded plate's certificate on this plate proves neither.
    let (status, _) = add_document(&server, &me, &car, "registration", "77 ОО 777777");
    assert_eq!(status, 201);

    assert_eq!(check(&server, &me, ""), (Vec::new(), 0));
    let (status, body) = get(
        &server,
        &me,
        &format!("/api/fines/check?license_plate={SEED_PLATE}"),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["items"], json!([]));
    let fine = a_seeded_fine(&server, SEED_PLATE);
    assert_eq!(get(&server, &me, &format!("/api/fines/{fine}")).0, 404);
    let (status, body) = pay(&server, &me, &fine);
    assert_eq!(
        (status, code(&body)),
        (404, Some("fine_not_found")),
        "{body}"
    );
    assert!(!paid_in_db(&server, &fine));
}

#[test]
fn the_right_certificate_shows_the_plates_four_fines_and_each_one() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    // Typed with Latin look-alikes and without spaces: stored as the certificate reads.
    let car = register_car(&server, &me, SEED_PLATE, "XTA210930V0123456");
    let (status, document) = add_document(&server, &me, &car, "registration", "99aa123456");
    assert_eq!(status, 201, "{document}");
    assert_eq!(document["number"], SEED_CERTIFICATE);

    let (items, total) = check(&server, &me, "");
    let (seeded, seeded_total) = unpaid_in_db(&server, SEED_PLATE);
    assert_eq!(seeded.len(), 4);
    assert_eq!(ids(&items), seeded);
    assert_eq!((total, seeded_total), (975_000, 975_000));
    for fine in &items {
        assert_eq!(fine["license_plate"], SEED_PLATE);
        assert_eq!(fine["paid"], false);
        assert_eq!(fine["paid_at"], Value::Null);
        assert_eq!(fine["payment_id"], Value::Null);
        assert!(fine.get("certificate_number").is_none(), "{fine}");
        assert!(kopecks(&fine["amount"]) > 0);
        assert!(!fine["reason"].as_str().unwrap().is_empty());
    }
    let issued: Vec<&str> = items
        .iter()
        .map(|f| f["issued_at"].as_str().unwrap())
        .collect();
    assert!(issued.windows(2).all(|w| w[0] >= w[1]), "{issued:?}");
    assert_eq!(issued[0], "2025-12-02T04:58:00Z");

    for fine in &items {
        let id = fine["id"].as_str().unwrap();
        assert_eq!(
            get(&server, &me, &format!("/api/fines/{id}")),
            (200, fine.clone())
        );
    }
    for missing in ["not-a-uuid", &uuid::Uuid::new_v4().to_string()] {
        let (status, body) = get(&server, &me, &format!("/api/fines/{missing}"));
        assert_eq!((status, code(&body)), (404, Some("fine_not_found")));
    }
}

#[test]
fn registration_certificates_are_checked_and_listed_for_their_owner_only() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let car = register_proven_car(
        &server,
        &me,
        SEED_PLATE,
        "XTA210930V0123456",
        "99 аа 123 456",
    );
    let (status, body) = add_document(&server, &me, &car, "registration", "XXX 0123456789");
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "number");

    let (status, page) = get(&server, &me, "/api/cars/registrations");
    assert_eq!(status, 200, "{page}");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["car_id"], car.as_str());
    assert_eq!(items[0]["license_plate"], SEED_PLATE);
    assert_eq!(items[0]["certificate_number"], SEED_CERTIFICATE);
    assert_eq!(page["next_cursor"], Value::Null);

    let (status, theirs) = get(&server, &other, "/api/cars/registrations");
    assert_eq!((status, theirs["items"].clone()), (200, json!([])));
    // A customer's owner_id is ignored: they only ever see their own.
    let path = format!("/api/cars/registrations?owner_id={}", me.id);
    assert_eq!(get(&server, &other, &path).1["items"], json!([]));
    assert_eq!(get(&server, &staff, &path).1["items"], page["items"]);
}

#[test]
fn paying_goes_through_payment_service_once() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    prove_demo_car(&server, &me);
    let (items, total) = check(&server, &me, "");
    let fine = &items[0];
    let id = fine["id"].as_str().unwrap();

    let (status, paid) = pay(&server, &me, id);
    assert_eq!(status, 200, "{paid}\n{}", server.log());
    assert_eq!(paid["id"], fine["id"]);
    assert_eq!(paid["amount"], fine["amount"]);
    assert_eq!(paid["paid"], true);
    assert!(paid["paid_at"].as_str().unwrap().ends_with('Z'), "{paid}");
    let payment_id = paid["payment_id"]
        .as_str()
        .expect("a payment id")
        .to_owned();

    let payments = payments_of_fine(&server, &me, id);
    assert_eq!(payments.len(), 1, "{payments:?}");
    assert_eq!(payments[0]["id"], payment_id.as_str());
    assert_eq!(payments[0]["amount"], fine["amount"]);
    assert_eq!(payments[0]["status"], "succeeded");
    assert_eq!(payments[0]["payment_method"], "card");
    assert_eq!(
        get(&server, &me, &format!("/api/payments/{payment_id}")).0,
        200
    );

    let (status, again) = pay(&server, &me, id);
    assert_eq!((status, code(&again)), (409, Some("fine_already_paid")));
    assert_eq!(payments_of_fine(&server, &me, id).len(), 1);
    assert_eq!(
        get(&server, &me, &format!("/api/fines/{id}")),
        (200, paid.clone())
    );

    let (after, total_after) = check(&server, &me, "");
    assert_eq!(after.len(), items.len() - 1);
    assert!(!ids(&after).contains(id));
    assert_eq!(total_after, total - kopecks(&fine["amount"]));
    assert_eq!(
        psql_db(
            &server.db,
            &format!("SELECT paid_by || ' ' || payment_id FROM fines.fines WHERE id = '{id}'")
        ),
        format!("{} {payment_id}", me.id)
    );

    // The method comes from the body; a bad one is refused before anything is charged.
    let cash = items[1]["id"].as_str().unwrap();
    let (status, body) = pay_with(&server, &me, cash, &json!({"payment_method": "bitcoin"}));
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["fields"][0]["field"], "payment_method");
    assert!(payments_of_fine(&server, &me, cash).is_empty());
    let (status, paid) = pay_with(&server, &me, cash, &json!({"payment_method": "cash"}));
    assert_eq!(status, 200, "{paid}\n{}", server.log());
    assert_eq!(
        payments_of_fine(&server, &me, cash)[0]["payment_method"],
        "cash"
    );
}

#[test]
fn a_declined_payment_leaves_the_fine_unpaid_and_says_so() {
    let config = ServerConfig::app().env("SPIN_VARIABLE_PAYMENT_DECLINE", "true");
    let server = TestServer::start(config);
    let me = server.customer();
    prove_demo_car(&server, &me);
    let (items, _) = check(&server, &me, "");
    let id = items[0]["id"].as_str().unwrap();

    let (status, body) = pay(&server, &me, id);
    assert_eq!(
        (status, code(&body)),
        (402, Some("payment_declined")),
        "{body}\n{}",
        server.log()
    );
    assert!(!paid_in_db(&server, id));
    assert_eq!(check(&server, &me, "").0.len(), items.len());
    assert_eq!(
        get(&server, &me, &format!("/api/fines/{id}")).1["paid"],
        false
    );
}

#[test]
fn pay_is_503_and_the_fine_unpaid_when_payment_service_is_unroutable() {
    if common::we_do_better(common::UNROUTABLE_CHAINING) {
        return;
    }
    let config = ServerConfig::app().env(
        "SPIN_VARIABLE_PAYMENT_SERVICE_URL",
        "http://nosuch.spin.internal",
    );
    let server = TestServer::start(config);
    let me = server.customer();
    prove_demo_car(&server, &me);
    let id = a_seeded_fine(&server, SEED_PLATE);
    let (status, body) = pay(&server, &me, &id);
    assert_eq!(
        (status, code(&body)),
        (503, Some("payment_service_unavailable")),
        "{body}"
    );
    assert!(!paid_in_db(&server, &id));
}

#[test]
fn another_customer_sees_none_of_them_and_cannot_pay_them() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other) = (server.customer(), server.customer());
    prove_demo_car(&server, &me);
    let (mine, _) = check(&server, &me, "");

    let (theirs, total) = check(&server, &other, "");
    assert_eq!((theirs.len(), total), (0, 0));
    prove_other_car(&server, &other);
    let (theirs, _) = check(&server, &other, "");
    assert_eq!(ids(&theirs), unpaid_in_db(&server, OTHER_PLATE).0);
    assert!(ids(&theirs).is_disjoint(&ids(&mine)));

    let id = mine[0]["id"].as_str().unwrap();
    for (status, body) in [
        pay(&server, &other, id),
        get(&server, &other, &format!("/api/fines/{id}")),
    ] {
        assert_eq!(
            (status, code(&body)),
            (404, Some("fine_not_found")),
            "{body}"
        );
    }
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
    prove_demo_car(&server, &me);
    prove_other_car(&server, &me);

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
fn the_check_covers_every_proven_car_of_the_caller() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    prove_demo_car(&server, &me);
    prove_other_car(&server, &me);
    // Without its certificate, the third car's fines stay out.
    register_car(&server, &me, "О777ОО77", "XTA210930V0123458");
    let (items, total) = check(&server, &me, "");
    let (mut expected, seed_total) = unpaid_in_db(&server, SEED_PLATE);
    let (other, other_total) = unpaid_in_db(&server, OTHER_PLATE);
    expected.extend(other);
    assert_eq!(ids(&items), expected);
    assert_eq!(total, seed_total + other_total);
}

#[test]
fn the_check_follows_car_service_pages_past_the_first_hundred_certificates() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    // Attached first, so it is last in car-service's newest-first list: on page two.
    prove_demo_car(&server, &me);
    psql_db(
        &server.db,
        &format!(
            "WITH cars AS (\
               INSERT INTO cars.cars (owner_id, license_plate, vin, make, model, year) \
               SELECT '{}', 'Т' || i || 'ТТ77', 'XTA21093' || lpad(i::text, 9, '0'), \
                      'Lada', 'Vesta', 2021 \
               FROM generate_series(1, 100) AS i RETURNING id, vin) \
             INSERT INTO cars.documents (car_id, kind, number, issued_at) \
             SELECT id, 'registration', '77 ТТ ' || right(vin, 6), '2021-05-01' FROM cars",
            me.id
        ),
    );
    let (status, page) = get(&server, &me, "/api/cars/registrations?limit=100");
    assert_eq!(status, 200);
    assert!(page["next_cursor"].is_string(), "{page}");
    let (items, total) = check(&server, &me, "");
    assert_eq!(ids(&items), unpaid_in_db(&server, SEED_PLATE).0);
    assert_eq!(total, 975_000);
}

#[test]
fn staff_check_any_plate_and_pay_any_fine() {
    let server = TestServer::start(ServerConfig::app());
    let (customer, staff) = (server.customer(), server.staff());
    prove_demo_car(&server, &customer);

    let (items, total) = check(&server, &staff, "?license_plate=о777оо77");
    assert_eq!(ids(&items), unpaid_in_db(&server, "О777ОО77").0);
    assert_eq!(total, 450_000);
    // Staff own no car: everyone's cars are not "their cars".
    assert_eq!(check(&server, &staff, ""), (Vec::new(), 0));

    let (customers, _) = check(&server, &customer, "");
    let id = customers[0]["id"].as_str().unwrap();
    assert_eq!(
        get(&server, &staff, &format!("/api/fines/{id}")).1["id"],
        id
    );
    let (status, paid) = pay(&server, &staff, id);
    assert_eq!(
        (status, paid["paid"].as_bool()),
        (200, Some(true)),
        "{paid}\n{}",
        server.log()
    );
    assert!(paid["payment_id"].is_string(), "{paid}");
    let plate_fine = items[0]["id"].as_str().unwrap();
    assert_eq!(pay(&server, &staff, plate_fine).0, 200);
    assert_eq!(check(&server, &customer, "").0.len(), customers.len() - 1);
}

#[test]
fn concurrent_payments_of_one_fine_succeed_and_charge_exactly_once() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    prove_demo_car(&server, &me);
    let (items, _) = check(&server, &me, "");
    let id = items[0]["id"].as_str().unwrap();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| pay(&server, &me, id)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{answers:?}"
    );
    assert!(
        statuses.iter().all(|s| [200, 409].contains(s)),
        "{answers:?}"
    );
    assert_eq!(payments_of_fine(&server, &me, id).len(), 1);
}

#[test]
fn check_and_pay_are_503_when_car_service_is_unroutable() {
    if common::we_do_better(common::UNROUTABLE_CHAINING) {
        return;
    }
    let config = ServerConfig::app().env(
        "SPIN_VARIABLE_CAR_SERVICE_URL",
        "http://nosuch.spin.internal",
    );
    let server = TestServer::start(config);
    let (me, staff) = (server.customer(), server.staff());
    let (status, body) = get(&server, &me, "/api/fines/check");
    assert_eq!(status, 503, "{body}");
    assert_eq!(code(&body), Some("car_service_unavailable"));
    let id = a_seeded_fine(&server, SEED_PLATE);
    for (status, body) in [
        pay(&server, &me, &id),
        get(&server, &me, &format!("/api/fines/{id}")),
    ] {
        assert_eq!(
            (status, code(&body)),
            (503, Some("car_service_unavailable"))
        );
    }
    // Staff naming a plate need no car-service.
    let (items, _) = check(&server, &staff, &format!("?license_plate={SEED_PLATE}"));
    assert_eq!(items.len(), 4);
}

#[test]
fn a_paid_fine_stays_paid_after_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    prove_demo_car(&server, &me);
    let (items, _) = check(&server, &me, "");
    let id = items[0]["id"].as_str().unwrap().to_owned();
    let (status, paid) = pay(&server, &me, &id);
    assert_eq!(status, 200, "{paid}\n{}", server.log());

    server.restart();
    let (after, _) = check(&server, &me, "");
    assert_eq!(after.len(), items.len() - 1);
    assert!(!ids(&after).contains(&id));
    let (status, body) = pay(&server, &me, &id);
    assert_eq!((status, code(&body)), (409, Some("fine_already_paid")));
    assert_eq!(get(&server, &me, &format!("/api/fines/{id}")), (200, paid));
}

#[test]
fn fines_health_is_public_and_checks_the_database() {
    let server = TestServer::start(ServerConfig::app());
    let (status, body) = server.call("GET", "/api/fines/health", None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["service"], "fines-service");
}

#[test]
fn a_fine_paid_but_not_recorded_gets_its_payment_recorded_on_the_next_attempt() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    prove_demo_car(&server, &me);
    let id = a_seeded_fine(&server, SEED_PLATE);
    let (status, paid) = pay(&server, &me, &id);
    assert_eq!(status, 200, "{paid}\n{}", server.log());
    let payment_id = paid["payment_id"].as_str().unwrap().to_owned();
    // As if fines-service had lost payment-service's answer: the payment exists, the fine
    // does not know it.
    psql_db(
        &server.db,
        &format!(
            "UPDATE fines.fines SET paid_at = NULL, paid_by = NULL, payment_id = NULL \
             WHERE id = '{id}'"
        ),
    );
    assert!(!paid_in_db(&server, &id));
    let (status, again) = pay(&server, &me, &id);
    assert_eq!(status, 200, "{again}\n{}", server.log());
    assert_eq!(again["payment_id"], payment_id.as_str());
    assert!(paid_in_db(&server, &id));
    assert_eq!(payments_of_fine(&server, &me, &id).len(), 1, "charged once");
}
