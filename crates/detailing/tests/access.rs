//! Who may call what, end to end: the route table walked without a valid token, and the
//! ownership matrix (user A, user B, staff) across the services that exist.

mod common;

use common::{mint_token, trigger_routes, Actor, ServerConfig, TestServer, METHODS, SUFFIXES};
use serde_json::{json, Value};

/// Endpoints anyone may call, as `METHOD path-after-the-prefix` per route prefix.
const PUBLIC: &[(&str, &str)] = &[
    ("POST", "/api/users/register"),
    ("POST", "/api/users/login"),
    // A refresh token in the body is their credential.
    ("POST", "/api/users/refresh"),
    ("POST", "/api/users/logout"),
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/"),
];

fn is_public(method: &str, path: &str) -> bool {
    PUBLIC.contains(&(method, path))
        || (method == "GET" && (path.ends_with("/health") || path.ends_with("/health/live")))
}

#[test]
fn no_endpoint_but_the_public_ones_answers_2xx_without_a_valid_token() {
    let server = TestServer::start(ServerConfig::app());
    // Real resources, so a missing check would find something to return.
    let owner = server.register("owner@example.com");
    let (_, car) = create_car(&server, &owner, &car_body(None, "XTA210930V0000009"));
    let (_, order) = server.call(
        "POST",
        "/api/orders",
        owner.token(),
        Some(&order_body(&car)),
    );
    let ids = [
        owner.id.to_string(),
        car["id"].as_str().unwrap().to_owned(),
        order["id"].as_str().unwrap().to_owned(),
    ];
    let bad_tokens = [
        None,
        Some("garbage".to_owned()),
        // The owner's own identity, expired.
        Some(mint_token(owner.id, auth::Role::Staff, 7200, 3600)),
        // Signed with another key.
        Some(auth::token::issue(
            &auth::Secret::new(b"not-the-servers-key-but-32-bytes-long").unwrap(),
            &auth::Claims::new(owner.id, auth::Role::Staff, 1_700_000_000, 1 << 40),
        )),
    ];
    let routes = trigger_routes();
    assert!(routes.len() >= 3, "{routes:?}");
    let mut walked = 0;
    for route in &routes {
        let Some(prefix) = route.strip_suffix("/...") else {
            // An exact route (docs-service's /openapi.json) serves that path only.
            for method in METHODS {
                if !is_public(method, route) {
                    let (status, answer) = server.call(method, route, None, None);
                    assert_eq!(status, 405, "{method} {route}: {answer}");
                }
            }
            continue;
        };
        let paths: Vec<String> = SUFFIXES
            .iter()
            .flat_map(|suffix| {
                let ids: Vec<&str> = if suffix.contains("{id}") {
                    ids.iter().map(String::as_str).collect()
                } else {
                    vec![""]
                };
                ids.into_iter()
                    .map(move |id| format!("{prefix}{}", suffix.replace("{id}", id)))
            })
            .collect();
        for path in &paths {
            for method in METHODS {
                if is_public(method, path) {
                    continue;
                }
                for token in &bad_tokens {
                    let (status, answer) =
                        server.call(method, path, token.as_deref(), Some(&order_body(&car)));
                    // 401 where an endpoint exists; 404/405 where none does. A 400 or 422
                    // would mean the body was read before the caller was known.
                    assert!(
                        [401, 404, 405].contains(&status),
                        "{method} {path} with {token:?} answered {status}: {answer}"
                    );
                    walked += 1;
                }
            }
        }
    }
    assert!(walked > 1000, "walked only {walked} requests");
}

#[test]
fn every_known_protected_endpoint_answers_401_without_a_token() {
    let server = TestServer::start(ServerConfig::app());
    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        ("GET", "/api/users/me".to_owned()),
        ("POST", "/api/users/logout-all".to_owned()),
        ("POST", "/api/cars".to_owned()),
        ("GET", format!("/api/cars/{id}")),
        ("POST", "/api/orders".to_owned()),
        ("GET", "/api/orders".to_owned()),
        ("GET", format!("/api/orders/{id}")),
        ("PATCH", format!("/api/orders/{id}/status")),
    ] {
        let (status, body) = server.call(method, &path, None, Some(&json!({})));
        assert_eq!(status, 401, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "missing_token");
    }
}

fn car_body(owner: Option<uuid::Uuid>, vin: &str) -> Value {
    let mut car =
        json!({"license_plate":"А123БВ799","vin":vin,"make":"Lada","model":"Vesta","year":2021});
    if let Some(owner) = owner {
        car["owner_id"] = json!(owner.to_string());
    }
    car
}

fn create_car(server: &TestServer, who: &Actor, body: &Value) -> (u16, Value) {
    server.call("POST", "/api/cars", who.token(), Some(body))
}

fn order_body(car: &Value) -> Value {
    json!({"car_id": car["id"], "desired_time": common::next_slot(), "description": "ТО"})
}

#[test]
fn ownership_matrix_for_cars_and_orders() {
    let server = TestServer::start(ServerConfig::app());
    let a = server.register("a@example.com");
    let b = server.register("b@example.com");
    let staff = server.staff();

    // Registering cars: for yourself (named or not), never for someone else; staff for anyone.
    let (status, car_a) = create_car(&server, &a, &car_body(Some(a.id), "XTA210930V0000001"));
    assert_eq!(status, 201, "{car_a}");
    let (status, unnamed) = create_car(&server, &a, &car_body(None, "XTA210930V0000002"));
    assert_eq!(
        (status, unnamed["owner_id"].as_str()),
        (201, Some(a.id.to_string().as_str()))
    );
    let (status, body) = create_car(&server, &a, &car_body(Some(b.id), "XTA210930V0000003"));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("foreign_owner"))
    );
    let (status, car_b) = create_car(&server, &staff, &car_body(Some(b.id), "XTA210930V0000004"));
    assert_eq!(
        (status, car_b["owner_id"].as_str()),
        (201, Some(b.id.to_string().as_str()))
    );

    // Reading a car: its owner and staff; anyone else gets the same 404 as for no car.
    let car_path = format!("/api/cars/{}", car_a["id"].as_str().unwrap());
    assert_eq!(
        server.call("GET", &car_path, a.token(), None),
        (200, car_a.clone())
    );
    assert_eq!(
        server.call("GET", &car_path, staff.token(), None),
        (200, car_a.clone())
    );
    let (status, body) = server.call("GET", &car_path, b.token(), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("car_not_found"))
    );
    let car_id = car_a["id"].as_str().unwrap();
    assert_eq!(body["error"]["message"], format!("no car with id {car_id}"));

    // Booking: only your own car (the check crosses to car-service with your token).
    let (status, body) = server.call("POST", "/api/orders", b.token(), Some(&order_body(&car_a)));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("car_not_found"))
    );
    let (status, order_a) =
        server.call("POST", "/api/orders", a.token(), Some(&order_body(&car_a)));
    assert_eq!(
        (status, order_a["user_id"].as_str()),
        (201, Some(a.id.to_string().as_str()))
    );
    // Staff books for the car's owner.
    let (status, order_b) = server.call(
        "POST",
        "/api/orders",
        staff.token(),
        Some(&order_body(&car_b)),
    );
    assert_eq!(
        (status, order_b["user_id"].as_str()),
        (201, Some(b.id.to_string().as_str()))
    );

    // Reading an order: its owner and staff; anyone else 404.
    let order_path = format!("/api/orders/{}", order_a["id"].as_str().unwrap());
    assert_eq!(
        server.call("GET", &order_path, a.token(), None),
        (200, order_a.clone())
    );
    assert_eq!(
        server.call("GET", &order_path, staff.token(), None),
        (200, order_a.clone())
    );
    let (status, body) = server.call("GET", &order_path, b.token(), None);
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("order_not_found"))
    );
    let order_b_path = format!("/api/orders/{}", order_b["id"].as_str().unwrap());
    assert_eq!(server.call("GET", &order_b_path, b.token(), None).0, 200);
    assert_eq!(server.call("GET", &order_b_path, a.token(), None).0, 404);

    // Profiles: each token sees its own.
    for who in [&a, &b] {
        let (status, me) = server.call("GET", "/api/users/me", who.token(), None);
        assert_eq!(
            (status, me["id"].as_str()),
            (200, Some(who.id.to_string().as_str()))
        );
    }
}
