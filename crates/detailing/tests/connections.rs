//! What a flood of logins can cost the app's other services, end to end through the real
//! binary with the app and its database: a component at its concurrency cap turns requests
//! away with Retry-After while the others keep answering, also with a thousand idle
//! connections open. What one hostile client can cost the host (slow or idle connections,
//! oversized heads, a bad Host, the connection cap, answers given before the body is read) is
//! tested in process, in `crates/runtime/tests/connections.rs` (docs/testing.md).

mod common;

use common::{ServerConfig, TestServer};
use serde_json::{json, Value};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Why these tests are skipped under `SPIN_BIN` (see `common::host_only`).
const WHY_HOST_ONLY: &str = "our per-component concurrency caps (--component-concurrency); Spin has no equivalent (we do better)";

fn connect(server: &TestServer) -> TcpStream {
    let stream = TcpStream::connect(server.base.trim_start_matches("http://")).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
}

/// The app with password hashing at its production cost, for the login-flood tests.
fn app_server(extra: &[&str]) -> TestServer {
    let mut config = ServerConfig::app().env("SPIN_VARIABLE_BCRYPT_COST", "12");
    for arg in extra {
        config = config.arg(arg);
    }
    TestServer::start(config)
}

fn register(server: &TestServer, email: &str) {
    let body = json!({"email": email, "password": "correct horse battery",
        "full_name": "Flood Test", "phone_number": "+79991234567"});
    let (status, answer) = server.call("POST", "/api/users/register", None, Some(&body));
    assert_eq!(status, 201, "{answer}");
}

fn login_status(server: &TestServer, email: &str) -> (u16, Option<String>) {
    let body = json!({"email": email, "password": "correct horse battery"});
    let response = server
        .client()
        .post(server.url("/api/users/login"))
        .json(&body)
        .send()
        .unwrap();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry)
}

#[test]
fn a_component_at_its_concurrency_cap_answers_503_with_retry_after() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = app_server(&["--component-concurrency", "user-service=1:1"]);
    register(&server, "capped@example.com");
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|scope| {
        let logins: Vec<_> = (0..8)
            .map(|_| scope.spawn(|| login_status(&server, "capped@example.com")))
            .collect();
        logins.into_iter().map(|l| l.join().unwrap()).collect()
    });
    let ok = statuses.iter().filter(|(s, _)| *s == 200).count();
    let busy: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert!(ok >= 2, "{statuses:?}");
    assert!(!busy.is_empty(), "{statuses:?}");
    assert!(busy.iter().all(|(_, retry)| retry.as_deref() == Some("1")));
    assert_eq!(ok + busy.len(), statuses.len(), "{statuses:?}");
}

#[test]
fn idle_connections_and_a_login_flood_do_not_stop_other_services() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = app_server(&[]);
    register(&server, "flood@example.com");
    let owner = server.customer();
    let car = json!({"owner_id": owner.id, "license_plate": "А123БВ799",
        "vin": "1HGCM82633A004352", "make": "Toyota", "model": "Camry", "year": 2020});
    let (status, car) = server.call("POST", "/api/cars", owner.token(), Some(&car));
    assert_eq!(status, 201, "{car}");
    let car_path = format!("/api/cars/{}", car["id"].as_str().unwrap());

    // A thousand connections that never send anything.
    let idle: Vec<TcpStream> = (0..1000).map(|_| connect(&server)).collect();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let (mut latencies, logins) = std::thread::scope(|scope| {
        let flood: Vec<_> = (0..24)
            .map(|_| {
                scope.spawn(|| {
                    let mut answered = Vec::new();
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        answered.push(login_status(&server, "flood@example.com").0);
                    }
                    answered
                })
            })
            .collect();
        // Let the flood build up, then read the car while it goes on.
        std::thread::sleep(Duration::from_millis(500));
        let client = server.client();
        let mut latencies = Vec::new();
        for _ in 0..40 {
            let started = Instant::now();
            let response = client
                .get(server.url(&car_path))
                .bearer_auth(&owner.token)
                .send()
                .unwrap();
            assert_eq!(response.status(), 200);
            let _: Value = response.json().unwrap();
            latencies.push(started.elapsed());
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let logins: Vec<u16> = flood.into_iter().flat_map(|f| f.join().unwrap()).collect();
        (latencies, logins)
    });
    drop(idle);
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    // Generous bounds: the point is that car-service is not starved behind the hashing
    // (uncapped, each read waited behind a dozen 270 ms hashes per core).
    assert!(
        median < Duration::from_millis(300),
        "median {median:?}, all {latencies:?}"
    );
    assert!(logins.contains(&200), "{logins:?}");
    assert!(
        logins.iter().all(|s| matches!(s, 200 | 503 | 429)),
        "{logins:?}"
    );
}
