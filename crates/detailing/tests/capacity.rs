//! The shop's bookable capacity, end to end: bays and opening hours (order-service's
//! `GET/PUT /api/orders/shop`), free start times (`GET /api/orders/slots`), booking, moving
//! and cancelling orders under the calendar, and the race for the last free bay. The shop
//! starts as migrated: 3 bays, 09:00-21:00 every day, Europe/Moscow (UTC+3).

mod common;

use common::{Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001"; // 45 minutes
const ENGINE: &str = "6b1f2c1e-0001-4000-8000-000000000005"; // 60 minutes
const TOWELS: &str = "6b1f2c1e-0002-4000-8000-000000000003"; // a product: no time

/// 2030-12-20 is a Friday; `local` is Moscow time, three hours ahead of UTC.
fn at(local: &str) -> String {
    format!("2030-12-20T{local}:00+03:00")
}

fn book(server: &TestServer, who: &Actor, car: &str, time: &str, items: Value) -> (u16, Value) {
    let body = json!({"car_id": car, "desired_time": time, "items": items});
    server.call("POST", "/api/orders", who.token(), Some(&body))
}

/// A customer with a car, booked at `time` with no items: the order.
fn booked(server: &TestServer, time: &str) -> Value {
    let who = server.customer();
    let car = common::new_car(server, &who);
    let (status, order) = book(server, &who, &car, time, json!([]));
    assert_eq!(status, 201, "{order}");
    order
}

fn set_shop(server: &TestServer, who: &Actor, settings: Value) -> (u16, Value) {
    server.call("PUT", "/api/orders/shop", who.token(), Some(&settings))
}

const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Week hours with `days` open from `opens` to `closes`.
fn open_on(days: &[&str], opens: &str, closes: &str) -> Value {
    days.iter()
        .map(|day| (day.to_string(), json!({"opens": opens, "closes": closes})))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

fn every_day(opens: &str, closes: &str) -> Value {
    open_on(&DAYS, opens, closes)
}

/// The free start times of 2030-12-20 for `items`, as local `HH:MM` with their free bays.
fn free_times(server: &TestServer, items: &str) -> Vec<(String, u64)> {
    let path = format!("/api/orders/slots?date=2030-12-20&items={items}");
    let (status, answer) = server.call("GET", &path, server.customer().token(), None);
    assert_eq!(status, 200, "{answer}");
    answer["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|slot| {
            let utc = slot["starts_at"].as_str().unwrap();
            // 2030-12-20THH:MM:00Z -> local HH:MM (UTC+3, no day change in opening hours).
            let hour: u32 = utc[11..13].parse().unwrap();
            let local = format!("{:02}:{}", hour + 3, &utc[14..16]);
            (local, slot["free_bays"].as_u64().unwrap())
        })
        .collect()
}

#[test]
fn twenty_customers_racing_for_the_last_free_bay_get_exactly_one_booking() {
    let server = TestServer::start(ServerConfig::app());
    let time = at("12:00");
    booked(&server, &time);
    booked(&server, &time);
    let racers: Vec<(Actor, String)> = (0..20)
        .map(|_| {
            let who = server.customer();
            let car = common::new_car(&server, &who);
            (who, car)
        })
        .collect();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = racers
            .iter()
            .map(|(who, car)| scope.spawn(|| book(&server, who, car, &time, json!([]))))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let won: Vec<_> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for (status, answer) in answers.iter().filter(|(status, _)| *status != 201) {
        assert_eq!(
            (*status, answer["error"]["code"].as_str()),
            (409, Some("slot_taken")),
            "{answer}\n{}",
            server.log()
        );
    }
    let bays = common::psql_db(
        &server.db,
        "SELECT string_agg(bay::text, ',' ORDER BY bay) FROM orders.orders",
    );
    assert_eq!(bays, "1,2,3");
}

#[test]
fn an_order_holds_a_bay_for_its_services_rounded_to_the_half_hour() {
    let server = TestServer::start(ServerConfig::app());
    let staff = server.staff();
    let (status, shop) = set_shop(
        &server,
        &staff,
        json!({"bays": 1, "time_zone": "Europe/Moscow", "hours": every_day("09:00", "21:00")}),
    );
    assert_eq!(status, 200, "{shop}");
    let who = server.customer();
    let car = common::new_car(&server, &who);
    // 45 + 60 minutes of work and goods: 105, so two hours of the bay.
    let items = json!([{"catalog_id": WASH}, {"catalog_id": ENGINE}, {"catalog_id": TOWELS}]);
    let (status, order) = book(&server, &who, &car, &at("10:00"), items);
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["desired_time"], "2030-12-20T07:00:00Z");
    assert_eq!(order["ends_at"], "2030-12-20T09:00:00Z");
    assert_eq!(order["bay"], 1);

    // Every half hour it holds is taken, for work of any length that would reach into it.
    let other_car = common::new_car(&server, &who);
    for taken in ["10:00", "10:30", "11:00", "11:30"] {
        let (status, answer) = book(&server, &who, &other_car, &at(taken), json!([]));
        assert_eq!(status, 409, "{taken}: {answer}");
        assert_eq!(answer["error"]["code"], "slot_taken");
    }
    let (status, answer) = book(
        &server,
        &who,
        &other_car,
        &at("09:30"),
        json!([{"catalog_id": WASH}]),
    );
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("slot_taken")),
        "{answer}"
    );

    // The free times say the same: a half-hour order fits up to 09:30 and from 12:00, an
    // hour's work (the wash, 45 minutes) from 12:00 but not at 09:30.
    let half_hour = free_times(&server, "");
    let starts: Vec<&str> = half_hour.iter().map(|(time, _)| time.as_str()).collect();
    assert_eq!(&starts[..3], ["09:00", "09:30", "12:00"]);
    assert_eq!(starts.last(), Some(&"20:30"));
    assert!(half_hour.iter().all(|(_, free)| *free == 1));
    let hour: Vec<String> = free_times(&server, WASH)
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(&hour[..2], ["09:00", "12:00"]);
    assert_eq!(hour.last().map(String::as_str), Some("20:00"));

    let (status, order) = book(&server, &who, &other_car, &at("12:00"), json!([]));
    assert_eq!(status, 201, "{order}");
    assert_eq!(order["ends_at"], "2030-12-20T09:30:00Z");
}

#[test]
fn work_outside_opening_hours_is_422_naming_them() {
    let server = TestServer::start(ServerConfig::app());
    let who = server.customer();
    let car = common::new_car(&server, &who);
    let (status, answer) = book(&server, &who, &car, &at("08:30"), json!([]));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["code"], "outside_opening_hours");
    assert_eq!(answer["error"]["fields"][0]["field"], "desired_time");
    assert_eq!(
        answer["error"]["fields"][0]["message"],
        "the shop is open 09:00-21:00 on Friday (Europe/Moscow); 30 minutes of work from 08:30 \
         do not fit"
    );
    // Starting inside the hours is not enough: the work must end by closing time.
    let (status, answer) = book(
        &server,
        &who,
        &car,
        &at("20:30"),
        json!([{"catalog_id": ENGINE}]),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(answer["error"]["fields"][0]["message"]
        .as_str()
        .unwrap()
        .contains("60 minutes of work from 20:30"));

    // Closed on Fridays: said so, and no free times that day.
    let staff = server.staff();
    let weekdays = open_on(&DAYS[..4], "10:00", "18:00");
    let (status, shop) = set_shop(
        &server,
        &staff,
        json!({"bays": 3, "time_zone": "Europe/Moscow", "hours": weekdays}),
    );
    assert_eq!(status, 200, "{shop}");
    let (status, answer) = book(&server, &who, &car, &at("12:00"), json!([]));
    assert_eq!(status, 422, "{answer}");
    assert_eq!(
        answer["error"]["fields"][0]["message"],
        "the shop is closed on Friday (Europe/Moscow)"
    );
    let (status, day) = server.call(
        "GET",
        "/api/orders/slots?date=2030-12-20",
        who.token(),
        None,
    );
    assert_eq!(status, 200, "{day}");
    assert_eq!(day["hours"], Value::Null);
    assert_eq!(day["slots"], json!([]));
}

#[test]
fn moving_an_order_into_a_taken_time_is_409_and_into_a_free_one_moves_it() {
    let server = TestServer::start(ServerConfig::app());
    for _ in 0..3 {
        booked(&server, &at("15:00"));
    }
    let who = server.customer();
    let car = common::new_car(&server, &who);
    let (status, mine) = book(
        &server,
        &who,
        &car,
        &at("14:00"),
        json!([{"catalog_id": WASH}]),
    );
    assert_eq!(status, 201, "{mine}");
    let path = format!("/api/orders/{}", mine["id"].as_str().unwrap());
    let move_to = |who: &Actor, time: &str| {
        server.call(
            "PATCH",
            &path,
            who.token(),
            Some(&json!({"desired_time": time})),
        )
    };

    // 14:30 for an hour reaches 15:00, where all three bays are taken.
    let (status, answer) = move_to(&who, &at("14:30"));
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("slot_taken")),
        "{answer}"
    );
    // Within its own time it may shift: it does not block itself.
    let (status, moved) = move_to(&who, &at("13:30"));
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["desired_time"], "2030-12-20T10:30:00Z");
    assert_eq!(moved["ends_at"], "2030-12-20T11:30:00Z");
    let (status, answer) = move_to(&who, &at("21:00"));
    assert_eq!(
        (status, &answer["error"]["code"]),
        (422, &json!("outside_opening_hours")),
        "{answer}"
    );
    let (status, answer) = move_to(&who, "2020-12-20T10:00:00Z");
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("desired_time_passed")),
        "{answer}"
    );
    // Someone else's order is not there for them; staff may move it.
    let (status, _) = move_to(&server.customer(), &at("16:00"));
    assert_eq!(status, 404);
    let (status, moved) = move_to(&server.staff(), &at("16:00"));
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["desired_time"], "2030-12-20T13:00:00Z");

    // Cancelling frees the bay: the fourth booking at 15:00 fits once one is cancelled.
    let blocker = booked(&server, &at("17:00"));
    let third = booked(&server, &at("17:00"));
    booked(&server, &at("17:00"));
    let (status, answer) = move_to(&who, &at("17:00"));
    assert_eq!(status, 409, "{answer}");
    let cancel = json!({"status": "cancelled"});
    let cancel_path = format!("/api/orders/{}/status", third["id"].as_str().unwrap());
    let (status, answer) =
        server.call("PATCH", &cancel_path, server.staff().token(), Some(&cancel));
    assert_eq!(status, 200, "{answer}");
    let (status, moved) = move_to(&who, &at("17:00"));
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["bay"], third["bay"]);
    assert_ne!(moved["bay"], blocker["bay"]);

    // Work started: it stays where it is.
    let staff = server.staff();
    for status in ["confirmed", "in_progress"] {
        let (code, answer) = server.call(
            "PATCH",
            &format!("{path}/status"),
            staff.token(),
            Some(&json!({"status": status})),
        );
        assert_eq!(code, 200, "{answer}");
    }
    let (status, answer) = move_to(&staff, &at("19:00"));
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("order_not_movable")),
        "{answer}"
    );
}

#[test]
fn staff_set_the_bays_and_hours_and_customers_only_read_them() {
    let server = TestServer::start(ServerConfig::app());
    let (status, shop) = server.call("GET", "/api/orders/shop", server.customer().token(), None);
    assert_eq!(status, 200, "{shop}");
    assert_eq!(shop["bays"], 3);
    assert_eq!(shop["time_zone"], "Europe/Moscow");
    assert_eq!(shop["hours"], every_day("09:00", "21:00"));

    let settings = json!({"bays": 2, "time_zone": "Asia/Yekaterinburg",
        "hours": open_on(&["friday"], "08:00", "24:00")});
    let (status, answer) = set_shop(&server, &server.customer(), settings.clone());
    assert_eq!(
        (status, &answer["error"]["code"]),
        (403, &json!("staff_only")),
        "{answer}"
    );
    let staff = server.staff();
    let (status, stored) = set_shop(&server, &staff, settings.clone());
    assert_eq!(status, 200, "{stored}");
    assert_eq!(stored, settings);
    let (_, read) = server.call("GET", "/api/orders/shop", staff.token(), None);
    assert_eq!(read, settings);

    // Yekaterinburg is UTC+5: 08:00 there is 03:00Z, and closing is midnight.
    let (status, day) = server.call(
        "GET",
        "/api/orders/slots?date=2030-12-20",
        staff.token(),
        None,
    );
    assert_eq!(status, 200, "{day}");
    assert_eq!(day["hours"], json!({"opens": "08:00", "closes": "24:00"}));
    assert_eq!(
        day["slots"][0],
        json!({"starts_at": "2030-12-20T03:00:00Z", "free_bays": 2})
    );
    assert_eq!(day["slots"].as_array().unwrap().len(), 32);

    let (status, answer) = set_shop(
        &server,
        &staff,
        json!({"bays": 2, "time_zone": "Mars/Olympus_Mons", "hours": {}}),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["error"]["fields"][0]["field"], "time_zone");

    // A bay that holds a booking cannot go; the settings stay as they were.
    booked(&server, "2030-12-20T10:00:00+05:00");
    booked(&server, "2030-12-20T10:00:00+05:00");
    let (status, answer) = set_shop(
        &server,
        &staff,
        json!({"bays": 1, "time_zone": "Europe/Moscow", "hours": {}}),
    );
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("bays_in_use")),
        "{answer}"
    );
    let (_, read) = server.call("GET", "/api/orders/shop", staff.token(), None);
    assert_eq!(read, settings);
}

#[test]
fn the_board_shows_each_bays_day_and_staff_assign_the_work() {
    let server = TestServer::start(ServerConfig::app());
    let who = server.customer();
    let car = common::new_car(&server, &who);
    let (status, later) = book(&server, &who, &car, &at("12:00"), json!([]));
    assert_eq!(status, 201, "{later}");
    let (status, earlier) = book(
        &server,
        &who,
        &car,
        &at("10:00"),
        json!([{"catalog_id": WASH}]),
    );
    assert_eq!(status, 201, "{earlier}");
    let gone = booked(&server, &at("10:00"));
    let cancel = json!({"status": "cancelled"});
    let path = format!("/api/orders/{}/status", gone["id"].as_str().unwrap());
    let (status, _) = server.call("PATCH", &path, server.staff().token(), Some(&cancel));
    assert_eq!(status, 200);
    // Another day's order is not on this day's board.
    booked(&server, "2030-12-21T10:00:00+03:00");

    let staff = server.staff();
    let (status, answer) = server.call(
        "GET",
        "/api/orders/board?date=2030-12-20",
        who.token(),
        None,
    );
    assert_eq!(
        (status, &answer["error"]["code"]),
        (403, &json!("staff_only")),
        "{answer}"
    );
    let assign = |who: &Actor, order: &Value, to: Value| {
        let path = format!("/api/orders/{}", order["id"].as_str().unwrap());
        server.call(
            "PATCH",
            &path,
            who.token(),
            Some(&json!({"assigned_to": to})),
        )
    };
    let (status, answer) = assign(&who, &earlier, json!(staff.id.to_string()));
    assert_eq!(
        (status, &answer["error"]["code"]),
        (403, &json!("staff_only")),
        "{answer}"
    );
    let (status, assigned) = assign(&staff, &earlier, json!(staff.id.to_string()));
    assert_eq!(status, 200, "{assigned}");
    assert_eq!(assigned["assigned_to"], json!(staff.id.to_string()));
    assert_eq!(assigned["desired_time"], earlier["desired_time"]);
    assert_eq!(assigned["bay"], earlier["bay"]);

    let (status, board) = server.call(
        "GET",
        "/api/orders/board?date=2030-12-20",
        staff.token(),
        None,
    );
    assert_eq!(status, 200, "{board}");
    assert_eq!(board["time_zone"], "Europe/Moscow");
    let bays = board["bays"].as_array().unwrap();
    assert_eq!(bays.len(), 3, "{board}");
    let first: Vec<&Value> = bays[0]["orders"].as_array().unwrap().iter().collect();
    assert_eq!(bays[0]["bay"], 1);
    assert_eq!(first.len(), 2, "{board}");
    assert_eq!(first[0]["id"], earlier["id"]);
    assert_eq!(first[1]["id"], later["id"]);
    assert_eq!(first[0]["assigned_to"], json!(staff.id.to_string()));
    assert_eq!(first[0]["items"][0]["name"], "Exterior hand wash");
    assert_eq!(first[0]["status"], "created");
    assert_eq!(
        first[0]["car"],
        json!({"id": car, "license_plate": "А123БВ799", "make": "Lada", "model": "Vesta"})
    );
    assert_eq!(
        bays[1]["orders"],
        json!([]),
        "the cancelled order frees bay 2: {board}"
    );
    assert_eq!(bays[2]["orders"], json!([]));

    // Unassigned again; a closed order is not assigned.
    let (status, answer) = assign(&staff, &earlier, Value::Null);
    assert_eq!(
        (status, &answer["assigned_to"]),
        (200, &Value::Null),
        "{answer}"
    );
    let (status, answer) = assign(&staff, &gone, json!(staff.id.to_string()));
    assert_eq!(
        (status, &answer["error"]["code"]),
        (409, &json!("order_closed")),
        "{answer}"
    );
}
