//! The catalog, the cart and checkout into an order, end to end: cart-service, order-service
//! (prices read from cart-service's catalog) and car-service, chained in one host.

mod common;

use common::{psql_db, Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";
const POLISH: &str = "6b1f2c1e-0001-4000-8000-000000000003";
const TOWELS: &str = "6b1f2c1e-0002-4000-8000-000000000003";

fn add(server: &TestServer, who: &Actor, catalog_id: &str, quantity: Value) -> (u16, Value) {
    let body = json!({"catalog_id": catalog_id, "quantity": quantity});
    server.call("POST", "/api/cart/items", who.token(), Some(&body))
}

fn cart(server: &TestServer, who: &Actor) -> Value {
    let (status, cart) = server.call("GET", "/api/cart", who.token(), None);
    assert_eq!(status, 200, "{cart}");
    cart
}

fn car_for(server: &TestServer, who: &Actor, vin: &str) -> String {
    let body = json!({"license_plate": "А123БВ799", "vin": vin, "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", who.token(), Some(&body));
    assert_eq!(status, 201, "{car}");
    car["id"].as_str().unwrap().to_owned()
}

fn booking(car_id: &str) -> Value {
    json!({"car_id": car_id, "desired_time": "2030-12-20T10:30:00Z", "description": "ТО"})
}

#[test]
fn the_catalog_lists_services_with_durations_and_products_without() {
    let server = TestServer::start(ServerConfig::app());
    let (status, catalog) =
        server.call("GET", "/api/cart/catalog", server.customer().token(), None);
    assert_eq!(status, 200);
    let items = catalog["items"].as_array().unwrap();
    assert_eq!(items.len(), 12);
    let wash = items.iter().find(|i| i["id"] == WASH).unwrap();
    assert_eq!(
        wash,
        &json!({"id": WASH, "name": "Exterior hand wash", "kind": "service", "price": 1500.0, "duration_minutes": 45})
    );
    let towels = items.iter().find(|i| i["id"] == TOWELS).unwrap();
    assert_eq!(towels["kind"], "product");
    assert!(towels.get("duration_minutes").is_none());
}

#[test]
fn adding_an_item_twice_raises_its_quantity_and_totals_follow() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    assert_eq!(cart(&server, &me), json!({"items": [], "total": 0.0}));
    assert_eq!(add(&server, &me, WASH, json!(1)).0, 201);
    assert_eq!(add(&server, &me, TOWELS, json!(2)).0, 201);
    let (status, body) = add(&server, &me, WASH, Value::Null);
    assert_eq!(status, 201);
    let items = body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(
        (
            items[0]["catalog_id"].as_str(),
            items[0]["quantity"].as_i64()
        ),
        (Some(WASH), Some(2))
    );
    assert_eq!(items[0]["line_total"], 3000.0);
    assert_eq!(items[1]["line_total"], 900.0);
    assert_eq!(body["total"], 3900.0);
    assert_eq!(cart(&server, &me), body);

    // Another customer's cart is their own.
    assert_eq!(cart(&server, &server.customer())["items"], json!([]));

    // Removing a line; a line that is not in the caller's cart is 404.
    let line = items[1]["id"].as_str().unwrap();
    let (status, _) = server.call(
        "DELETE",
        &format!("/api/cart/items/{line}"),
        server.customer().token(),
        None,
    );
    assert_eq!(status, 404);
    let (status, after) = server.call(
        "DELETE",
        &format!("/api/cart/items/{line}"),
        me.token(),
        None,
    );
    assert_eq!((status, after["total"].as_f64()), (200, Some(3000.0)));
    let (status, body) = server.call(
        "DELETE",
        &format!("/api/cart/items/{line}"),
        me.token(),
        None,
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("cart_item_not_found"))
    );
}

#[test]
fn cart_items_are_validated_against_the_catalog_and_the_limit() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let (status, body) = add(&server, &me, &uuid::Uuid::new_v4().to_string(), json!(1));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("catalog_item_not_found"))
    );
    let (status, _) = add(&server, &me, WASH, json!(0));
    assert_eq!(status, 422);
    assert_eq!(add(&server, &me, WASH, json!(60)).0, 201);
    let (status, body) = add(&server, &me, WASH, json!(41));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("quantity_limit"))
    );
    assert_eq!(cart(&server, &me)["items"][0]["quantity"], 60);
}

#[test]
fn checkout_books_the_cart_at_todays_prices_and_empties_it() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let car = car_for(&server, &me, "XTA210930V0000201");
    add(&server, &me, WASH, json!(1));
    add(&server, &me, POLISH, json!(1));
    add(&server, &me, TOWELS, json!(3));
    let (status, order) = server.call(
        "POST",
        "/api/cart/checkout",
        me.token(),
        Some(&booking(&car)),
    );
    assert_eq!(status, 201, "{order}\n{}", server.log());
    assert_eq!(order["status"], "created");
    assert_eq!(order["user_id"], me.id.to_string());
    assert_eq!(order["items"].as_array().unwrap().len(), 3);
    assert_eq!(order["total"], 1500.0 + 12000.0 + 3.0 * 450.0);
    assert_eq!(cart(&server, &me), json!({"items": [], "total": 0.0}));

    // A later price change leaves the booked order alone.
    psql_db(
        &server.db,
        &format!("UPDATE cart.catalog SET price_kopecks = 999900 WHERE id = '{WASH}'"),
    );
    let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
    let (_, again) = server.call("GET", &path, me.token(), None);
    assert_eq!(again, order);
}

#[test]
fn a_refused_checkout_keeps_the_cart_and_passes_the_reason_on() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let (status, body) = server.call(
        "POST",
        "/api/cart/checkout",
        me.token(),
        Some(&booking(&uuid::Uuid::new_v4().to_string())),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("cart_empty"))
    );

    add(&server, &me, WASH, json!(2));
    let missing_car = uuid::Uuid::new_v4().to_string();
    let (status, body) = server.call(
        "POST",
        "/api/cart/checkout",
        me.token(),
        Some(&booking(&missing_car)),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("car_not_found"))
    );
    let car = car_for(&server, &me, "XTA210930V0000202");
    let mut past = booking(&car);
    past["desired_time"] = json!("2024-12-20T10:00:00Z");
    let (status, body) = server.call("POST", "/api/cart/checkout", me.token(), Some(&past));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("desired_time_passed")),
        "{body}"
    );
    assert_eq!(cart(&server, &me)["items"][0]["quantity"], 2);
    assert_eq!(
        psql_db(&server.db, "SELECT count(*) FROM orders.orders"),
        "0"
    );
}

#[test]
fn orders_price_items_from_the_catalog_and_refuse_unknown_ones() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let car = car_for(&server, &me, "XTA210930V0000203");
    let mut body = booking(&car);
    body["items"] =
        json!([{"catalog_id": POLISH, "quantity": 1}, {"catalog_id": WASH, "quantity": 2}]);
    let (status, order) = server.call("POST", "/api/orders", me.token(), Some(&body));
    assert_eq!(status, 201, "{order}");
    assert_eq!(
        order["items"],
        json!([
            {"catalog_id": POLISH, "name": "Body polishing", "kind": "service", "unit_price": 12000.0, "quantity": 1, "line_total": 12000.0},
            {"catalog_id": WASH, "name": "Exterior hand wash", "kind": "service", "unit_price": 1500.0, "quantity": 2, "line_total": 3000.0}
        ])
    );
    assert_eq!(order["total"], 15000.0);

    body["items"] = json!([{"catalog_id": uuid::Uuid::new_v4(), "quantity": 1}]);
    let (status, answer) = server.call("POST", "/api/orders", me.token(), Some(&body));
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (404, Some("catalog_item_not_found"))
    );
}

#[test]
fn carts_survive_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    add(&server, &me, WASH, json!(3));
    let before = cart(&server, &me);
    server.restart();
    assert_eq!(cart(&server, &me), before);
}
