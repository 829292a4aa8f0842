//! The host in process, for tests of its own behaviour that need neither the `detailing` CLI
//! nor a database: the probe guest (`tests/fixtures/probe`) loaded with [`App::load`] from a
//! manifest written for the test, served by [`runtime::http_trigger::serve`] on `127.0.0.1:0`,
//! with the host's log lines kept for the test to read.
//!
//! Tests that need PostgreSQL, the app's services or the CLI itself (its flags, restarts, the
//! admin endpoint) stay in `crates/detailing/tests` (docs/testing.md).
#![allow(dead_code)]

use runtime::http_trigger::Workers;
use runtime::{App, AppOptions, CompileCache, ConnectionLimits, Limits, VariableSources};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tracing::dispatcher::{self, DefaultGuard, Dispatch};

const BUILD: &str = "cargo build --profile wasm --target wasm32-wasip1 -p probe";

/// The value the probe's `postgres_url` variable gets (nothing connects to it).
pub const TEST_POSTGRES_URL: &str = "postgres://probe@127.0.0.1:5432/probe?sslmode=disable";

/// What `RUST_LOG` is for the CLI's test servers: request lines and the host's warnings.
const LOG_FILTER: &str = "info,wasmtime_wasi_http=warn";

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/runtime sits two levels below the repository")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if PathBuf::from(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => repo_root().join(dir),
        None => repo_root().join("target"),
    }
}

/// The newest modification time of the files under `dir`.
fn newest_under(dir: &Path) -> Option<std::time::SystemTime> {
    let mut newest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_under(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).ok()
        };
        newest = newest.max(time);
    }
    newest
}

/// The probe's wasm, built once per test binary when it is missing or older than the
/// fixture's sources.
pub fn probe_wasm() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let wasm = target_dir().join("wasm32-wasip1/wasm/probe.wasm");
            let built = std::fs::metadata(&wasm).and_then(|m| m.modified()).ok();
            let sources = newest_under(&repo_root().join("tests/fixtures/probe"));
            if built.is_some() && built >= sources {
                return wasm;
            }
            eprintln!("{} is missing or stale; running `{BUILD}`", wasm.display());
            let status = Command::new(env!("CARGO"))
                .current_dir(repo_root())
                .args(BUILD.split_whitespace().skip(1))
                .status();
            match status {
                Ok(status) if status.success() && wasm.exists() => wasm,
                Ok(status) => panic!(
                    "building the probe failed ({status}); run `{BUILD}` from {} \
                     (and `rustup target add wasm32-wasip1` if the target is missing)",
                    repo_root().display()
                ),
                Err(e) => panic!("cannot run cargo ({e}); build the probe with `{BUILD}`"),
            }
        })
        .clone()
}

/// The limits test hosts run with unless a test says otherwise: the defaults of `detailing up`
/// but a small instance pool, since every test's host reserves its own in one process.
pub fn test_limits() -> Limits {
    Limits {
        max_instances: 16,
        ..Limits::default()
    }
}

/// How to start a test host.
pub struct Setup {
    /// Manifest TOML after the probe component: triggers and further components, where
    /// `PROBE` stands for the probe's wasm path.
    pub routes: String,
    pub limits: Limits,
    pub connections: ConnectionLimits,
}

impl Setup {
    pub fn new(routes: &str) -> Self {
        Self {
            routes: routes.to_owned(),
            limits: test_limits(),
            connections: ConnectionLimits::default(),
        }
    }

    pub fn limits(mut self, change: impl FnOnce(&mut Limits)) -> Self {
        change(&mut self.limits);
        self
    }

    pub fn connections(mut self, change: impl FnOnce(&mut ConnectionLimits)) -> Self {
        change(&mut self.connections);
        self
    }

    pub fn start(self) -> TestHost {
        TestHost::start(self)
    }
}

/// The manifest of the probe app: the probe component, its variables, then `routes`.
fn probe_manifest(routes: &str) -> String {
    let probe = probe_wasm().display().to_string();
    format!(
        r#"spin_manifest_version = 2
[application]
name = "probe-app"
version = "9.9.9"
[variables]
postgres_url = {{ required = true }}
jwt_secret = {{ required = true, secret = true }}
[component.probe]
source = "{probe}"
allowed_outbound_hosts = ["http://*.spin.internal"]
[component.probe.variables]
postgres_url = "{{{{ postgres_url }}}}"
{routes}
"#,
        routes = routes.replace("PROBE", &probe),
    )
}

/// What the host logged, as text lines (`RUST_LOG=info`, no colours).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl Write for Log {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

thread_local! {
    /// The log a runtime thread of a test host writes to, for as long as the thread runs.
    static THREAD_LOG: RefCell<Option<DefaultGuard>> = const { RefCell::new(None) };
}

/// The host of one test: its own thread running a single-threaded tokio runtime, which accepts
/// connections and serves every connection and guest, as `detailing up --http-workers 1` does
/// on its one worker. Stopped (gracefully) when dropped.
pub struct TestHost {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub addr: SocketAddr,
    log: Log,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    dir: PathBuf,
}

impl TestHost {
    pub fn start(setup: Setup) -> Self {
        let dir =
            std::env::temp_dir().join(format!("runtime-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let manifest = dir.join("spin.toml");
        std::fs::write(&manifest, probe_manifest(&setup.routes)).unwrap();
        let options = AppOptions {
            manifest,
            variables: VariableSources {
                fallbacks: HashMap::from([
                    ("postgres_url".to_owned(), TEST_POSTGRES_URL.to_owned()),
                    (
                        "jwt_secret".to_owned(),
                        "test-secret-that-is-at-least-32-bytes-long".to_owned(),
                    ),
                ]),
                // What the developer's shell holds does not leak into a test.
                from_env: false,
            },
            cache: CompileCache::at(target_dir().join("runtime-test-compile-cache")),
            limits: setup.limits,
            postgres: Default::default(),
        };
        let log = Log::default();
        let dispatch = {
            let log = log.clone();
            Dispatch::new(
                tracing_subscriber::fmt()
                    .with_env_filter(tracing_subscriber::EnvFilter::new(LOG_FILTER))
                    .with_ansi(false)
                    .with_writer(move || log.clone())
                    .finish(),
            )
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<SocketAddr, String>>();
        let (stop, stopped) = oneshot::channel::<()>();
        let connections = setup.connections;
        let thread = std::thread::Builder::new()
            .name("test-host".into())
            .spawn(move || {
                dispatcher::with_default(&dispatch, || {
                    // The runtime's blocking threads log to the same place.
                    let on_start = dispatch.clone();
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .on_thread_start(move || {
                            let guard = dispatcher::set_default(&on_start);
                            THREAD_LOG.with(|log| *log.borrow_mut() = Some(guard));
                        })
                        .on_thread_stop(|| THREAD_LOG.with(|log| drop(log.borrow_mut().take())))
                        .build()
                        .expect("a tokio runtime");
                    runtime.block_on(serve(options, connections, ready_tx, stopped));
                })
            })
            .expect("cannot start the test host's thread");
        let addr = match ready_rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(addr)) => addr,
            Ok(Err(e)) => panic!(
                "the test host did not start: {e}\n{}",
                String::from_utf8_lossy(&log.0.lock().unwrap())
            ),
            Err(e) => panic!("the test host did not start: {e}"),
        };
        Self {
            base: format!("http://{addr}"),
            addr,
            log,
            stop: Some(stop),
            thread: Some(thread),
            dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the host has logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.0.lock().unwrap()).into_owned()
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// `GET path`: the status and the JSON answer (a string when the body is not JSON).
    pub fn get_json(&self, path: &str) -> (u16, Value) {
        let res = self.client().get(self.url(path)).send().unwrap();
        let status = res.status().as_u16();
        let text = res.text().unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, body)
    }
}

/// Loads the app, binds, says where, and serves until `stopped`.
async fn serve(
    options: AppOptions,
    connections: ConnectionLimits,
    ready: std::sync::mpsc::Sender<Result<SocketAddr, String>>,
    stopped: oneshot::Receiver<()>,
) {
    let app = match App::load(options) {
        Ok((app, _)) => app,
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return;
        }
    };
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(listener) => listener,
        Err(e) => {
            let _ = ready.send(Err(format!("cannot listen: {e}")));
            return;
        }
    };
    let _ = ready.send(listener.local_addr().map_err(|e| e.to_string()));
    let workers = Workers::current();
    let stopped = async move {
        let _ = stopped.await;
    };
    if let Err(e) =
        runtime::http_trigger::serve(app, listener, &workers, connections, stopped).await
    {
        tracing::error!("serving failed: {e:#}");
    }
}

impl Drop for TestHost {
    /// Stops the host and waits a little for it; a host still busy after that (a test that
    /// failed mid-request) is left to end with the test binary.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !thread.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
