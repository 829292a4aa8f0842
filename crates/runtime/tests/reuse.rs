//! Instance reuse with the probe guest, whose `/counter` answers how many requests its
//! instance has served: fresh state per request by default, shared state when a component
//! reuses instances, and never an instance that failed, grew or sat idle too long.
//!
//! An instance goes back to the pool just after its response is complete, so each test waits
//! a moment between requests ([`PAUSE`]) to be sure the next one can find it.

mod common;

use common::{Setup, TestHost};
use runtime::reuse::Range;
use std::time::Duration;

const PAUSE: Duration = Duration::from_millis(100);

fn routes(tool: &str) -> String {
    format!(
        "[[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n\
         [component.probe.tool.detailing]\n{tool}\n"
    )
}

/// `/probe/counter` once: how many requests the instance that answered has served.
fn served(server: &TestHost) -> u64 {
    std::thread::sleep(PAUSE);
    let (status, body) = server.get_json("/probe/counter");
    assert_eq!(status, 200, "{body}");
    body["served"].as_u64().expect("a count")
}

fn counts(server: &TestHost, n: usize) -> Vec<u64> {
    (0..n).map(|_| served(server)).collect()
}

#[test]
fn without_reuse_every_request_gets_a_fresh_instance() {
    let server = Setup::new(&routes("")).start();
    assert_eq!(counts(&server, 4), vec![1, 1, 1, 1]);
}

#[test]
fn a_reusing_component_shares_state_up_to_its_count() {
    let server = Setup::new(&routes("max-instance-reuse-count = 3")).start();
    assert_eq!(counts(&server, 7), vec![1, 2, 3, 1, 2, 3, 1]);
}

#[test]
fn the_flag_applies_to_every_component_and_wins_over_the_manifest() {
    let off = Setup::new(&routes("max-instance-reuse-count = 100"))
        .limits(|l| l.reuse.max_requests = Some(Range::Value(1)))
        .start();
    assert_eq!(counts(&off, 3), vec![1, 1, 1]);

    let on = Setup::new(&routes(""))
        .limits(|l| l.reuse.max_requests = Some(Range::Value(100)))
        .start();
    assert_eq!(counts(&on, 3), vec![1, 2, 3]);
}

#[test]
fn an_instance_that_trapped_or_ran_out_of_time_or_memory_is_never_reused() {
    let server = Setup::new(&routes("max-instance-reuse-count = 100"))
        .limits(|l| {
            l.memory_bytes = 32 << 20;
            l.request_timeout = Duration::from_secs(1);
        })
        .start();
    assert_eq!(counts(&server, 2), vec![1, 2]);
    for (path, status) in [
        ("/probe/panic", 500),
        ("/probe/loop", 504),
        ("/probe/alloc", 500),
    ] {
        std::thread::sleep(PAUSE);
        assert_eq!(server.get_json(path).0, status, "{path}");
        assert_eq!(
            served(&server),
            1,
            "the request after {path} got a used instance"
        );
        assert_eq!(
            served(&server),
            2,
            "the instance after {path} is not reused"
        );
    }
}

#[test]
fn an_instance_whose_memory_grew_past_the_ceiling_is_dropped() {
    let server = Setup::new(&routes("max-instance-reuse-count = 100")).start();
    assert_eq!(counts(&server, 2), vec![1, 2]);
    // A small allocation fits the initial memory: the instance stays.
    std::thread::sleep(PAUSE);
    assert_eq!(server.get_json("/probe/grow?mb=1").0, 200);
    assert_eq!(served(&server), 3);
    std::thread::sleep(PAUSE);
    assert_eq!(server.get_json("/probe/grow?mb=8").0, 200);
    assert_eq!(served(&server), 1);
}

#[test]
fn idle_instances_are_dropped_after_their_timeout() {
    let server = Setup::new(&routes(
        "max-instance-reuse-count = 100\nidle-instance-timeout = \"200ms\"",
    ))
    .start();
    assert_eq!(counts(&server, 2), vec![1, 2]);
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(counts(&server, 2), vec![1, 2]);
}

#[test]
fn a_misspelt_setting_stops_the_app_from_loading() {
    let setup = Setup::new(&routes("max-instance-reuse = 8"));
    let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| setup.start()));
    let message = match started {
        Ok(_) => panic!("the app loaded with an unknown reuse setting"),
        Err(panic) => panic.downcast_ref::<String>().cloned().unwrap_or_default(),
    };
    assert!(message.contains("max-instance-reuse"), "{message}");
}
