//! The host's Spin behaviour with the probe guest, in process (no CLI, no database): routes,
//! `spin-*` headers, private routes and chaining, refused outbound calls, the deadline, traps,
//! the memory cap, the body cap, variables and Spin's well-known paths.

mod common;

use common::{Setup, TestHost};
use serde_json::Value;
use std::time::{Duration, Instant};

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

fn probe_host() -> TestHost {
    Setup::new(ROUTES).start()
}

#[test]
fn wildcard_route_presents_spin_headers_and_drops_spoofed_ones() {
    let server = probe_host();
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
    let server = probe_host();
    let (status, body) = server.get_json("/items/7/parts/door");
    assert_eq!(status, 200);
    assert_eq!(body["headers"]["spin-path-match-id"], "7");
    assert_eq!(body["headers"]["spin-path-match-part"], "door");
    assert_eq!(body["headers"]["spin-path-info"], "");

    assert_eq!(server.get_json("/exact/").0, 200);
    assert_eq!(server.get_json("/exact/more").0, 404);
    assert_eq!(server.get_json("/probex").0, 404);
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
    let server = probe_host();
    assert_eq!(server.get_json("/hidden").0, 404);
    let (status, body) =
        server.get_json("/probe/outbound?url=http://hidden.spin.internal/inside?q=1");
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
    let server = probe_host();
    let (status, body) = server.get_json("/probe/outbound?url=http://example.com/");
    assert_eq!(status, 502, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("HttpRequestDenied"),
        "{body}"
    );
    let (status, body) = server.get_json("/probe/outbound?url=http://nosuch.spin.internal/");
    assert_eq!(status, 502, "{body}");
    assert!(
        server.log().contains("http://example.com:80"),
        "{}",
        server.log()
    );
    // The host is unharmed.
    assert_eq!(server.get_json("/probe/echo").0, 200);
}

#[test]
fn a_looping_guest_hits_the_deadline_while_others_are_served() {
    // The test host has one thread: the looping guest shares it with every other connection,
    // so the others are served only if a busy guest yields the thread.
    let server = Setup::new(ROUTES)
        .limits(|l| l.request_timeout = Duration::from_millis(3000))
        .start();
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
        assert_eq!(server.get_json("/probe/echo").0, 200);
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
    let server = Setup::new(ROUTES)
        .limits(|l| l.memory_bytes = 32 << 20)
        .start();
    // Guests write to the host's stderr: the probe's panic message shows in the test's output.
    let (status, body) = server.get_json("/probe/panic");
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "component_failed");
    let (status, _) = server.get_json("/probe/alloc");
    assert_eq!(status, 500);
    assert_eq!(server.get_json("/probe/echo").0, 200);
}

#[test]
fn bodies_over_the_cap_get_413() {
    let server = Setup::new(ROUTES)
        .limits(|l| l.max_body_bytes = 1024)
        .start();
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
fn chunked_request(server: &TestHost, path: &str, chunks: usize) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).unwrap();
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
fn variables_are_scoped_to_the_component() {
    let server = probe_host();
    let (status, body) = server.get_json("/probe/variable?name=postgres_url");
    assert_eq!(status, 200);
    assert_eq!(body["value"], common::TEST_POSTGRES_URL);
    assert_eq!(server.get_json("/probe/variable?name=jwt_secret").0, 404);
}

#[test]
fn well_known_paths_answer_before_routing() {
    let server = probe_host();
    let res = server
        .client()
        .get(server.url("/.well-known/spin/health"))
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().unwrap(), "OK");
    let (status, body) = server.get_json("/.well-known/spin/info");
    assert_eq!(status, 200);
    assert_eq!(body["name"], "probe-app");
    assert_eq!(body["version"], "9.9.9");
}
