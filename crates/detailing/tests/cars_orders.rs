//! car-service and order-service end to end: the real binary, the real components, a fresh
//! PostgreSQL database per test.

mod common;

use common::{manifest_with, psql_db, Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

fn post(server: &TestServer, who: &Actor, path: &str, body: &Value) -> (u16, Value) {
    server.call("POST", path, who.token(), Some(body))
}

fn get(server: &TestServer, who: &Actor, path: &str) -> (u16, Value) {
    server.call("GET", path, who.token(), None)
}

fn new_car(owner: &Actor, vin: &str) -> Value {
    json!({
        "owner_id": owner.id.to_string(),
        "license_plate": "А123БВ799",
        "vin": vin,
        "make": "Toyota",
        "model": "Camry",
        "year": 2020
    })
}

fn create_car(server: &TestServer, owner: &Actor, vin: &str) -> Value {
    let (status, car) = post(server, owner, "/api/cars", &new_car(owner, vin));
    assert_eq!(status, 201, "{car}\n{}", server.log());
    car
}

fn order_for(car_id: &str) -> Value {
    json!({ "car_id": car_id, "desired_time": common::next_slot(), "description": "Full detailing" })
}

#[test]
fn create_a_car_then_order_it_then_read_both() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let car = create_car(&server, &me, "1HGBH41JXMN109186");
    assert_eq!(car["license_plate"], "А123БВ799");
    assert_eq!(car["vin"], "1HGBH41JXMN109186");
    assert_eq!(car["owner_id"], me.id.to_string());
    let id = car["id"].as_str().unwrap();
    assert_eq!(
        get(&server, &me, &format!("/api/cars/{id}")),
        (200, car.clone())
    );

    let (status, order) = post(&server, &me, "/api/orders", &order_for(id));
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["status"], "created");
    assert_eq!(order["car_id"], car["id"]);
    assert_eq!(order["user_id"], car["owner_id"]);
    let order_id = order["id"].as_str().unwrap();
    assert_eq!(
        get(&server, &me, &format!("/api/orders/{order_id}")),
        (200, order)
    );
}

#[test]
fn create_order_returns_404_when_car_does_not_exist() {
    let server = TestServer::start(ServerConfig::app());
    let missing = uuid::Uuid::new_v4().to_string();
    let (status, body) = post(
        &server,
        &server.customer(),
        "/api/orders",
        &order_for(&missing),
    );
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "car_not_found");
    assert_eq!(
        psql_db(&server.db, "SELECT count(*) FROM orders.orders"),
        "0"
    );
}

#[test]
fn invalid_car_fields_are_all_reported_with_422() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let (status, body) = post(
        &server,
        &me,
        "/api/cars",
        &json!({"owner_id": "nope", "license_plate": "", "vin": "IOQ", "make": "", "model": "M", "year": 1500}),
    );
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    for field in ["owner_id", "license_plate", "vin", "make", "year"] {
        assert!(fields.contains(&field), "{field} missing in {body}");
    }
    let res = server
        .client()
        .post(server.url("/api/cars"))
        .bearer_auth(&me.token)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().unwrap()["error"]["code"],
        "malformed_json"
    );
}

#[test]
fn duplicate_vin_is_409() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other) = (server.customer(), server.customer());
    create_car(&server, &me, "WVWZZZ1JZXW000001");
    // Another user cannot register the same VIN either.
    let (status, body) = post(
        &server,
        &other,
        "/api/cars",
        &new_car(&other, "wvwzzz1jzxw000001"),
    );
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "duplicate_vin");
    assert_eq!(psql_db(&server.db, "SELECT count(*) FROM cars.cars"), "1");
}

#[test]
fn order_is_503_when_car_service_is_unroutable() {
    if common::we_do_better(common::UNROUTABLE_CHAINING) {
        return;
    }
    let config = ServerConfig::app().env(
        "SPIN_VARIABLE_CAR_SERVICE_URL",
        "http://nosuch.spin.internal",
    );
    let server = TestServer::start(config);
    let (status, body) = post(
        &server,
        &server.customer(),
        "/api/orders",
        &order_for(&uuid::Uuid::new_v4().to_string()),
    );
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "car_service_unavailable");
}

#[test]
fn order_is_502_when_car_service_fails() {
    // The probe stands in for car-service and answers 500 to every /api/... call. A private
    // route makes it reachable by chaining only: Spin chains only to a component that has an
    // HTTP trigger.
    let probe = common::wasm_dir().join("probe.wasm");
    let manifest = manifest_with(&format!(
        "[[trigger.http]]\nroute = {{ private = true }}\ncomponent = \"probe\"\n\
         [component.probe]\nsource = \"{}\"\n",
        probe.display()
    ));
    let config = ServerConfig {
        manifest,
        env: vec![(
            "SPIN_VARIABLE_CAR_SERVICE_URL".into(),
            "http://probe.spin.internal".into(),
        )],
        args: vec!["--no-relay".into()],
    };
    let server = TestServer::start(config);
    let (status, body) = post(
        &server,
        &server.customer(),
        "/api/orders",
        &order_for(&uuid::Uuid::new_v4().to_string()),
    );
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "car_service_failed");
}

#[test]
fn health_routes_check_the_database() {
    let server = TestServer::start(ServerConfig::app());
    // Health is public: no token.
    for path in [
        "/api/users/health",
        "/api/cars/health",
        "/api/orders/health",
    ] {
        assert_eq!(server.call("GET", path, None, None).0, 200, "{path}");
    }
}

#[test]
fn cars_and_orders_survive_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let car = create_car(&server, &me, "JH4KA8260MC000002");
    let (_, order) = post(
        &server,
        &me,
        "/api/orders",
        &order_for(car["id"].as_str().unwrap()),
    );
    server.restart();
    let car_path = format!("/api/cars/{}", car["id"].as_str().unwrap());
    assert_eq!(get(&server, &me, &car_path), (200, car));
    let order_path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    assert_eq!(get(&server, &me, &order_path), (200, order));
}

#[test]
fn migrations_are_safe_twice_and_from_two_processes_at_once() {
    let db = common::TestDb::create();
    let run = |db_url: String| {
        std::thread::spawn(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_detailing"))
                .arg("--manifest")
                .arg(common::repo_root().join("spin.toml"))
                .arg("migrate")
                .env("SPIN_VARIABLE_POSTGRES_URL", db_url)
                // Migrating needs the database and nothing else: no secret is set here.
                .env_remove("SPIN_VARIABLE_JWT_SECRET")
                .output()
                .unwrap()
        })
    };
    let (a, b) = (run(db.url()), run(db.url()));
    for out in [a.join().unwrap(), b.join().unwrap()] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let again = run(db.url()).join().unwrap();
    assert!(again.status.success());
    let files = std::fs::read_dir(common::repo_root().join("migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count();
    assert_eq!(
        psql_db(&db, "SELECT count(*) FROM public.schema_migrations"),
        files.to_string()
    );
}

fn set_status(server: &TestServer, who: &Actor, order: &Value, status: &str) -> (u16, Value) {
    let path = format!("/api/orders/{}/status", order["id"].as_str().unwrap());
    server.call(
        "PATCH",
        &path,
        who.token(),
        Some(&json!({ "status": status })),
    )
}

#[test]
fn staff_move_an_order_through_its_lifecycle_and_owners_may_only_cancel() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let car = create_car(&server, &me, "XTA210930V0000100");
    let car_id = car["id"].as_str().unwrap();
    let (_, order) = post(&server, &me, "/api/orders", &order_for(car_id));

    let (status, body) = set_status(&server, &me, &order, "confirmed");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("staff_only"))
    );
    let (status, body) = set_status(&server, &other, &order, "cancelled");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("order_not_found"))
    );
    let (status, body) = set_status(&server, &staff, &order, "completed");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("illegal_status_change"))
    );
    assert_eq!(
        body["error"]["message"],
        "an order that is created cannot become completed"
    );
    let (status, body) = set_status(&server, &staff, &order, "finished");
    assert_eq!(
        (status, body["error"]["fields"][0]["field"].as_str()),
        (422, Some("status"))
    );

    for next in ["confirmed", "in_progress", "completed"] {
        let (status, body) = set_status(&server, &staff, &order, next);
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some(next)),
            "{body}"
        );
    }
    let (status, body) = set_status(&server, &me, &order, "cancelled");
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("illegal_status_change"))
    );

    let (_, fresh) = post(&server, &me, "/api/orders", &order_for(car_id));
    let (status, body) = set_status(&server, &me, &fresh, "cancelled");
    assert_eq!((status, body["status"].as_str()), (200, Some("cancelled")));
    let path = format!("/api/orders/{}", fresh["id"].as_str().unwrap());
    assert_eq!(get(&server, &me, &path).1["status"], "cancelled");
}

#[test]
fn concurrent_status_changes_apply_once() {
    let server = TestServer::start(ServerConfig::app());
    let (me, staff) = (server.customer(), server.staff());
    let car = create_car(&server, &me, "XTA210930V0000101");
    let (_, order) = post(
        &server,
        &me,
        "/api/orders",
        &order_for(car["id"].as_str().unwrap()),
    );
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| set_status(&server, &staff, &order, "confirmed").0))
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
fn order_lists_are_the_callers_own_paged_newest_first_and_staff_see_all() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let my_car = create_car(&server, &me, "XTA210930V0000102");
    let other_car = create_car(&server, &other, "XTA210930V0000103");
    let mut mine = Vec::new();
    for _ in 0..5 {
        let (_, order) = post(
            &server,
            &me,
            "/api/orders",
            &order_for(my_car["id"].as_str().unwrap()),
        );
        mine.push(order["id"].as_str().unwrap().to_owned());
    }
    let (_, theirs) = post(
        &server,
        &other,
        "/api/orders",
        &order_for(other_car["id"].as_str().unwrap()),
    );

    // Pages of 2 walk my five orders newest first, each once.
    let mut seen = Vec::new();
    let mut path = "/api/orders?limit=2".to_owned();
    loop {
        let (status, page) = get(&server, &me, &path);
        assert_eq!(status, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|o| o["id"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/orders?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    mine.reverse();
    assert_eq!(seen, mine);

    let (_, all) = get(&server, &staff, "/api/orders?limit=100");
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
    let (_, filtered) = get(
        &server,
        &staff,
        &format!("/api/orders?user_id={}", other.id),
    );
    assert_eq!(filtered["items"].as_array().unwrap().len(), 1);
    assert_eq!(filtered["items"][0]["id"], theirs["id"]);
    // A customer's user_id filter cannot widen the view.
    let (_, still_mine) = get(&server, &other, &format!("/api/orders?user_id={}", me.id));
    assert_eq!(still_mine["items"].as_array().unwrap().len(), 1);

    let (status, body) = get(&server, &me, "/api/orders?limit=0&cursor=x");
    assert_eq!(status, 422);
    assert_eq!(body["error"]["fields"].as_array().unwrap().len(), 2);
    let (_, empty) = get(
        &server,
        &staff,
        &format!("/api/orders?user_id={}", uuid::Uuid::new_v4()),
    );
    assert_eq!(empty, json!({"items": [], "next_cursor": null}));
}

#[test]
fn car_lists_are_the_callers_own_and_staff_see_all() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let first = create_car(&server, &me, "XTA210930V0000110");
    let second = create_car(&server, &me, "XTA210930V0000111");
    create_car(&server, &other, "XTA210930V0000112");
    let (status, mine) = get(&server, &me, "/api/cars");
    assert_eq!(status, 200);
    assert_eq!(mine, json!({"items": [second, first], "next_cursor": null}));
    let (_, page) = get(&server, &me, "/api/cars?limit=1");
    assert_eq!(page["items"], json!([second]));
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = get(&server, &me, &format!("/api/cars?limit=1&cursor={cursor}"));
    assert_eq!(next, json!({"items": [first], "next_cursor": null}));
    assert_eq!(
        get(&server, &staff, "/api/cars").1["items"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let (_, theirs) = get(&server, &staff, &format!("/api/cars?owner_id={}", other.id));
    assert_eq!(theirs["items"].as_array().unwrap().len(), 1);
}

#[test]
fn a_completed_order_gets_one_review_from_its_owner() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let car = create_car(&server, &me, "XTA210930V0000120");
    let (_, order) = post(
        &server,
        &me,
        "/api/orders",
        &order_for(car["id"].as_str().unwrap()),
    );
    let review = json!({"order_id": order["id"], "rating": 5, "comment": "Как новая"});

    let (status, body) = post(&server, &me, "/api/orders/review", &review);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("order_not_completed"))
    );
    for next in ["confirmed", "in_progress", "completed"] {
        assert_eq!(set_status(&server, &staff, &order, next).0, 200);
    }
    for who in [&other, &staff] {
        let (status, body) = post(&server, who, "/api/orders/review", &review);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("order_not_found"))
        );
    }
    let (status, body) = post(
        &server,
        &me,
        "/api/orders/review",
        &json!({"order_id": order["id"], "rating": 6}),
    );
    assert_eq!(
        (status, body["error"]["fields"][0]["field"].as_str()),
        (422, Some("rating"))
    );
    let (status, saved) = post(&server, &me, "/api/orders/review", &review);
    assert_eq!(status, 201, "{saved}");
    assert_eq!(
        (saved["rating"].as_i64(), saved["comment"].as_str()),
        (Some(5), Some("Как новая"))
    );
    let (status, body) = post(&server, &me, "/api/orders/review", &review);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("already_reviewed"))
    );
}

#[test]
fn desired_time_must_be_a_future_half_hour_slot() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let car = create_car(&server, &me, "XTA210930V0000121");
    let id = car["id"].as_str().unwrap();
    // A time that has passed is valid as written: it conflicts with the clock (409).
    let body = json!({"car_id": id, "desired_time": "2024-12-20T10:00:00Z", "description": "ТО"});
    let (status, answer) = post(&server, &me, "/api/orders", &body);
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (409, Some("desired_time_passed")),
        "{answer}"
    );
    assert_eq!(
        answer["error"]["message"],
        "desired_time must be in the future: 2024-12-20T10:00:00Z has passed"
    );
    // Off the half-hour grid is what the document's pattern refuses (422).
    let body = json!({"car_id": id, "desired_time": "2030-12-20T10:15:00Z", "description": "ТО"});
    let (status, answer) = post(&server, &me, "/api/orders", &body);
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["field"], "desired_time");
}

#[test]
fn car_documents_with_and_without_a_scan_belong_to_the_cars_owner() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let car = create_car(&server, &me, "XTA210930V0000130");
    let path = format!("/api/cars/{}/documents", car["id"].as_str().unwrap());
    let insurance = json!({"kind": "insurance", "number": "XXX 0123456789",
                           "issued_at": "2026-01-10", "expires_at": "2027-01-09"});
    let (status, policy) = post(&server, &me, &path, &insurance);
    assert_eq!(status, 201, "{policy}");
    assert_eq!(policy["file"], Value::Null);
    assert_eq!(policy["expires_at"], "2027-01-09");

    let scan = b"%PDF-1.4 registration certificate";
    let registration = json!({"kind": "registration", "number": "99 12 345678", "issued_at": "2021-05-01",
        "file": {"name": "sts.pdf", "content_type": "application/pdf",
                 "content_base64": base64_encode(scan)}});
    let (status, certificate) = post(&server, &me, &path, &registration);
    assert_eq!(status, 201, "{certificate}");
    assert_eq!(
        certificate["file"],
        json!({"name": "sts.pdf", "content_type": "application/pdf", "size_bytes": scan.len()})
    );

    let (status, list) = get(&server, &me, &path);
    assert_eq!(
        (status, list),
        (200, json!({"items": [policy.clone(), certificate.clone()]}))
    );
    assert_eq!(get(&server, &staff, &path).0, 200);
    let (status, body) = get(&server, &other, &path);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("car_not_found"))
    );
    assert_eq!(post(&server, &other, &path, &insurance).0, 404);

    let file_path = format!("{path}/{}/file", certificate["id"].as_str().unwrap());
    let response = server
        .client()
        .get(server.url(&file_path))
        .bearer_auth(&me.token)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert_eq!(response.bytes().unwrap().as_ref(), scan);
    let (status, body) = get(
        &server,
        &me,
        &format!("{path}/{}/file", policy["id"].as_str().unwrap()),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("no_scan"))
    );

    let (status, body) = post(
        &server,
        &me,
        &path,
        &json!({"kind": "passport", "number": "1", "issued_at": "2999-01-01"}),
    );
    assert_eq!(status, 422);
    assert_eq!(body["error"]["fields"][0]["field"], "kind");
    // Well-formed, but issued in the future: the dates conflict with today (409).
    let (status, body) = post(
        &server,
        &me,
        &path,
        &json!({"kind": "inspection", "number": "1", "issued_at": "2999-01-01"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("document_dates_conflict"))
    );
}

fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
