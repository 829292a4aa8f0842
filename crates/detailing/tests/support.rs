//! support-service end to end: tickets and their conversations through the real binary and
//! components, a fresh PostgreSQL database per test, order checks chained to order-service.

mod common;

use common::{psql_db, Actor, ServerConfig, TestServer};
use serde_json::{json, Value};

const TICKETS: &str = "/api/support/tickets";

fn post(server: &TestServer, who: &Actor, path: &str, body: &Value) -> (u16, Value) {
    server.call("POST", path, who.token(), Some(body))
}

fn get(server: &TestServer, who: &Actor, path: &str) -> (u16, Value) {
    server.call("GET", path, who.token(), None)
}

fn ticket_path(ticket: &Value) -> String {
    format!("{TICKETS}/{}", ticket["id"].as_str().unwrap())
}

fn open_ticket(server: &TestServer, who: &Actor, subject: &str) -> Value {
    let body = json!({"subject": subject, "message": "Добрый день, есть вопрос."});
    let (status, ticket) = post(server, who, TICKETS, &body);
    assert_eq!(status, 201, "{ticket}\n{}", server.log());
    ticket
}

fn write(server: &TestServer, who: &Actor, ticket: &Value, message: &str) -> (u16, Value) {
    let path = format!("{}/messages", ticket_path(ticket));
    post(server, who, &path, &json!({ "message": message }))
}

fn set_status(server: &TestServer, who: &Actor, ticket: &Value, status: &str) -> (u16, Value) {
    let path = format!("{}/status", ticket_path(ticket));
    server.call(
        "PATCH",
        &path,
        who.token(),
        Some(&json!({ "status": status })),
    )
}

fn status_of(server: &TestServer, who: &Actor, ticket: &Value) -> String {
    let (status, body) = get(server, who, &ticket_path(ticket));
    assert_eq!(status, 200, "{body}");
    body["status"].as_str().unwrap().to_owned()
}

fn error_code(answer: &(u16, Value)) -> (u16, Option<&str>) {
    (answer.0, answer.1["error"]["code"].as_str())
}

fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ticket| ticket["id"].as_str().unwrap().to_owned())
        .collect()
}

fn count(server: &TestServer, table: &str) -> String {
    psql_db(&server.db, &format!("SELECT count(*) FROM support.{table}"))
}

/// A car and an order of `owner`'s, made the way a client does it.
fn create_order(server: &TestServer, owner: &Actor, vin: &str) -> Value {
    let car = json!({"license_plate": "А123БВ799", "vin": vin, "make": "Lada",
        "model": "Vesta", "year": 2021});
    let (status, car) = post(server, owner, "/api/cars", &car);
    assert_eq!(status, 201, "{car}\n{}", server.log());
    let order = json!({"car_id": car["id"], "desired_time": common::next_slot(),
        "description": "Полировка"});
    let (status, order) = post(server, owner, "/api/orders", &order);
    assert_eq!(status, 201, "{order}\n{}", server.log());
    order
}

#[test]
fn open_a_ticket_and_add_a_message() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let body = json!({"subject": "  Царапина после мойки  ",
        "message": "После мойки на двери появилась царапина."});
    let (status, ticket) = post(&server, &me, TICKETS, &body);
    assert_eq!(status, 201, "{ticket}");
    assert_eq!(ticket["subject"], "Царапина после мойки");
    assert_eq!(ticket["user_id"], me.id.to_string());
    assert_eq!(ticket["status"], "open");
    assert_eq!(ticket["order_id"], Value::Null);
    let first = &ticket["messages"][0];
    assert_eq!(ticket["messages"].as_array().unwrap().len(), 1);
    assert_eq!(first["body"], "После мойки на двери появилась царапина.");
    assert_eq!(first["ticket_id"], ticket["id"]);
    assert_eq!(first["author_id"], me.id.to_string());
    assert_eq!(first["author_role"], "customer");

    let (status, message) = write(&server, &me, &ticket, "Фото приложу позже.");
    assert_eq!(status, 201, "{message}");
    assert_eq!(message["body"], "Фото приложу позже.");
    assert_eq!(message["ticket_id"], ticket["id"]);
    assert_eq!(message["author_role"], "customer");

    let (status, read) = get(&server, &me, &ticket_path(&ticket));
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["messages"], json!([first, message]));
    assert_eq!(read["status"], "open");
    assert_eq!(
        (count(&server, "tickets"), count(&server, "messages")),
        ("1".into(), "2".into())
    );
}

#[test]
fn staff_reply_answers_owner_reply_reopens_and_a_closed_ticket_takes_no_messages() {
    let server = TestServer::start(ServerConfig::app());
    let (me, staff) = (server.customer(), server.staff());
    let ticket = open_ticket(&server, &me, "Когда будет готово?");

    let (status, reply) = write(&server, &staff, &ticket, "Завтра к обеду.");
    assert_eq!(
        (status, reply["author_role"].as_str()),
        (201, Some("staff"))
    );
    assert_eq!(reply["author_id"], staff.id.to_string());
    assert_eq!(status_of(&server, &me, &ticket), "answered");
    // Another staff reply keeps it answered.
    assert_eq!(write(&server, &staff, &ticket, "Уточню у мастера.").0, 201);
    assert_eq!(status_of(&server, &me, &ticket), "answered");

    assert_eq!(write(&server, &me, &ticket, "А можно пораньше?").0, 201);
    assert_eq!(status_of(&server, &me, &ticket), "open");

    assert_eq!(write(&server, &staff, &ticket, "Да, к 10:00.").0, 201);
    let (status, closed) = set_status(&server, &staff, &ticket, "closed");
    assert_eq!(
        (status, closed["status"].as_str()),
        (200, Some("closed")),
        "{closed}"
    );
    assert_eq!(closed["id"], ticket["id"]);

    for who in [&me, &staff] {
        let answer = write(&server, who, &ticket, "Ещё вопрос");
        assert_eq!(
            error_code(&answer),
            (409, Some("ticket_closed")),
            "{}",
            answer.1
        );
    }
    let (_, read) = get(&server, &me, &ticket_path(&ticket));
    let authors: Vec<&str> = read["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["author_role"].as_str().unwrap())
        .collect();
    assert_eq!(
        authors,
        ["customer", "staff", "staff", "customer", "staff"],
        "oldest first"
    );
}

#[test]
fn staff_move_status_open_answered_closed_and_nothing_else() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let ticket = open_ticket(&server, &me, "Статус");

    let answer = set_status(&server, &me, &ticket, "closed");
    assert_eq!(error_code(&answer), (403, Some("staff_only")));
    let answer = set_status(&server, &other, &ticket, "closed");
    assert_eq!(error_code(&answer), (404, Some("ticket_not_found")));
    let answer = set_status(&server, &staff, &ticket, "open");
    assert_eq!(error_code(&answer), (409, Some("illegal_status_change")));
    assert_eq!(
        answer.1["error"]["message"],
        "a ticket that is open cannot become open"
    );
    let answer = set_status(&server, &staff, &ticket, "resolved");
    assert_eq!(
        (answer.0, answer.1["error"]["fields"][0]["field"].as_str()),
        (422, Some("status"))
    );

    for next in ["answered", "closed"] {
        let (status, body) = set_status(&server, &staff, &ticket, next);
        assert_eq!(
            (status, body["status"].as_str()),
            (200, Some(next)),
            "{body}"
        );
    }
    for next in ["open", "answered", "closed"] {
        let answer = set_status(&server, &staff, &ticket, next);
        assert_eq!(
            error_code(&answer),
            (409, Some("illegal_status_change")),
            "{next}"
        );
    }

    let fresh = open_ticket(&server, &me, "Сразу закрыть");
    assert_eq!(set_status(&server, &staff, &fresh, "closed").0, 200);
    assert_eq!(status_of(&server, &me, &fresh), "closed");
}

#[test]
fn concurrent_status_changes_apply_once() {
    let server = TestServer::start(ServerConfig::app());
    let (me, staff) = (server.customer(), server.staff());
    let ticket = open_ticket(&server, &me, "Гонка");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| set_status(&server, &staff, &ticket, "closed").0))
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
fn concurrent_messages_all_land_in_order_and_the_last_author_sets_the_status() {
    let server = TestServer::start(ServerConfig::app());
    let (me, staff) = (server.customer(), server.staff());
    let ticket = open_ticket(&server, &me, "Много сообщений");
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|n| {
                let (who, ticket) = (if n % 2 == 0 { &me } else { &staff }, &ticket);
                let server = &server;
                scope.spawn(move || write(server, who, ticket, &format!("сообщение {n}")).0)
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, [201; 8]);
    let (_, read) = get(&server, &me, &ticket_path(&ticket));
    let messages = read["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 9);
    let answered: Vec<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    let written = psql_db(
        &server.db,
        "SELECT string_agg(id::text, ',' ORDER BY created_at) FROM support.messages",
    );
    assert_eq!(answered.join(","), written, "oldest first");
    // Messages take turns on the ticket's row lock: the status is the last writer's.
    let last = messages.last().unwrap()["author_role"].as_str().unwrap();
    let expected = if last == "staff" { "answered" } else { "open" };
    assert_eq!(read["status"], expected);
}

#[test]
fn another_customers_ticket_is_404_to_read_write_and_list() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let ticket = open_ticket(&server, &me, "Личное");
    let path = ticket_path(&ticket);

    let answer = get(&server, &other, &path);
    assert_eq!(error_code(&answer), (404, Some("ticket_not_found")));
    assert_eq!(
        answer.1["error"]["message"],
        format!("no ticket with id {}", ticket["id"].as_str().unwrap())
    );
    let answer = write(&server, &other, &ticket, "Чужой тикет");
    assert_eq!(error_code(&answer), (404, Some("ticket_not_found")));
    assert_eq!(
        get(&server, &other, TICKETS).1,
        json!({"items": [], "next_cursor": null})
    );
    // Even naming the owner in the query does not widen a customer's list.
    let (_, list) = get(&server, &other, &format!("{TICKETS}?user_id={}", me.id));
    assert_eq!(ids(&list), Vec::<String>::new());

    // Unknown and malformed ids answer like a foreign one.
    for missing in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let answer = get(&server, &me, &format!("{TICKETS}/{missing}"));
        assert_eq!(
            error_code(&answer),
            (404, Some("ticket_not_found")),
            "{missing}"
        );
        let answer = post(
            &server,
            &me,
            &format!("{TICKETS}/{missing}/messages"),
            &json!({"message": "?"}),
        );
        assert_eq!(
            error_code(&answer),
            (404, Some("ticket_not_found")),
            "{missing}"
        );
    }

    // Owner and staff read the same conversation.
    let (status, mine) = get(&server, &me, &path);
    assert_eq!(status, 200);
    assert_eq!(get(&server, &staff, &path), (200, mine));
    assert_eq!(count(&server, "messages"), "1");
}

#[test]
fn staff_list_every_ticket_and_anyone_filters_by_status() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let mine_open = open_ticket(&server, &me, "Первый");
    let mine_answered = open_ticket(&server, &me, "Второй");
    let theirs_closed = open_ticket(&server, &other, "Третий");
    write(&server, &staff, &mine_answered, "Ответ");
    set_status(&server, &staff, &theirs_closed, "closed");
    let id = |t: &Value| t["id"].as_str().unwrap().to_owned();

    let (status, all) = get(&server, &staff, TICKETS);
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        ids(&all),
        [id(&theirs_closed), id(&mine_answered), id(&mine_open)]
    );
    assert_eq!(all["items"][0]["status"], "closed");
    assert!(
        all["items"][0].get("messages").is_none(),
        "lists carry no messages"
    );

    for (filter, expected) in [
        ("open", vec![id(&mine_open)]),
        ("answered", vec![id(&mine_answered)]),
        ("closed", vec![id(&theirs_closed)]),
    ] {
        let (_, list) = get(&server, &staff, &format!("{TICKETS}?status={filter}"));
        assert_eq!(ids(&list), expected, "{filter}");
    }
    let (_, theirs) = get(&server, &staff, &format!("{TICKETS}?user_id={}", other.id));
    assert_eq!(ids(&theirs), [id(&theirs_closed)]);

    let (_, mine) = get(&server, &me, TICKETS);
    assert_eq!(ids(&mine), [id(&mine_answered), id(&mine_open)]);
    let (_, mine_closed) = get(&server, &me, &format!("{TICKETS}?status=closed"));
    assert_eq!(ids(&mine_closed), Vec::<String>::new());
    let (_, mine_answered_only) = get(&server, &me, &format!("{TICKETS}?status=answered"));
    assert_eq!(ids(&mine_answered_only), [id(&mine_answered)]);

    let answer = get(&server, &me, &format!("{TICKETS}?status=pending"));
    assert_eq!(error_code(&answer), (422, Some("validation_failed")));
    assert_eq!(answer.1["error"]["fields"][0]["field"], "status");
}

#[test]
fn ticket_lists_are_paged_newest_first() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let mut opened: Vec<String> = (0..5)
        .map(|n| {
            open_ticket(&server, &me, &format!("Вопрос {n}"))["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    opened.reverse();

    let mut seen = Vec::new();
    let mut path = format!("{TICKETS}?limit=2");
    loop {
        let (status, page) = get(&server, &me, &path);
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("{TICKETS}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, opened);

    let answer = get(
        &server,
        &me,
        &format!("{TICKETS}?limit=0&cursor=x&status=new"),
    );
    assert_eq!(answer.0, 422);
    assert_eq!(answer.1["error"]["fields"].as_array().unwrap().len(), 3);
}

#[test]
fn ticket_about_the_callers_own_order_is_accepted_and_another_users_order_is_not() {
    let server = TestServer::start(ServerConfig::app());
    let (me, other, staff) = (server.customer(), server.customer(), server.staff());
    let order = create_order(&server, &me, "XTA210930V0000201");
    let about = |order_id: &Value| json!({"subject": "По заказу", "message": "Когда начнёте?", "order_id": order_id});

    let (status, ticket) = post(&server, &me, TICKETS, &about(&order["id"]));
    assert_eq!(status, 201, "{ticket}\n{}", server.log());
    assert_eq!(ticket["order_id"], order["id"]);
    assert_eq!(
        get(&server, &me, &ticket_path(&ticket)).1["order_id"],
        order["id"]
    );
    // Staff see every order, so they may open a ticket about a customer's.
    assert_eq!(post(&server, &staff, TICKETS, &about(&order["id"])).0, 201);

    // order-service answers 404 to another user, exactly as for an order that does not exist.
    let missing = json!(uuid::Uuid::new_v4().to_string());
    for (who, order_id) in [(&other, &order["id"]), (&me, &missing)] {
        let answer = post(&server, who, TICKETS, &about(order_id));
        assert_eq!(
            error_code(&answer),
            (404, Some("order_not_found")),
            "{}",
            answer.1
        );
    }
    assert_eq!(count(&server, "tickets"), "2");
}

#[test]
fn invalid_fields_are_all_reported_with_422_and_nothing_is_written() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    let answer = post(
        &server,
        &me,
        TICKETS,
        &json!({"subject": " ", "message": "ж".repeat(5001), "order_id": "order-7"}),
    );
    assert_eq!(error_code(&answer), (422, Some("validation_failed")));
    let fields: Vec<&str> = answer.1["error"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["message", "order_id", "subject"]);

    for body in [
        json!({"subject": "ж".repeat(201), "message": "m"}),
        json!({"subject": "a\u{0}b", "message": "m"}),
        json!({"message": "m"}),
    ] {
        let answer = post(&server, &me, TICKETS, &body);
        assert_eq!(answer.1["error"]["fields"][0]["field"], "subject", "{body}");
    }
    // The longest subject and message are fine.
    let body = json!({"subject": "ж".repeat(200), "message": "ж".repeat(5000)});
    assert_eq!(post(&server, &me, TICKETS, &body).0, 201);

    let ticket = open_ticket(&server, &me, "Пустые сообщения");
    for message in [
        json!(""),
        json!("  \n "),
        json!(null),
        json!(42),
        json!("\u{0}"),
    ] {
        let path = format!("{}/messages", ticket_path(&ticket));
        let answer = post(&server, &me, &path, &json!({ "message": message }));
        assert_eq!(
            (answer.0, answer.1["error"]["fields"][0]["field"].as_str()),
            (422, Some("message")),
            "{message}"
        );
    }

    let res = server
        .client()
        .post(server.url(TICKETS))
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
    assert_eq!(
        (count(&server, "tickets"), count(&server, "messages")),
        ("2".into(), "2".into())
    );
}

#[test]
fn a_failed_first_message_leaves_no_ticket_behind() {
    let server = TestServer::start(ServerConfig::app());
    let me = server.customer();
    // A rule the component does not know makes the second INSERT fail after the first.
    psql_db(
        &server.db,
        "ALTER TABLE support.messages ADD CONSTRAINT test_no_boom CHECK (body <> 'boom')",
    );
    let answer = post(
        &server,
        &me,
        TICKETS,
        &json!({"subject": "s", "message": "boom"}),
    );
    assert_eq!(error_code(&answer), (500, Some("internal")), "{}", answer.1);
    assert_eq!(
        (count(&server, "tickets"), count(&server, "messages")),
        ("0".into(), "0".into())
    );

    // The connection went back to the pool clean: the next requests work.
    let ticket = open_ticket(&server, &me, "После ошибки");
    let staff = server.staff();
    assert_eq!(write(&server, &staff, &ticket, "boom").0, 500);
    assert_eq!(status_of(&server, &me, &ticket), "open");
    assert_eq!(write(&server, &staff, &ticket, "Ответ").0, 201);
    assert_eq!(status_of(&server, &me, &ticket), "answered");
}

#[test]
fn ticket_about_an_order_is_503_when_order_service_is_unroutable() {
    if common::we_do_better(common::UNROUTABLE_CHAINING) {
        return;
    }
    let config = ServerConfig::app().env(
        "SPIN_VARIABLE_ORDER_SERVICE_URL",
        "http://nosuch.spin.internal",
    );
    let server = TestServer::start(config);
    let me = server.customer();
    let body =
        json!({"subject": "s", "message": "m", "order_id": uuid::Uuid::new_v4().to_string()});
    let answer = post(&server, &me, TICKETS, &body);
    assert_eq!(
        error_code(&answer),
        (503, Some("order_service_unavailable")),
        "{}",
        answer.1
    );
    assert_eq!(count(&server, "tickets"), "0");
    // A ticket about no order needs no order-service.
    open_ticket(&server, &me, "Без заказа");
}

#[test]
fn tickets_and_messages_survive_a_restart() {
    let mut server = TestServer::start(ServerConfig::app());
    let (me, staff) = (server.customer(), server.staff());
    let ticket = open_ticket(&server, &me, "Перезапуск");
    write(&server, &staff, &ticket, "Ответ до перезапуска");
    let (_, before) = get(&server, &me, &ticket_path(&ticket));
    server.restart();
    assert_eq!(get(&server, &me, &ticket_path(&ticket)), (200, before));
    assert_eq!(
        ids(&get(&server, &me, TICKETS).1),
        [ticket["id"].as_str().unwrap()]
    );
}

#[test]
fn health_is_public_and_everything_else_needs_a_token() {
    let server = TestServer::start(ServerConfig::app());
    let (status, health) = server.call("GET", "/api/support/health", None, None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));

    let id = uuid::Uuid::new_v4();
    for (method, path) in [
        ("POST", TICKETS.to_owned()),
        ("GET", TICKETS.to_owned()),
        ("GET", format!("{TICKETS}/{id}")),
        ("POST", format!("{TICKETS}/{id}/messages")),
        ("PATCH", format!("{TICKETS}/{id}/status")),
    ] {
        let answer = server.call(method, &path, None, Some(&json!({})));
        assert_eq!(
            error_code(&answer),
            (401, Some("missing_token")),
            "{method} {path}"
        );
    }

    let me = server.customer();
    let answer = get(&server, &me, "/api/support/faq");
    assert_eq!(error_code(&answer), (404, Some("not_found")));
    let res = server
        .client()
        .delete(server.url(TICKETS))
        .bearer_auth(&me.token)
        .send()
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["allow"], "GET, POST");
    assert_eq!(
        res.json::<Value>().unwrap()["error"]["code"],
        "method_not_allowed"
    );
}
