//! What one hostile client can cost the host, in process (no CLI, no database): slow or idle
//! connections are closed on time, oversized heads get 431, a Host that is not an authority
//! gets 400, connections beyond the cap are refused at once, and an answer given before the
//! request's body was read closes the connection and says so.

mod common;

use common::{Setup, TestHost};
use runtime::Concurrency;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const ROUTES: &str = r#"
[[trigger.http]]
route = "/probe/..."
component = "probe"
"#;

fn connect(server: &TestHost) -> TcpStream {
    let stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    stream
}

/// Sends `request` as is and reads the answer until the server closes.
fn raw(server: &TestHost, request: &[u8]) -> String {
    let mut stream = connect(server);
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// True once the server has closed `stream` (a read returns end of file or an error); false
/// when the read timed out with the connection still open.
fn closed_by_server(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Ok(n) => n == 0,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

#[test]
fn slow_header_connections_are_closed_within_the_timeout_while_others_are_served() {
    let server = Setup::new(ROUTES)
        .connections(|c| c.header_read_timeout = Duration::from_millis(1000))
        .start();
    let started = Instant::now();
    let slow: Vec<TcpStream> = (0..30).map(|_| connect(&server)).collect();
    let mut slow = std::thread::scope(|scope| {
        let dribbler = scope.spawn(move || {
            let mut slow = slow;
            // One header byte per connection every 100 ms: each keeps "sending" its head.
            let head = b"GET /probe/echo HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for &byte in head.iter().cycle().take(40) {
                for stream in slow.iter_mut() {
                    // Once the server has closed a connection, writes to it fail: fine.
                    let _ = stream.write_all(&[byte]);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            slow
        });
        // Meanwhile a well-behaved client is served.
        for _ in 0..10 {
            let response = server
                .client()
                .get(server.url("/probe/echo"))
                .send()
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        dribbler.join().unwrap()
    });
    // Every slow connection was closed by the server, well before its head was done.
    for stream in slow.iter_mut() {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        assert!(closed_by_server(stream), "a slow connection is still open");
    }
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn an_idle_connection_is_closed_after_the_idle_timeout_and_a_busy_one_is_not() {
    let server = Setup::new(ROUTES)
        .connections(|c| {
            c.idle_timeout = Duration::from_millis(800);
            c.header_read_timeout = Duration::from_millis(5000);
        })
        .start();
    // Nothing sent at all.
    let mut idle = connect(&server);
    let started = Instant::now();
    assert!(closed_by_server(&mut idle));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );
    // A kept-alive connection serves request after request as long as it is not idle.
    let client = server.client();
    for _ in 0..4 {
        let response = client.get(server.url("/probe/echo")).send().unwrap();
        assert_eq!(response.status(), 200);
        std::thread::sleep(Duration::from_millis(300));
    }
    // After an answer, a kept-alive connection has the idle timeout again.
    let mut kept = connect(&server);
    kept.write_all(b"GET /probe/echo HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let answer = read_answer(&mut kept);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.300}");
    let started = Instant::now();
    assert!(closed_by_server(&mut kept));
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_secs(5),
        "closed {waited:?} after the answer"
    );
}

/// Reads one whole answer from `stream` and leaves the connection open.
fn read_answer(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|n| n.trim().parse::<usize>().ok());
            let done = match length {
                Some(length) => answer.len() >= end + 4 + length,
                // Chunked: the last chunk is empty.
                None => answer.ends_with(b"\r\n0\r\n\r\n"),
            };
            if done {
                return String::from_utf8_lossy(&answer).into_owned();
            }
        }
        let n = stream.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "closed mid-answer: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn a_head_over_the_cap_gets_431() {
    let server = Setup::new(ROUTES)
        .connections(|c| c.max_header_bytes = 16384)
        .start();
    let big = "a".repeat(96 << 10);
    let answer = raw(
        &server,
        format!("GET /probe/echo HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:.200}");
    // A head under the cap is served.
    let small = "a".repeat(8 << 10);
    let answer = raw(
        &server,
        format!(
            "GET /probe/echo HTTP/1.1\r\nHost: x\r\nX-Small: {small}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer:.200}");
}

#[test]
fn a_host_header_that_is_not_an_authority_is_refused_before_routing() {
    let server = Setup::new(ROUTES).start();
    for host in [
        "x/api/bonuses/events?",
        "x?y",
        "x#y",
        "user@x",
        "x:port",
        "x y",
    ] {
        let answer = raw(
            &server,
            format!("GET /probe/echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        // hyper itself refuses some of these as malformed; either way never a 200.
        assert!(
            answer.starts_with("HTTP/1.1 400"),
            "Host {host:?}: {answer:.300}"
        );
        if answer.contains("invalid_host") {
            assert!(
                !server.log().contains("/api/bonuses/events"),
                "{}",
                server.log()
            );
        }
    }
    let answer = raw(
        &server,
        b"GET /probe/echo HTTP/1.1\r\nHost: x/api/bonuses/events?\r\nConnection: close\r\n\r\n",
    );
    assert!(answer.contains("invalid_host"), "{answer:.300}");
    for host in [
        "example.com",
        "example.com:8080",
        "127.0.0.1:3000",
        "[::1]:3000",
    ] {
        let answer = raw(
            &server,
            format!("GET /probe/echo HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        );
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "Host {host}: {answer:.300}"
        );
    }
}

#[test]
fn connections_beyond_the_cap_are_refused_at_once_and_room_comes_back() {
    let server = Setup::new(ROUTES)
        .connections(|c| c.max_connections = 20)
        .start();
    let held: Vec<TcpStream> = (0..20).map(|_| connect(&server)).collect();
    // Give the host time to accept all twenty.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let answer = raw(&server, b"GET /probe/echo HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:.300}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"));
    assert!(answer.contains("too_many_connections"));
    assert!(started.elapsed() < Duration::from_secs(2));
    drop(held);
    // Closed connections give their slots back.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = raw(
            &server,
            b"GET /probe/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        );
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "{answer:.300}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of an answer's head, lower-cased, for header checks on raw answers.
fn head_lower(answer: &str) -> String {
    answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase()
}

#[test]
fn answers_given_before_the_body_is_read_close_the_connection_and_say_so() {
    // A declared body over the cap is never read: the next request would start inside it.
    let server = Setup::new(ROUTES)
        .limits(|l| l.max_body_bytes = 1024)
        .start();
    let answer = raw(
        &server,
        b"POST /probe/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4096\r\n\r\n",
    );
    let head = head_lower(&answer);
    assert!(head.starts_with("http/1.1 413"), "{answer:.300}");
    assert!(head.contains("\r\nconnection: close"), "{answer:.300}");

    // A component at its cap answers before reading the body too.
    let server = Setup::new(ROUTES)
        .limits(|l| {
            l.component_concurrency.insert(
                "probe".into(),
                Concurrency {
                    running: 1,
                    waiting: 0,
                },
            );
        })
        .start();
    let body = "x".repeat(64);
    let with_body = format!(
        "POST /probe/echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    // One sleeping request holds the probe's only turn while the raw one arrives.
    let busy = std::thread::scope(|scope| {
        let sleeping = scope.spawn(|| server.get_json("/probe/sleep?ms=1500").0);
        std::thread::sleep(Duration::from_millis(300));
        let answer = raw(&server, with_body.as_bytes());
        assert_eq!(sleeping.join().unwrap(), 200);
        answer
    });
    let head = head_lower(&busy);
    assert!(head.starts_with("http/1.1 503"), "{busy:.300}");
    assert!(head.contains("\r\nconnection: close"), "{busy:.300}");
    assert!(head.contains("\r\nretry-after: 1"), "{busy:.300}");
}
