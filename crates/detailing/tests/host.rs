//! The host's behaviour that needs PostgreSQL or the CLI, end to end through the real binary
//! with the probe guest: Postgres values, empty results and transactions; a restart that
//! loads from the compile cache while shutdown finishes in-flight requests. The rest of the
//! host's behaviour is tested in process, in `crates/runtime/tests` (docs/testing.md).

mod common;

use common::{probe_manifest, ServerConfig, TestServer};
use serde_json::Value;
use std::time::Duration;

/// Why these tests are skipped under `SPIN_BIN` (see `common::host_only`).
const WHY_HOST_ONLY: &str = "our host's behaviour, checked with the probe manifest (compile cache, graceful restart) — host-internal";

const ROUTES: &str = r#"
[[trigger.http]]
route = "/probe/..."
component = "probe"
"#;

fn probe_server() -> TestServer {
    TestServer::start(ServerConfig {
        manifest: probe_manifest(ROUTES),
        env: Vec::new(),
        args: Vec::new(),
    })
}

fn get_json(server: &TestServer, path: &str) -> (u16, Value) {
    let res = server.client().get(server.url(path)).send().unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

#[test]
fn postgres_types_empty_results_and_transactions() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server();
    let (status, body) = get_json(&server, "/probe/pg");
    assert_eq!(status, 200, "{body}\n{}", server.log());
    assert_eq!(body["t"], "hello");
    assert_eq!(body["i"], 42);
    assert_eq!(body["b"], 9_000_000_000i64);
    assert_eq!(body["flag"], true);
    assert_eq!(
        body["at"],
        "DbValue::Datetime((2026, 11, 25, 10, 30, 0, 0))"
    );
    assert_eq!(body["id"].as_str().unwrap().len(), 36);
    assert_eq!(body["doc"], "{\"a\": 1}");
    assert_eq!(body["nothing"], Value::Null);
    assert_eq!(body["money"], "DbValue::Unsupported");
    assert_eq!(body["empty_rows"], 0);
    assert_eq!(body["empty_columns"], 1);
    assert_eq!(body["inserted"], 2);
    assert!(
        body["bad_uuid_error"].as_str().unwrap().contains("uuid"),
        "{body}"
    );
}

#[test]
fn restart_uses_the_compile_cache_and_shutdown_finishes_in_flight_requests() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let mut server = probe_server();
    let url = server.url("/probe/sleep?ms=1500");
    let slow = std::thread::spawn(move || {
        let res = reqwest::blocking::Client::new().get(url).send().unwrap();
        res.status().as_u16()
    });
    std::thread::sleep(Duration::from_millis(400));
    server.restart();
    assert_eq!(
        slow.join().unwrap(),
        200,
        "in-flight request was cut:\n{}",
        server.log()
    );
    assert!(
        server.log().contains("component probe ready (from cache"),
        "{}",
        server.log()
    );
    assert_eq!(get_json(&server, "/probe/echo").0, 200);
}
