//! The catalog (and staff managing it), the cart and checkout into an order, end to end:
//! cart-service, order-service (prices read from cart-service's catalog) and car-service,
//! chained in one host.

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
    json!({"car_id": car_id, "desired_time": common::next_slot(), "description": "ТО"})
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
        &json!({"id": WASH, "name": "Exterior hand wash", "kind": "service", "price": 1500.0, "duration_minutes": 45, "active": true})
    );
    let towels = items.iter().find(|i| i["id"] == TOWELS).unwrap();
    assert_eq!(
        (&towels["kind"], &towels["active"]),
        (&json!("product"), &json!(true))
    );
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

// Staff manage the catalog: entries added, repriced, renamed, retired and sold again.

fn catalog(server: &TestServer, who: &Actor, query: &str) -> Vec<Value> {
    let (status, body) = server.call(
        "GET",
        &format!("/api/cart/catalog{query}"),
        who.token(),
        None,
    );
    assert_eq!(status, 200, "{body}");
    body["items"].as_array().unwrap().clone()
}

fn change(server: &TestServer, who: &Actor, id: &str, body: Value) -> (u16, Value) {
    server.call(
        "PATCH",
        &format!("/api/cart/catalog/{id}"),
        who.token(),
        Some(&body),
    )
}

fn code(answer: &Value) -> Option<&str> {
    answer["error"]["code"].as_str()
}

#[test]
fn staff_add_entries_that_customers_see_and_buy() {
    let server = TestServer::start(ServerConfig::app());
    let (staff, me) = (server.staff(), server.customer());
    let body = json!({"name": "Wheel and tyre cleaning", "kind": "service", "price": "1200.50",
                      "duration_minutes": 40});
    let (status, wheels) = server.call("POST", "/api/cart/catalog", staff.token(), Some(&body));
    assert_eq!(status, 201, "{wheels}\n{}", server.log());
    let id = wheels["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wheels,
        json!({"id": id, "name": "Wheel and tyre cleaning", "kind": "service", "price": 1200.5,
               "duration_minutes": 40, "active": true})
    );
    let (status, shine) = server.call(
        "POST",
        "/api/cart/catalog",
        staff.token(),
        Some(&json!({"name": "Tyre shine, 500 ml", "kind": "product", "price": 590})),
    );
    assert_eq!(status, 201, "{shine}");
    assert!(shine.get("duration_minutes").is_none());

    // Customers see them with the rest, and buy them.
    let items = catalog(&server, &me, "");
    assert_eq!(items.len(), 14);
    assert!(items.contains(&wheels) && items.contains(&shine));
    let (status, cart) = add(&server, &me, &id, json!(2));
    assert_eq!(
        (status, cart["total"].as_f64()),
        (201, Some(2401.0)),
        "{cart}"
    );
    let (status, one) = server.call("GET", &format!("/api/cart/catalog/{id}"), me.token(), None);
    assert_eq!((status, &one), (200, &wheels));

    // A name is taken once.
    let (status, answer) = server.call("POST", "/api/cart/catalog", staff.token(), Some(&body));
    assert_eq!((status, code(&answer)), (409, Some("catalog_name_taken")));
    let (status, answer) = change(&server, &staff, &id, json!({"name": "Body polishing"}));
    assert_eq!((status, code(&answer)), (409, Some("catalog_name_taken")));

    // Customers do not change the catalog, whatever they send.
    let (status, answer) = server.call("POST", "/api/cart/catalog", me.token(), Some(&body));
    assert_eq!((status, code(&answer)), (403, Some("staff_only")));
    let (status, answer) = change(&server, &me, WASH, json!({"price": 1}));
    assert_eq!((status, code(&answer)), (403, Some("staff_only")));
    let (status, answer) = change(&server, &me, WASH, json!({"price": "free"}));
    assert_eq!((status, code(&answer)), (403, Some("staff_only")));
    assert_eq!(catalog(&server, &me, "").len(), 14);

    // No such entry.
    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let (status, answer) = change(&server, &staff, &missing, json!({"active": false}));
        assert_eq!(
            (status, code(&answer)),
            (404, Some("catalog_item_not_found"))
        );
        let path = format!("/api/cart/catalog/{missing}");
        let (status, answer) = server.call("GET", &path, me.token(), None);
        assert_eq!(
            (status, code(&answer)),
            (404, Some("catalog_item_not_found"))
        );
    }
}

#[test]
fn bad_catalog_changes_are_422_naming_every_field() {
    let server = TestServer::start(ServerConfig::app());
    let staff = server.staff();
    let create = |body: Value| server.call("POST", "/api/cart/catalog", staff.token(), Some(&body));
    let fields = |answer: &Value| -> Vec<String> {
        assert_eq!(code(answer), Some("validation_failed"), "{answer}");
        let fields = answer["error"]["fields"].as_array().unwrap();
        fields
            .iter()
            .map(|f| f["field"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, answer) = create(json!({"name": " Wash ", "kind": "gift", "price": 0,
                                         "duration_minutes": 0}));
    assert_eq!(status, 422);
    let mut named = fields(&answer);
    named.sort();
    assert_eq!(named, ["duration_minutes", "kind", "name", "price"]);
    // A service says how long it takes; a product takes no time.
    let (status, answer) = create(json!({"name": "Wash", "kind": "service", "price": 100}));
    assert_eq!(
        (status, fields(&answer)),
        (422, vec!["duration_minutes".to_owned()])
    );
    let (status, answer) = create(json!({"name": "Soap", "kind": "product", "price": 100,
                                         "duration_minutes": 5}));
    assert_eq!(
        (status, fields(&answer)),
        (422, vec!["duration_minutes".to_owned()])
    );
    let (status, answer) = create(json!({"name": "Soap", "kind": "product",
                                         "price": 1000000000.01}));
    assert_eq!((status, fields(&answer)), (422, vec!["price".to_owned()]));

    for (body, field) in [
        (json!({"price": null}), "price"),
        (json!({"price": 0.001}), "price"),
        (json!({"name": ""}), "name"),
        (json!({"active": "no"}), "active"),
        (json!({"duration_minutes": 1441}), "duration_minutes"),
        // The kind is not changed, and a misspelt field is not ignored.
        (json!({"kind": "product"}), "kind"),
        (json!({"prise": 100}), "prise"),
    ] {
        let (status, answer) = change(&server, &staff, WASH, body.clone());
        assert_eq!(
            (status, fields(&answer)),
            (422, vec![field.to_owned()]),
            "{body}"
        );
    }
    let (status, answer) = change(&server, &staff, TOWELS, json!({"duration_minutes": 30}));
    assert_eq!(
        (status, fields(&answer)),
        (422, vec!["duration_minutes".to_owned()])
    );
    let (status, answer) = server.call(
        "GET",
        "/api/cart/catalog?include_retired=maybe",
        staff.token(),
        None,
    );
    assert_eq!(
        (status, fields(&answer)),
        (422, vec!["include_retired".to_owned()])
    );

    // Nothing of that changed anything; an empty change is no change.
    let (status, wash) = change(&server, &staff, WASH, json!({}));
    assert_eq!(status, 200);
    assert_eq!(
        wash,
        json!({"id": WASH, "name": "Exterior hand wash", "kind": "service", "price": 1500.0,
               "duration_minutes": 45, "active": true})
    );
    assert_eq!(catalog(&server, &staff, "?include_retired=true").len(), 12);
}

#[test]
fn a_repriced_entry_leaves_booked_orders_alone() {
    let server = TestServer::start(ServerConfig::app());
    let (staff, me) = (server.staff(), server.customer());
    let car = car_for(&server, &me, "XTA210930V0000204");
    let mut body = booking(&car);
    body["items"] = json!([{"catalog_id": WASH, "quantity": 2}]);
    let (status, booked) = server.call("POST", "/api/orders", me.token(), Some(&body));
    assert_eq!(status, 201, "{booked}");
    assert_eq!(booked["total"], 3000.0);

    let (status, wash) = change(
        &server,
        &staff,
        WASH,
        json!({"name": "Exterior hand wash, premium", "price": 1999.99, "duration_minutes": 50}),
    );
    assert_eq!(status, 200, "{wash}");
    assert_eq!(
        wash,
        json!({"id": WASH, "name": "Exterior hand wash, premium", "kind": "service",
               "price": 1999.99, "duration_minutes": 50, "active": true})
    );
    assert!(catalog(&server, &me, "").contains(&wash));

    // The booked order keeps the name and price it was booked at.
    let path = format!("/api/orders/{}", booked["id"].as_str().unwrap());
    let (status, again) = server.call("GET", &path, me.token(), None);
    assert_eq!((status, &again), (200, &booked));
    assert_eq!(
        (
            again["items"][0]["name"].as_str(),
            again["items"][0]["unit_price"].as_f64()
        ),
        (Some("Exterior hand wash"), Some(1500.0))
    );
    // Carts and new orders take today's.
    let (_, cart) = add(&server, &me, WASH, json!(1));
    assert_eq!(cart["items"][0]["unit_price"], 1999.99);
    let (status, order) = server.call("POST", "/api/orders", me.token(), Some(&body));
    assert_eq!(
        (status, order["total"].as_f64()),
        (201, Some(3999.98)),
        "{order}"
    );
    assert_eq!(order["items"][0]["name"], "Exterior hand wash, premium");
}

#[test]
fn a_retired_entry_is_no_longer_sold_until_staff_sell_it_again() {
    let server = TestServer::start(ServerConfig::app());
    let (staff, me, other) = (server.staff(), server.customer(), server.customer());
    let car = car_for(&server, &me, "XTA210930V0000205");
    let mut body = booking(&car);
    body["items"] =
        json!([{"catalog_id": WASH, "quantity": 1}, {"catalog_id": POLISH, "quantity": 1}]);
    let (status, booked) = server.call("POST", "/api/orders", me.token(), Some(&body));
    assert_eq!(status, 201, "{booked}");
    assert_eq!(add(&server, &me, POLISH, json!(1)).0, 201);

    let (status, polish) = change(&server, &staff, POLISH, json!({"active": false}));
    assert_eq!(
        (status, &polish["active"]),
        (200, &json!(false)),
        "{polish}"
    );

    // Hidden from customers (who cannot ask for it), shown to staff who ask.
    for (who, query, listed) in [
        (&me, "", 11),
        (&me, "?include_retired=true", 11),
        (&staff, "", 11),
        (&staff, "?include_retired=false", 11),
        (&staff, "?include_retired=true", 12),
    ] {
        let items = catalog(&server, who, query);
        assert_eq!(items.len(), listed, "{query}");
        assert_eq!(items.contains(&polish), listed == 12, "{query}");
    }
    let (status, one) = server.call(
        "GET",
        &format!("/api/cart/catalog/{POLISH}"),
        me.token(),
        None,
    );
    assert_eq!((status, &one), (200, &polish));

    // Refused in carts and new orders, naming the item.
    let (status, answer) = add(&server, &other, POLISH, json!(1));
    assert_eq!(
        (status, code(&answer)),
        (422, Some("catalog_item_retired")),
        "{answer}"
    );
    assert_eq!(answer["error"]["fields"][0]["field"], "catalog_id");
    let (status, answer) = server.call("POST", "/api/orders", me.token(), Some(&body));
    assert_eq!(
        (status, code(&answer)),
        (422, Some("catalog_item_retired")),
        "{answer}"
    );
    assert_eq!(answer["error"]["fields"][0]["field"], "items[1].catalog_id");
    let (status, answer) = server.call("POST", "/api/orders", staff.token(), Some(&body));
    assert_eq!((status, code(&answer)), (422, Some("catalog_item_retired")));
    // A line put in the cart before says so, and checkout passes the refusal on.
    let line = &cart(&server, &me)["items"][0];
    assert_eq!(
        (&line["catalog_id"], &line["active"]),
        (&json!(POLISH), &json!(false))
    );
    let (status, answer) = server.call(
        "POST",
        "/api/cart/checkout",
        me.token(),
        Some(&booking(&car)),
    );
    assert_eq!(
        (status, code(&answer)),
        (422, Some("catalog_item_retired")),
        "{answer}"
    );
    assert_eq!(cart(&server, &me)["items"].as_array().unwrap().len(), 1);
    // Booked orders keep it.
    let path = format!("/api/orders/{}", booked["id"].as_str().unwrap());
    let (_, again) = server.call("GET", &path, me.token(), None);
    assert_eq!(again, booked);

    // Sold again.
    let (status, polish) = change(&server, &staff, POLISH, json!({"active": true}));
    assert_eq!((status, &polish["active"]), (200, &json!(true)));
    assert_eq!(catalog(&server, &me, "").len(), 12);
    assert_eq!(add(&server, &other, POLISH, json!(1)).0, 201);
    let (status, order) = server.call(
        "POST",
        "/api/cart/checkout",
        me.token(),
        Some(&booking(&car)),
    );
    assert_eq!(
        (status, order["total"].as_f64()),
        (201, Some(12000.0)),
        "{order}"
    );
}
