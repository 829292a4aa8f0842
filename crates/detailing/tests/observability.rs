//! Observability end to end: request ids on responses, in the guest's request, across chained
//! calls and in the JSON log lines of every component a request touched; the Prometheus
//! endpoint's request counters, latency histograms, limit hits, pool gauges and relay numbers.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{probe_manifest, psql_db, ServerConfig, TestServer, TestVhost};
use serde_json::{json, Value};

/// Why these tests are skipped under `SPIN_BIN` (see `common::host_only`).
const WHY_HOST_ONLY: &str = "our host's metrics, request ids and log format (--metrics-listen, --log-format); Spin has no equivalent (we do better)";

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";

fn observed(config: ServerConfig) -> TestServer {
    TestServer::start(
        config
            .arg("--metrics-listen")
            .arg("127.0.0.1:0")
            .arg("--log-format")
            .arg("json"),
    )
}

/// The metrics URL the server announced (before `Serving`, so it is there once started).
fn metrics_url(server: &TestServer) -> String {
    server
        .log()
        .lines()
        .find_map(|line| line.strip_prefix("Metrics "))
        .unwrap_or_else(|| panic!("no `Metrics` line:\n{}", server.log()))
        .trim()
        .to_owned()
}

/// One scrape: each series (`name{labels}`) and its value, plus the raw text.
fn scrape(server: &TestServer) -> (HashMap<String, f64>, String) {
    let response = server.client().get(metrics_url(server)).send().unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().unwrap();
    let series = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (name, value) = line.rsplit_once(' ').unwrap();
            (name.to_owned(), value.parse().unwrap())
        })
        .collect();
    (series, text)
}

fn value(series: &HashMap<String, f64>, key: &str, text: &str) -> f64 {
    *series
        .get(key)
        .unwrap_or_else(|| panic!("no `{key}` in:\n{text}"))
}

/// The JSON log lines with `message == "request"` and this request id; polls briefly, since
/// stderr is read by another thread.
fn request_lines(server: &TestServer, id: &str, at_least: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let lines: Vec<Value> = server
            .log()
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).expect("every log line is JSON"))
            .filter(|line: &Value| line["message"] == "request" && line["request_id"] == id)
            .collect();
        if lines.len() >= at_least || Instant::now() > deadline {
            return lines;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_chained_order_creation_shares_one_request_id_in_logs_and_counts_both_components() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = observed(ServerConfig::app());
    let me = server.customer();
    let client = server.client();

    // Without an id from the client, the host makes one up and answers with it.
    let vin = "XTA210930Y2765432";
    let car = json!({"license_plate": "А123БВ799", "vin": vin, "make": "Lada", "model": "Vesta", "year": 2021});
    let response = client
        .post(server.url("/api/cars"))
        .bearer_auth(&me.token)
        .json(&car)
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    let generated = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");
    let car: Value = response.json().unwrap();

    // A client's own id is kept, answered, and carried into the chained call to car-service.
    let id = format!("obs-{}", uuid::Uuid::new_v4().simple());
    let order = json!({"car_id": car["id"], "desired_time": common::next_slot(), "description": "Full detailing"});
    let response = client
        .post(server.url("/api/orders"))
        .bearer_auth(&me.token)
        .header("x-request-id", &id)
        .json(&order)
        .send()
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-request-id"], id.as_str());

    let lines = request_lines(&server, &id, 2);
    let line = |component: &str| {
        lines
            .iter()
            .find(|line| line["component"] == component)
            .unwrap_or_else(|| panic!("no {component} line for {id} in {lines:#?}"))
    };
    let order_line = line("order-service");
    assert_eq!(order_line["method"], "POST");
    assert_eq!(order_line["path"], "/api/orders");
    assert_eq!(order_line["status"], 201);
    assert!(order_line["duration_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(order_line["level"], "INFO");
    let car_line = line("car-service");
    assert_eq!(car_line["method"], "GET");
    assert_eq!(
        car_line["path"],
        format!("/api/cars/{}", car["id"].as_str().unwrap())
    );
    assert_eq!(car_line["status"], 200);
    // The chained request's line sits in its caller's span.
    assert_eq!(car_line["span"]["component"], "order-service");
    assert_eq!(car_line["span"]["request_id"], id.as_str());

    // An id that is not 1-128 visible ASCII characters is replaced.
    let response = client
        .get(server.url("/api/cars/health"))
        .header("x-request-id", "two words")
        .send()
        .unwrap();
    let replaced = response.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");

    let (series, text) = scrape(&server);
    let get = |key: &str| value(&series, key, &text);
    // car-service: the car's creation and the chained lookup; then its health check.
    assert_eq!(
        get(r#"detailing_http_requests_total{component="car-service",status_class="2xx"}"#),
        3.0
    );
    assert_eq!(
        get(r#"detailing_http_requests_total{component="order-service",status_class="2xx"}"#),
        1.0
    );
    assert_eq!(
        get(r#"detailing_http_requests_total{component="order-service",status_class="5xx"}"#),
        0.0
    );
    assert!(text.contains("# TYPE detailing_http_request_duration_seconds histogram"));
    assert_eq!(
        get(r#"detailing_http_request_duration_seconds_count{component="car-service"}"#),
        3.0
    );
    assert_eq!(
        get(r#"detailing_http_request_duration_seconds_bucket{component="car-service",le="+Inf"}"#),
        3.0
    );
    assert!(
        get(r#"detailing_http_request_duration_seconds_bucket{component="order-service",le="30"}"#)
            >= 1.0
    );
    assert!(get(r#"detailing_http_request_duration_seconds_sum{component="order-service"}"#) > 0.0);
    assert_eq!(
        get(r#"detailing_instance_limit_hits_total{component="order-service",limit="deadline"}"#),
        0.0
    );
    // Each of car-service's three requests ran in a new instance or a reused one; with reuse
    // turned off (a fresh instance per request, as under Spin) never a reused one.
    let new = get(r#"detailing_instance_requests_total{component="car-service",instance="new"}"#);
    let reused =
        get(r#"detailing_instance_requests_total{component="car-service",instance="reused"}"#);
    assert_eq!(new + reused, 3.0);
    if std::env::var("DETAILING_MAX_INSTANCE_REUSE_COUNT").as_deref() == Ok("1") {
        assert_eq!(reused, 0.0);
    }
    assert!(
        text.contains("# TYPE detailing_instances_idle gauge"),
        "{text}"
    );
    let pool = format!("127.0.0.1:5432/{}", server.db.name);
    for state in ["in_use", "idle"] {
        get(&format!(
            r#"detailing_postgres_pool_connections{{pool="{pool}",state="{state}"}}"#
        ));
    }
    assert_eq!(
        get(&format!(
            r#"detailing_postgres_pool_connections{{pool="{pool}",state="max"}}"#
        )),
        16.0
    );
    // Not configured, not shown.
    assert!(!text.contains("relay_"), "{text}");
}

const PROBE_ROUTES: &str = r#"
[[trigger.http]]
route = "/probe/..."
component = "probe"
[[trigger.http]]
route = { private = true }
component = "hidden"
[component.hidden]
source = "PROBE"
allowed_outbound_hosts = []
"#;

#[test]
fn the_guest_sees_the_id_outbound_calls_carry_it_and_limit_hits_are_counted() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let probe = common::wasm_dir().join("probe.wasm");
    let manifest = probe_manifest(&PROBE_ROUTES.replace("PROBE", &probe.display().to_string()));
    let config = ServerConfig {
        manifest,
        env: Vec::new(),
        args: Vec::new(),
    }
    .arg("--memory-mb")
    .arg("32")
    .arg("--request-timeout-ms")
    .arg("1000");
    let server = observed(config);
    let client = server.client();
    let get = |path: &str, id: &str| {
        let response = client
            .get(server.url(path))
            .header("x-request-id", id)
            .send()
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json::<Value>().unwrap_or(Value::Null))
    };

    let (status, echo) = get("/probe/echo", "probe-1");
    assert_eq!(status, 200);
    assert_eq!(echo["headers"]["x-request-id"], "probe-1");

    // The probe sends no id of its own: the host adds the one its request carries.
    let (status, outer) = get(
        "/probe/outbound?url=http://hidden.spin.internal/inside",
        "chain-1",
    );
    assert_eq!(status, 200, "{outer}");
    let inner: Value = serde_json::from_str(outer["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["headers"]["x-request-id"], "chain-1");
    assert_eq!(request_lines(&server, "chain-1", 2).len(), 2);

    assert_eq!(get("/probe/alloc", "alloc-1").0, 500);
    assert_eq!(get("/probe/loop", "loop-1").0, 504);
    let deadline_line = &request_lines(&server, "loop-1", 1)[0];
    assert_eq!(deadline_line["status"], 504);

    let (series, text) = scrape(&server);
    let get = |key: &str| value(&series, key, &text);
    assert_eq!(
        get(r#"detailing_instance_limit_hits_total{component="probe",limit="memory"}"#),
        1.0
    );
    assert_eq!(
        get(r#"detailing_instance_limit_hits_total{component="probe",limit="deadline"}"#),
        1.0
    );
    assert_eq!(
        get(r#"detailing_http_requests_total{component="probe",status_class="2xx"}"#),
        2.0
    );
    assert_eq!(
        get(r#"detailing_http_requests_total{component="probe",status_class="5xx"}"#),
        2.0
    );
    assert_eq!(
        get(r#"detailing_http_requests_total{component="hidden",status_class="2xx"}"#),
        1.0
    );
    // The looping request ran for its full second: at most the other three are under 0.5 s.
    assert!(
        get(r#"detailing_http_request_duration_seconds_bucket{component="probe",le="0.5"}"#) <= 3.0
    );
    assert_eq!(
        get(r#"detailing_http_request_duration_seconds_count{component="probe"}"#),
        4.0
    );
}

#[test]
fn a_paid_order_shows_in_the_relay_metrics_and_its_delivery_carries_the_event_id() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let vhost = TestVhost::create();
    let server = observed(ServerConfig::app().with_relay(&vhost));
    let me = server.customer();
    let car = json!({"license_plate": "А123БВ799", "vin": "XTA210930Y1234567", "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", me.token(), Some(&car));
    assert_eq!(status, 201, "{car}");
    let order = json!({"car_id": car["id"], "desired_time": common::next_slot(),
        "items": [{"catalog_id": WASH, "quantity": 2}]});
    let (status, order) = server.call("POST", "/api/orders", me.token(), Some(&order));
    assert_eq!(status, 201, "{order}");
    let pay = json!({"order_id": order["id"], "payment_method": "card"});
    let (status, payment) = server.call("POST", "/api/payments", me.token(), Some(&pay));
    assert_eq!(status, 201, "{payment}");

    let deadline = Instant::now() + Duration::from_secs(30);
    let (series, text) = loop {
        let (series, text) = scrape(&server);
        let done = series.get("detailing_relay_published_total") >= Some(&1.0)
            && series.get("detailing_relay_outbox_depth") == Some(&0.0)
            && series.get(r#"detailing_relay_delivered_total{outcome="acked"}"#) >= Some(&1.0);
        if done || Instant::now() > deadline {
            break (series, text);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let get = |key: &str| value(&series, key, &text);
    assert_eq!(
        get("detailing_relay_published_total"),
        1.0,
        "{}",
        server.log()
    );
    assert_eq!(get("detailing_relay_outbox_depth"), 0.0);
    assert_eq!(get("detailing_relay_lag_seconds"), 0.0);
    assert_eq!(
        get(r#"detailing_relay_delivered_total{outcome="acked"}"#),
        1.0
    );
    assert_eq!(
        get(r#"detailing_relay_delivered_total{outcome="dead_lettered"}"#),
        0.0
    );
    assert!(text.contains("# TYPE detailing_relay_lag_seconds gauge"));

    // bonus-service's request for the event is found by the event's id.
    let event_id = psql_db(&server.db, "SELECT event_id::text FROM payments.outbox");
    let lines = request_lines(&server, &format!("relay-{event_id}"), 1);
    assert_eq!(lines.len(), 1, "{}", server.log());
    assert_eq!(lines[0]["component"], "bonus-service");
    assert_eq!(lines[0]["status"], 200);
}
