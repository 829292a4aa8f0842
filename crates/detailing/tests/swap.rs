//! Hot swap end to end: `detailing swap` replaces one component of a running host under
//! load with zero failed requests; a build that does not load leaves the old one serving; the
//! admin endpoint is off unless asked for, and refuses requests without its token or with a
//! Host that is not loopback.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::{probe_manifest, wasm_dir, ServerConfig, TestServer};
use serde_json::Value;

/// Why these tests are skipped under `SPIN_BIN` (see `common::host_only`).
const WHY_HOST_ONLY: &str =
    "hot swap and the admin endpoint are ours; Spin has no equivalent (we do better)";

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

fn server_with(args: &[&str]) -> TestServer {
    let probe = wasm_dir().join("probe.wasm");
    let shared = probe_manifest(&ROUTES.replace("PROBE", &probe.display().to_string()));
    // A folder of its own: the admin token file lives beside the manifest, and two servers
    // of one app folder would each write theirs there.
    let dir = shared.with_extension("");
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("spin.toml");
    std::fs::rename(&shared, &manifest).unwrap();
    TestServer::start(ServerConfig {
        manifest,
        env: Vec::new(),
        args: args.iter().map(|a| a.to_string()).collect(),
    })
}

fn server() -> TestServer {
    server_with(&["--admin-listen", "127.0.0.1:0"])
}

/// The admin URL and token file the host announced: `Admin <url> (token in <file>)`.
fn admin(server: &TestServer) -> (String, PathBuf) {
    let line = server
        .log()
        .lines()
        .find_map(|line| line.strip_prefix("Admin ").map(str::to_owned))
        .expect("the host announces its admin endpoint");
    let (url, file) = line
        .trim_end_matches(')')
        .split_once(" (token in ")
        .expect("the announcement names the token file");
    (url.to_owned(), PathBuf::from(file))
}

fn swap(server: &TestServer, component: &str, wasm: &std::path::Path) -> std::process::Output {
    let (url, token_file) = admin(server);
    Command::new(env!("CARGO_BIN_EXE_detailing"))
        .current_dir(common::repo_root())
        .args(["swap", component])
        .arg(wasm)
        .args(["--admin", &url])
        .arg("--admin-token-file")
        .arg(&token_file)
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
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
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
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
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
    assert!(
        server.log_has("swap refused, the previous version keeps serving"),
        "{}",
        server.log()
    );
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
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
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
    assert!(
        common::log_has(
            Duration::from_secs(20),
            || server.log(),
            "not swapped, the previous version keeps serving"
        ),
        "{}",
        server.log()
    );
    assert_eq!(served(), "next");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_admin_endpoint_is_off_unless_asked_for() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = server_with(&[]);
    assert!(
        !server.log().lines().any(|line| line.starts_with("Admin ")),
        "{}",
        server.log()
    );
}

#[test]
fn the_admin_endpoint_refuses_a_missing_or_wrong_token_and_a_foreign_host() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let server = server();
    let (url, token_file) = admin(&server);
    let token = std::fs::read_to_string(&token_file).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the token file is the owner's only");
    }
    let next = std::fs::read(wasm_dir().join("probe_next.wasm")).unwrap();
    let client = reqwest::blocking::Client::new();
    // Refused before its body is read: a refused request carries a small body, since the
    // endpoint closes the connection rather than read a megabyte it will not use, and a
    // client still sending one may lose the answer to the reset.
    let refused_body = b"\0asm".to_vec();
    let put = |token: Option<&str>, host: Option<&str>, body: &Vec<u8>| {
        let mut request = client
            .put(format!("{url}/components/probe"))
            .body(body.clone());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(host) = host {
            request = request.header("host", host);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().unwrap();
        (
            status,
            body["error"]["code"].as_str().unwrap_or("").to_owned(),
        )
    };
    assert_eq!(put(None, None, &refused_body), (401, "unauthorized".into()));
    assert_eq!(
        put(Some(&"x".repeat(token.len())), None, &refused_body),
        (401, "unauthorized".into())
    );
    // A browser led to the port by DNS rebinding sends the attacker's name as Host.
    assert_eq!(
        put(
            Some(&token),
            Some("rebind.attacker.example:80"),
            &refused_body
        ),
        (403, "forbidden_host".into())
    );
    let served = || -> Value {
        let response = server.client().get(server.url("/probe/echo")).send();
        response.unwrap().json().unwrap()
    };
    // Nothing was swapped by any of them.
    assert_eq!(version(&served()), "probe");
    // With the token and a loopback Host, it swaps.
    assert_eq!(put(Some(&token), None, &next).0, 200);
    assert_eq!(version(&served()), "next");
}

#[test]
fn shipped_deployments_never_enable_the_admin_endpoint() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let root = common::repo_root();
    let mut files = vec![root.join("Dockerfile"), root.join("docker-compose.yml")];
    for entry in std::fs::read_dir(root.join("deploy/spinkube")).unwrap() {
        files.push(entry.unwrap().path());
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains("admin-listen"),
            "{} enables the admin endpoint",
            file.display()
        );
    }
}
