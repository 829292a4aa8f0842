//! Hot swap end to end: `detailing swap` replaces one component of a running host under
//! load with zero failed requests; a build that does not load leaves the old one serving.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{probe_manifest, wasm_dir, ServerConfig, TestServer};
use serde_json::Value;

const ROUTES: &str = r#"
[[trigger.http]]
route = "/probe/..."
component = "probe"
[[trigger.http]]
route = "/other/..."
component = "other"
[component.other]
source = "PROBE"
"#;

fn server() -> TestServer {
    let probe = wasm_dir().join("probe.wasm");
    let manifest = probe_manifest(&ROUTES.replace("PROBE", &probe.display().to_string()));
    TestServer::start(ServerConfig {
        manifest,
        env: Vec::new(),
        args: Vec::new(),
    })
}

fn admin_url(server: &TestServer) -> String {
    server
        .log()
        .lines()
        .find_map(|line| line.strip_prefix("Admin ").map(str::to_owned))
        .expect("the host announces its admin endpoint")
}

fn swap(server: &TestServer, component: &str, wasm: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_detailing"))
        .current_dir(common::repo_root())
        .args(["swap", component])
        .arg(wasm)
        .args(["--admin", &admin_url(server)])
        .output()
        .unwrap()
}

/// Which build answered: the probe echoes the request, the next build names itself.
fn version(body: &Value) -> &'static str {
    if body["version"] == "next" {
        "next"
    } else if body["method"] == "GET" {
        "probe"
    } else {
        "unknown"
    }
}

#[test]
fn a_component_is_swapped_under_load_without_a_failed_request() {
    let server = server();
    let stop = AtomicBool::new(false);
    let (results, output) = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let client = server.client();
                    let mut seen = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let outcome = client
                            .get(server.url("/probe/echo"))
                            .send()
                            .map_err(|error| error.to_string())
                            .and_then(|response| {
                                let status = response.status().as_u16();
                                let body: Value = response.json().map_err(|e| e.to_string())?;
                                Ok((status, version(&body)))
                            });
                        seen.push(outcome);
                    }
                    seen
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(700));
        let output = swap(&server, "probe", &wasm_dir().join("probe_next.wasm"));
        std::thread::sleep(Duration::from_millis(700));
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Vec<_>> = workers.into_iter().map(|w| w.join().unwrap()).collect();
        (results, output)
    });
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stderr),
        server.log()
    );
    let total: usize = results.iter().map(Vec::len).sum();
    let failed: Vec<_> = results
        .iter()
        .flatten()
        .filter(|outcome| !matches!(outcome, Ok((200, "probe" | "next"))))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {total} failed: {failed:?}",
        failed.len()
    );
    for seen in &results {
        // Each client sees the old build, then the new one, and never the old one again.
        let versions: Vec<&str> = seen.iter().map(|o| o.as_ref().unwrap().1).collect();
        let first_new = versions
            .iter()
            .position(|v| *v == "next")
            .expect("the new build served");
        assert!(first_new > 0, "the old build never served this client");
        assert!(
            versions[first_new..].iter().all(|v| *v == "next"),
            "{versions:?}"
        );
    }
    // The other component, built from the same file, was not reloaded.
    let (_, other) = (
        0,
        server
            .client()
            .get(server.url("/other/echo"))
            .send()
            .unwrap(),
    );
    assert_eq!(version(&other.json().unwrap()), "probe");
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("swapped probe in "));
}

#[test]
fn a_build_that_does_not_load_leaves_the_old_one_serving() {
    let server = server();
    let garbage = std::env::temp_dir().join(format!("broken-{}.wasm", uuid::Uuid::new_v4()));
    std::fs::write(&garbage, b"\0asm not really").unwrap();
    let output = swap(&server, "probe", &garbage);
    std::fs::remove_file(&garbage).unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("the previous version keeps serving"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !server.log().contains("swap refused") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server
        .log()
        .contains("swap refused, the previous version keeps serving"));
    let response = server
        .client()
        .get(server.url("/probe/echo"))
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(version(&response.json().unwrap()), "probe");

    let unknown = swap(&server, "nosuch", &wasm_dir().join("probe_next.wasm"));
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no component `nosuch`"));
}

#[test]
fn watch_rebuilds_a_changed_component_and_swaps_it_in() {
    // A component whose "build" copies the next version over its source when its watched
    // file changes: the watcher's work without a real cargo build in the test.
    let dir = std::env::temp_dir().join(format!("watch-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let source = dir.join("probe.wasm");
    std::fs::copy(wasm_dir().join("probe.wasm"), &source).unwrap();
    let watched = dir.join("lib.rs");
    std::fs::write(&watched, "// v1").unwrap();
    let manifest = common::write_manifest(&format!(
        r#"spin_manifest_version = 2
[application]
name = "watch-app"
[variables]
postgres_url = {{ required = true }}
jwt_secret = {{ required = true, secret = true }}
[[trigger.http]]
route = "/probe/..."
component = "probe"
[component.probe]
source = "{source}"
[component.probe.build]
command = "test ! -e {dir}/fail && cp {next} {source}"
watch = ["{dir}/*.rs"]
"#,
        source = source.display(),
        next = wasm_dir().join("probe_next.wasm").display(),
        dir = dir.display(),
    ));
    let server = TestServer::start(ServerConfig {
        manifest,
        env: Vec::new(),
        args: vec!["--watch".into()],
    });
    let served = || {
        let response = server
            .client()
            .get(server.url("/probe/echo"))
            .send()
            .unwrap();
        assert_eq!(response.status(), 200);
        version(&response.json().unwrap())
    };
    assert_eq!(served(), "probe");
    std::fs::write(&watched, "// v2, a longer file").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while served() != "next" && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(served(), "next", "{}", server.log());
    assert!(
        server.log().contains("rebuilt and swapped in"),
        "{}",
        server.log()
    );

    // A build that fails leaves the current version serving and says so.
    std::fs::write(dir.join("fail"), "").unwrap();
    std::fs::write(&watched, "// v3, broken on purpose").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !server.log().contains("not swapped") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        server
            .log()
            .contains("not swapped, the previous version keeps serving"),
        "{}",
        server.log()
    );
    assert_eq!(served(), "next");
    std::fs::remove_dir_all(&dir).unwrap();
}
