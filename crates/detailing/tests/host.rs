//! The host's Spin behaviour, end to end through the real binary, with a probe guest.

mod common;

use common::{probe_manifest, ServerConfig, TestServer};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Why these tests are skipped under `SPIN_BIN` (see `common::host_only`).
const WHY_HOST_ONLY: &str = "our host's behaviour, checked with the probe manifest (routing, limits, deadlines, compile cache) — host-internal";

const ROUTES: &str = r#"
[[trigger.http]]
route = "/probe/..."
component = "probe"
[[trigger.http]]
route = "/items/:id/parts/:part"
component = "probe"
[[trigger.http]]
route = "/exact"
component = "probe"
[[trigger.http]]
route = { private = true }
component = "hidden"
[component.hidden]
source = "PROBE"
"#;

fn probe_server(args: &[&str]) -> TestServer {
    let probe = common::wasm_dir().join("probe.wasm");
    let manifest = probe_manifest(&ROUTES.replace("PROBE", &probe.display().to_string()));
    let mut config = ServerConfig {
        manifest,
        env: Vec::new(),
        args: Vec::new(),
    };
    for a in args {
        config = config.arg(a);
    }
    TestServer::start(config)
}

fn get_json(server: &TestServer, path: &str) -> (u16, Value) {
    let res = server.client().get(server.url(path)).send().unwrap();
    let status = res.status().as_u16();
    let text = res.text().unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, body)
}

#[test]
fn wildcard_route_presents_spin_headers_and_drops_spoofed_ones() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&[]);
    let res = server
        .client()
        .get(server.url("/probe/echo/x?y=1"))
        .header("spin-client-addr", "1.2.3.4:5")
        .header("spin-path-match-evil", "yes")
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().unwrap();
    let h = &body["headers"];
    assert_eq!(h["spin-path-info"], "/echo/x");
    assert_eq!(h["spin-matched-route"], "/probe/...");
    assert_eq!(h["spin-component-route"], "/probe");
    assert_eq!(h["spin-raw-component-route"], "/probe/...");
    assert_eq!(h["spin-base-path"], "/");
    assert_eq!(h["spin-full-url"], server.url("/probe/echo/x?y=1"));
    assert_eq!(body["uri"], server.url("/probe/echo/x?y=1"));
    assert!(h["spin-client-addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(h.get("spin-path-match-evil").is_none());
    assert!(h.get("host").is_none());
}

#[test]
fn param_routes_exact_routes_and_unrouted_paths() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&[]);
    let (status, body) = get_json(&server, "/items/7/parts/door");
    assert_eq!(status, 200);
    assert_eq!(body["headers"]["spin-path-match-id"], "7");
    assert_eq!(body["headers"]["spin-path-match-part"], "door");
    assert_eq!(body["headers"]["spin-path-info"], "");

    assert_eq!(get_json(&server, "/exact/").0, 200);
    assert_eq!(get_json(&server, "/exact/more").0, 404);
    assert_eq!(get_json(&server, "/probex").0, 404);
    let res = server
        .client()
        .delete(server.url("/nowhere"))
        .send()
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.text().unwrap(), "");
}

#[test]
fn private_routes_are_reachable_only_by_chaining() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&[]);
    assert_eq!(get_json(&server, "/hidden").0, 404);
    let (status, body) = get_json(
        &server,
        "/probe/outbound?url=http://hidden.spin.internal/inside?q=1",
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], 200);
    let inner: Value = serde_json::from_str(body["body"].as_str().unwrap()).unwrap();
    assert_eq!(inner["headers"]["spin-client-addr"], "0.0.0.0:0");
    assert_eq!(inner["headers"]["spin-path-info"], "/inside");
    assert_eq!(inner["headers"]["spin-matched-route"], "/...");
    assert_eq!(inner["uri"], "http://hidden.spin.internal/inside?q=1");
}

#[test]
fn outbound_to_a_host_not_allowed_is_refused_and_logged() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&[]);
    let (status, body) = get_json(&server, "/probe/outbound?url=http://example.com/");
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{body}"
    );
    let (status, body) = get_json(&server, "/probe/outbound?url=http://nosuch.spin.internal/");
    assert_eq!(status, 502, "{body}");
    assert!(
        server.log().contains("http://example.com:80"),
        "{}",
        server.log()
    );
    // The host is unharmed.
    assert_eq!(get_json(&server, "/probe/echo").0, 200);
}

#[test]
fn a_looping_guest_hits_the_deadline_while_others_are_served() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    // One HTTP worker thread: the looping guest shares it with every other connection, so the
    // others are served only if a busy guest yields the thread.
    let server = probe_server(&["--request-timeout-ms", "3000", "--http-workers", "1"]);
    let base = server.url("/probe/loop");
    let looping = std::thread::spawn(move || {
        let started = Instant::now();
        let res = reqwest::blocking::Client::new().get(base).send().unwrap();
        (
            res.status().as_u16(),
            res.text().unwrap(),
            started.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..5 {
        assert_eq!(get_json(&server, "/probe/echo").0, 200);
    }
    assert!(
        !looping.is_finished(),
        "the other requests were only served once the looping guest had been stopped"
    );
    let (status, body, elapsed) = looping.join().unwrap();
    assert_eq!(status, 504, "{body}");
    assert!(body.contains("deadline_exceeded"), "{body}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
}

#[test]
fn traps_and_memory_exhaustion_cost_one_500_not_the_host() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&["--memory-mb", "32"]);
    let (status, body) = get_json(&server, "/probe/panic");
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "component_failed");
    let (status, _) = get_json(&server, "/probe/alloc");
    assert_eq!(status, 500);
    assert_eq!(get_json(&server, "/probe/echo").0, 200);
}

#[test]
fn bodies_over_the_cap_get_413() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&["--max-body-bytes", "1024"]);
    let client = server.client();
    let ok = client
        .post(server.url("/probe/echo"))
        .body(vec![b'a'; 1000])
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.json::<Value>().unwrap()["body_len"], 1000);
    let big = client
        .post(server.url("/probe/echo"))
        .body(vec![b'a'; 4096])
        .send()
        .unwrap();
    assert_eq!(big.status(), 413);
    assert_eq!(
        big.json::<Value>().unwrap()["error"]["code"],
        "payload_too_large"
    );
    // Without a Content-Length (chunked), the cap still holds.
    let response = chunked_request(&server, "/probe/echo", 8);
    assert!(response.starts_with("HTTP/1.1 413"), "{response}");
}

/// POSTs `chunks` chunks of 512 bytes with chunked encoding over a plain socket; returns the answer.
fn chunked_request(server: &TestServer, path: &str, chunks: usize) -> String {
    use std::io::{Read, Write};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    for _ in 0..chunks {
        // The server may answer and close before reading everything: ignore write errors.
        let _ = stream.write_all(b"200\r\n");
        let _ = stream.write_all(&[b'b'; 512]);
        let _ = stream.write_all(b"\r\n");
    }
    let _ = stream.write_all(b"0\r\n\r\n");
    let mut buf = Vec::new();
    let _ = stream.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).to_string()
}

#[test]
fn postgres_types_empty_results_and_transactions() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&[]);
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
fn variables_are_scoped_to_the_component() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&[]);
    let (status, body) = get_json(&server, "/probe/variable?name=postgres_url");
    assert_eq!(status, 200);
    assert_eq!(body["value"], server.db.url());
    assert_eq!(get_json(&server, "/probe/variable?name=jwt_secret").0, 404);
}

#[test]
fn well_known_paths_answer_before_routing() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = probe_server(&[]);
    let res = server
        .client()
        .get(server.url("/.well-known/spin/health"))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().unwrap(), "OK");
    let (status, body) = get_json(&server, "/.well-known/spin/info");
    assert_eq!(status, 200);
    assert_eq!(body["name"], "probe-app");
    assert_eq!(body["version"], "9.9.9");
}

#[test]
fn restart_uses_the_compile_cache_and_shutdown_finishes_in_flight_requests() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let mut server = probe_server(&[]);
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
