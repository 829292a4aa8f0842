//! Test harness: the real `detailing` binary on port 0, against a fresh PostgreSQL database
//! made for the test and dropped after it. Readiness is the `Serving http://...` line.
//! With `SPIN_BIN` naming a Spin CLI, the app runs under `$SPIN_BIN up` instead (see [`spin_bin`]).
#![allow(dead_code)]

pub mod tools;

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

/// The signing key every test server gets, so tests can mint tokens of their own.
pub const TEST_JWT_SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";

/// The bcrypt cost test servers hash with: the floor, to keep registrations quick.
pub const TEST_BCRYPT_COST: &str = "10";

/// The token bonus-service expects on relayed events (`x-relay-token`), so tests can deliver
/// events themselves.
pub const TEST_RELAY_TOKEN: &str = "test-relay-token-that-only-the-relay-sends";

/// The key payment-service signs events with and bonus-service checks, so tests can sign
/// (and forge) events themselves.
pub const TEST_EVENT_SIGNING_KEY: &str = "test-event-signing-key-of-at-least-32-bytes";

/// `event` (a JSON value) as payment-service sends it: its JSON text signed with the test key,
/// in the envelope both transports carry.
pub fn signed_event(event: &serde_json::Value) -> Vec<u8> {
    signed_text(&event.to_string())
}

/// `body` signed with the test key, in the envelope, whatever the body holds.
pub fn signed_text(body: &str) -> Vec<u8> {
    events::SigningKey::new(TEST_EVENT_SIGNING_KEY.as_bytes())
        .unwrap()
        .seal(body)
}

/// A booking time no other call in this test process gets: 10:00 in Moscow (the default
/// shop's time zone, inside its default 09:00-21:00 hours) on a day of its own from
/// 2031-01-01 on, so orders a test books in a loop never compete for the shop's bays.
/// Tests of capacity choose their times themselves.
pub fn next_slot() -> String {
    static NEXT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let day = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let date = chrono::NaiveDate::from_ymd_opt(2031, 1, 1).unwrap() + chrono::Days::new(day as u64);
    format!("{date}T07:00:00Z")
}

/// A car of `who`'s with a VIN no other car has: its id.
pub fn new_car(server: &TestServer, who: &Actor) -> String {
    let digits = uuid::Uuid::new_v4().as_u128() % 1_000_000_000;
    let car = serde_json::json!({"license_plate": "А123БВ799", "vin": format!("XTA21090{digits:09}"),
        "make": "Lada", "model": "Vesta", "year": 2021});
    let (status, car) = server.call("POST", "/api/cars", who.token(), Some(&car));
    assert_eq!(status, 201, "{car}");
    car["id"].as_str().unwrap().to_owned()
}

/// An order of `items` (catalog lines) on a new car of `who`'s, at a time of its own
/// ([`next_slot`]): its id.
pub fn order_on_new_car(server: &TestServer, who: &Actor, items: serde_json::Value) -> String {
    let body = serde_json::json!({"car_id": new_car(server, who), "desired_time": next_slot(),
        "items": items});
    let (status, order) = server.call("POST", "/api/orders", who.token(), Some(&body));
    assert_eq!(status, 201, "{order}");
    order["id"].as_str().unwrap().to_owned()
}

/// `detailing relay` as its own process, delivering to `bonus_url`.
pub fn start_relay(db_url: &str, vhost: &TestVhost, bonus_url: &str, extra: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_detailing"))
        .arg("--manifest")
        .arg(repo_root().join("spin.toml"))
        .args([
            "relay",
            "--bonus-url",
            bonus_url,
            "--amqp-url",
            &vhost.url(),
        ])
        .args(extra)
        .env("SPIN_VARIABLE_POSTGRES_URL", db_url)
        // The relay needs its credential and the database, not the app's JWT secret, nor the
        // event signing key: it carries events as they were signed.
        .env_remove("SPIN_VARIABLE_JWT_SECRET")
        .env_remove("SPIN_VARIABLE_EVENT_SIGNING_KEY")
        .env("SPIN_VARIABLE_RELAY_TOKEN", TEST_RELAY_TOKEN)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cannot start detailing relay")
}

/// SIGKILL, as a crash: no cleanup, no acks, no commits.
pub fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Credits `who` with a promocode's bonuses (`WELCOME500`: 500.00), which must be accepted.
pub fn apply_promocode(server: &TestServer, who: &Actor, code: &str) {
    let body = serde_json::json!({ "code": code });
    let (status, answer) = server.call(
        "POST",
        "/api/bonuses/promocodes/apply",
        who.token(),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");
}

/// Polls `probe` every 100 ms until `check` holds or `timeout` passes; the last value either
/// way, for the failure message.
pub fn wait_for<T>(
    timeout: Duration,
    mut probe: impl FnMut() -> T,
    mut check: impl FnMut(&T) -> bool,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        let value = probe();
        if check(&value) || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `log` (read again each time) has `text`: true, or false after `timeout`. A
/// process's log is read by a thread of its own, so a line written while answering a request
/// may arrive after the answer.
pub fn log_has(timeout: Duration, log: impl Fn() -> String, text: &str) -> bool {
    wait_for(timeout, log, |log| log.contains(text)).contains(text)
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn wasm_dir() -> PathBuf {
    repo_root().join("target/wasm32-wasip1/wasm")
}

/// The cargo packages spin.toml's build commands build (`... -p <package>`).
pub fn app_packages() -> Vec<String> {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo_root().join("spin.toml")).unwrap()).unwrap();
    let mut packages = Vec::new();
    for component in manifest["component"].as_table().unwrap().values() {
        let command = component["build"]["command"].as_str().unwrap();
        let mut words = command.split_whitespace();
        while let Some(word) = words.next() {
            if word == "-p" {
                packages.push(words.next().unwrap().to_owned());
            }
        }
    }
    packages
}

/// Builds the app's components and the probe once per test binary, in one cargo run
/// (cargo serialises concurrent builds from several test binaries).
pub fn ensure_components_built() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        // rustup does not add rust-toolchain.toml's targets to an installed toolchain.
        let _ = Command::new("rustup")
            .args(["target", "add", "wasm32-wasip1"])
            .current_dir(repo_root())
            .status();
        let mut packages = app_packages();
        packages.extend(["probe".into(), "probe-next".into()]);
        let status = Command::new(env!("CARGO"))
            .current_dir(repo_root())
            .args(["build", "--profile", "wasm", "--target", "wasm32-wasip1"])
            .args(packages.iter().flat_map(|p| ["-p", p.as_str()]))
            .status()
            .expect("cannot run cargo to build the components");
        assert!(status.success(), "building the wasm components failed");
    });
}

/// A database that exists for one test.
pub struct TestDb {
    pub name: String,
}

impl TestDb {
    pub fn create() -> Self {
        let name = format!("detailing_test_{}", uuid::Uuid::new_v4().simple());
        psql(&format!("CREATE DATABASE {name}"));
        Self { name }
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:5432/{}?sslmode=disable",
            self.name
        )
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // A second panic would abort the test binary and leave its other servers running.
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            let _ = Command::new("psql")
                .args([ADMIN_URL, "-Atc", &sql])
                .output();
            return;
        }
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Runs `sql` as the admin user on the server's `postgres` database.
pub fn psql(sql: &str) -> String {
    psql_at(ADMIN_URL, sql)
}

/// Runs `sql` in the test's own database.
pub fn psql_db(db: &TestDb, sql: &str) -> String {
    psql_at(&db.url(), sql)
}

fn psql_at(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-Atc", sql])
        .output()
        .expect("psql must be installed");
    assert!(
        out.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A RabbitMQ virtual host that exists for one test, so its exchanges and queues are its own.
pub struct TestVhost {
    pub name: String,
}

impl TestVhost {
    pub fn create() -> Self {
        let name = format!("detailing_test_{}", uuid::Uuid::new_v4().simple());
        rabbitmqctl(&["add_vhost", &name]);
        rabbitmqctl(&["set_permissions", "-p", &name, "guest", ".*", ".*", ".*"]);
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:5672/{}", self.name)
    }

    /// Messages ready in `queue` (not counting unacked ones).
    pub fn ready(&self, queue: &str) -> u64 {
        let out = rabbitmqctl(&[
            "list_queues",
            "-p",
            &self.name,
            "-q",
            "--no-table-headers",
            "name",
            "messages_ready",
        ]);
        out.lines()
            .filter_map(|line| line.split_once('\t'))
            .find(|(name, _)| name.trim() == queue)
            .map(|(_, count)| count.trim().parse().unwrap())
            .unwrap_or(0)
    }
}

impl Drop for TestVhost {
    fn drop(&mut self) {
        let _ = Command::new("rabbitmqctl")
            .args(["delete_vhost", &self.name])
            .output();
    }
}

/// Runs `rabbitmqctl` (the machine's RabbitMQ administration tool) and returns its output.
pub fn rabbitmqctl(args: &[&str]) -> String {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl must be installed");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// How many clients of the Redis at `url` are subscribed to `channel` (PUBSUB NUMSUB): a
/// Redis trigger's subscription, seen the same way whichever host made it.
pub fn redis_subscribers(url: &str, channel: &str) -> i64 {
    let client = redis::Client::open(url).unwrap();
    let mut connection = client.get_connection().unwrap();
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query(&mut connection)
        .unwrap();
    count
}

/// How to start the server.
#[derive(Clone)]
pub struct ServerConfig {
    pub manifest: PathBuf,
    pub env: Vec<(String, String)>,
    pub args: Vec<String>,
}

impl ServerConfig {
    /// The app's own manifest, without the payment relay: test servers share one
    /// RabbitMQ, so only a test that brings its own vhost runs a relay ([`Self::with_relay`]).
    pub fn app() -> Self {
        Self {
            manifest: repo_root().join("spin.toml"),
            env: Vec::new(),
            args: vec!["--no-relay".into()],
        }
    }

    /// The app's manifest plus the `bonus_fail_events` test switch (which the shipped
    /// spin.toml does not declare), set by `SPIN_VARIABLE_BONUS_FAIL_EVENTS`.
    pub fn with_fault_switch(mut self) -> Self {
        self.manifest = fault_manifest();
        self
    }

    /// Runs the relay in the server, against `vhost`.
    pub fn with_relay(mut self, vhost: &TestVhost) -> Self {
        self.args.retain(|arg| arg != "--no-relay");
        self.arg("--amqp-url").arg(&vhost.url())
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }

    pub fn arg(mut self, a: &str) -> Self {
        self.args.push(a.into());
        self
    }
}

/// The Spin CLI named by `SPIN_BIN`, when the suite runs against it instead of our host.
pub fn spin_bin() -> Option<PathBuf> {
    std::env::var_os("SPIN_BIN")
        .filter(|bin| !bin.is_empty())
        .map(PathBuf::from)
}

/// Whether the suite runs under the Spin CLI (`SPIN_BIN` names one).
pub fn under_spin() -> bool {
    spin_bin().is_some()
}

/// True (after saying so) when the suite runs under the Spin CLI and the calling test checks
/// something only our host has (its flags, metrics, hot swap, limits: `reason`): the test
/// then returns early. For a whole file about our host's internals.
pub fn host_only(reason: &str) -> bool {
    not_run_under_spin("our host only", reason)
}

/// True (after saying so) when the suite runs under the Spin CLI and the calling test holds
/// the app to an answer Spin cannot give by design, where our host does better on purpose
/// (`reason`: what Spin does instead, as docs/spin-compatibility.md lists it). The test then
/// returns early, reported as not run, never as passed silently.
pub fn we_do_better(reason: &str) -> bool {
    not_run_under_spin("we do better", reason)
}

/// Why tests of a chained call to a `*.spin.internal` name that no component serves do not
/// run under Spin (docs/spin-compatibility.md, "Known differences").
pub const UNROUTABLE_CHAINING: &str = "Spin 4.0.2 traps the calling component when a \
     *.spin.internal name has no component with an HTTP trigger (an empty 500, nothing in the \
     component's log); our host gives the guest an error (DestinationNotFound), which the \
     component answers with 503 in the callee's code";

fn not_run_under_spin(why: &str, reason: &str) -> bool {
    if under_spin() {
        // Seen with `--show-output` (passing tests' output is captured otherwise).
        println!("SPIN: not run — {why}: {reason}");
        true
    } else {
        false
    }
}

/// The pieces of a run under the Spin CLI: its log and state folders and the relay beside it.
struct SpinRun {
    dir: PathBuf,
    relay: Option<Child>,
}

pub struct TestServer {
    pub db: TestDb,
    pub base: String,
    config: ServerConfig,
    child: Option<Child>,
    log: Arc<Mutex<String>>,
    spin: Option<SpinRun>,
}

impl TestServer {
    pub fn start(config: ServerConfig) -> Self {
        ensure_components_built();
        let db = TestDb::create();
        let mut server = Self {
            db,
            base: String::new(),
            config,
            child: None,
            log: Default::default(),
            spin: None,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        if let Some(spin) = spin_bin() {
            return self.spawn_spin(&spin);
        }
        let cache = repo_root().join("target/test-compile-cache");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_detailing"));
        cmd.arg("--manifest")
            .arg(&self.config.manifest)
            .arg("--migrations")
            .arg(repo_root().join("migrations"))
            .args(["up", "--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(&cache)
            .args(&self.config.args)
            .env("SPIN_VARIABLE_POSTGRES_URL", self.db.url())
            .env("SPIN_VARIABLE_JWT_SECRET", TEST_JWT_SECRET)
            .env("SPIN_VARIABLE_BCRYPT_COST", TEST_BCRYPT_COST)
            .env("SPIN_VARIABLE_RELAY_TOKEN", TEST_RELAY_TOKEN)
            .env("SPIN_VARIABLE_EVENT_SIGNING_KEY", TEST_EVENT_SIGNING_KEY)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &self.config.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot start detailing");
        let stderr = child.stderr.take().unwrap();
        let log = self.log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            while reader.read_line(&mut line).unwrap_or(0) > 0 {
                if let Some(url) = line.trim().strip_prefix("Serving ") {
                    let _ = tx.send(url.to_string());
                }
                log.lock().unwrap().push_str(&line);
                line.clear();
            }
            let mut rest = String::new();
            let _ = reader.read_to_string(&mut rest);
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(url) = rx.recv_timeout(Duration::from_millis(100)) {
                self.base = url;
                break;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("detailing exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "detailing did not start:\n{}",
                self.log()
            );
        }
        self.child = Some(child);
    }

    /// The `SPIN_VARIABLE_*` (and other) variables the app gets, the config's last.
    fn app_env(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("SPIN_VARIABLE_POSTGRES_URL", self.db.url().as_str()),
            ("SPIN_VARIABLE_POSTGRES_HOST", "127.0.0.1:5432"),
            ("SPIN_VARIABLE_JWT_SECRET", TEST_JWT_SECRET),
            ("SPIN_VARIABLE_BCRYPT_COST", TEST_BCRYPT_COST),
            ("SPIN_VARIABLE_RELAY_TOKEN", TEST_RELAY_TOKEN),
            ("SPIN_VARIABLE_EVENT_SIGNING_KEY", TEST_EVENT_SIGNING_KEY),
            ("RUST_LOG", "info"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(self.config.env.iter().cloned());
        env
    }

    /// Under `SPIN_BIN`: migrate with our CLI, then `$SPIN_BIN up` on a free port, ready when
    /// Spin's health route answers; `detailing relay` beside it when the config has a broker.
    fn spawn_spin(&mut self, spin: &Path) {
        let mut args = self.config.args.iter();
        let mut amqp_url = None;
        let mut relay_args = Vec::new();
        let mut migrate = true;
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--no-relay" => {}
                "--skip-migrations" => migrate = false,
                "--amqp-url" => amqp_url = args.next().cloned(),
                // The relay's own tuning goes to the relay beside Spin.
                relay if relay.starts_with("--relay-") => {
                    relay_args.push(relay.to_owned());
                    relay_args.extend(args.next().cloned());
                }
                other => panic!(
                    "`{other}` (in {:?}) is an option of our host that the Spin CLI does not \
                     have: guard the test with common::host_only(..)",
                    self.config.args
                ),
            }
        }
        let env = self.app_env();
        if migrate {
            let migrate = Command::new(env!("CARGO_BIN_EXE_detailing"))
                .arg("--manifest")
                .arg(&self.config.manifest)
                .arg("--migrations")
                .arg(repo_root().join("migrations"))
                .arg("migrate")
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("cannot run detailing migrate");
            assert!(
                migrate.status.success(),
                "detailing migrate failed: {}",
                String::from_utf8_lossy(&migrate.stderr)
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = match &self.spin {
            Some(run) => run.dir.clone(),
            None => {
                let dir = repo_root()
                    .join("target/test-spin")
                    .join(uuid::Uuid::new_v4().simple().to_string());
                std::fs::create_dir_all(dir.join("logs")).unwrap();
                std::fs::create_dir_all(dir.join("state")).unwrap();
                dir
            }
        };
        let mut child = Command::new(spin)
            .arg("up")
            .arg("-f")
            .arg(&self.config.manifest)
            // Component output only in the log folder, which `log()` reads: once, not twice.
            .arg("--quiet")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--log-dir")
            .arg(dir.join("logs"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .envs(env.iter().map(|(k, v)| (k, v)))
            // `spin up` runs each trigger as a child process: a group of their own, so stopping
            // signals them all and none is left holding database connections.
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", spin.display()));
        for pipe in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let log = self.log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    log.lock().unwrap().push_str(&(line + "\n"));
                }
            });
        }
        self.base = format!("http://127.0.0.1:{port}");
        self.spin = Some(SpinRun { dir, relay: None });
        let health = self.url("/.well-known/spin/health");
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        // Held by the server from here, so a failed start is still stopped when it drops.
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if client
                .get(&health)
                .send()
                .is_ok_and(|r| r.status().is_success())
            {
                break;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("spin up exited early ({status}):\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "spin up did not start:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        if let Some(amqp_url) = amqp_url {
            let mut relay = Command::new(env!("CARGO_BIN_EXE_detailing"))
                .arg("--manifest")
                .arg(&self.config.manifest)
                .arg("--migrations")
                .arg(repo_root().join("migrations"))
                .arg("relay")
                .arg("--bonus-url")
                .arg(self.url("/api/bonuses/events"))
                .arg("--amqp-url")
                .arg(amqp_url)
                .args(&relay_args)
                .envs(env.iter().map(|(k, v)| (k, v)))
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("cannot start detailing relay");
            for pipe in [
                Box::new(relay.stdout.take().unwrap()) as Box<dyn Read + Send>,
                Box::new(relay.stderr.take().unwrap()),
            ] {
                let log = self.log.clone();
                std::thread::spawn(move || {
                    for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                        log.lock().unwrap().push_str(&format!("relay: {line}\n"));
                    }
                });
            }
            self.spin.as_mut().unwrap().relay = Some(relay);
        }
    }

    /// What the server wrote; under Spin also the components' logs, read now.
    pub fn log(&self) -> String {
        let mut log = self.log.lock().unwrap().clone();
        if let Some(run) = &self.spin {
            let mut files: Vec<_> = std::fs::read_dir(run.dir.join("logs"))
                .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
                .unwrap_or_default();
            files.sort();
            for file in files {
                if let Ok(text) = std::fs::read_to_string(&file) {
                    log.push_str(&format!("--- {}\n{text}", file.display()));
                }
            }
        }
        log
    }

    /// Waits (up to 10 s) until the log has `text`; false if it never does.
    pub fn log_has(&self, text: &str) -> bool {
        log_has(Duration::from_secs(10), || self.log(), text)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, wait for exit, start again on the same database.
    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    /// SIGKILL, as a crash: no shutdown, no draining, no relay acks. `restart` starts it
    /// again on the same database.
    pub fn kill(&mut self) {
        if let Some(mut relay) = self.spin.as_mut().and_then(|run| run.relay.take()) {
            let _ = relay.kill();
            let _ = relay.wait();
        }
        if let Some(mut child) = self.child.take() {
            if self.spin.is_some() {
                unsafe_kill(&format!("-{}", child.id()), "KILL");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if let Some(mut relay) = self.spin.as_mut().and_then(|run| run.relay.take()) {
            unsafe_kill(&relay.id().to_string(), "TERM");
            let _ = relay.wait();
        }
        let mut child = self.child.take()?;
        let under_spin = self.spin.is_some();
        let pid = |child: &Child| {
            if under_spin {
                format!("-{}", child.id())
            } else {
                child.id().to_string()
            }
        };
        unsafe_kill(&pid(&child), "TERM");
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                unsafe_kill(&pid(&child), "KILL");
                return child.wait().ok();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
    }

    /// `method path` with an optional bearer token and JSON body: the status and the JSON
    /// answer (`Null` when the body is not JSON).
    pub fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self.client().request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().unwrap();
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(serde_json::Value::Null))
    }

    /// A customer with a token minted by the test (no account row; the services other than
    /// user-service only know users by the token).
    pub fn customer(&self) -> Actor {
        Actor::minted(auth::Role::Customer)
    }

    /// A staff member with a minted token.
    pub fn staff(&self) -> Actor {
        Actor::minted(auth::Role::Staff)
    }

    /// A customer made the way a client does it: register, then log in.
    pub fn register(&self, email: &str) -> Actor {
        let password = "correct horse battery";
        let body = serde_json::json!({"email": email, "password": password,
            "full_name": "Test User", "phone_number": "+79991234567"});
        let (status, user) = self.call("POST", "/api/users/register", None, Some(&body));
        assert_eq!(status, 201, "{user}\n{}", self.log());
        Actor {
            id: user["id"].as_str().unwrap().parse().unwrap(),
            token: self.login(email, password),
        }
    }

    /// Logs in and returns the access token.
    pub fn login(&self, email: &str, password: &str) -> String {
        let body = serde_json::json!({"email": email, "password": password});
        let (status, answer) = self.call("POST", "/api/users/login", None, Some(&body));
        assert_eq!(status, 200, "{answer}\n{}", self.log());
        answer["access_token"].as_str().unwrap().to_owned()
    }
}

/// Someone calling the API: a user id and a bearer token for it.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: uuid::Uuid,
    pub token: String,
}

impl Actor {
    pub fn minted(role: auth::Role) -> Self {
        let id = uuid::Uuid::new_v4();
        Self {
            id,
            token: mint_token(id, role, 0, 3600),
        }
    }

    pub fn token(&self) -> Option<&str> {
        Some(&self.token)
    }
}

/// A token signed with the test servers' key, issued `issued_ago` seconds ago.
pub fn mint_token(user: uuid::Uuid, role: auth::Role, issued_ago: i64, ttl: i64) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let secret = auth::Secret::new(TEST_JWT_SECRET.as_bytes()).unwrap();
    let claims = auth::Claims::new(user, role, now - issued_ago, ttl);
    auth::token::issue(&secret, &claims)
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if self.spin.is_some() && std::thread::panicking() {
            // The log folder goes with the server: a failing test shows what Spin logged.
            eprintln!("--- Spin's output and component logs:\n{}", self.log());
        }
        if let Some(mut child) = self.child.take() {
            if self.spin.is_some() {
                unsafe_kill(&format!("-{}", child.id()), "KILL");
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(mut run) = self.spin.take() {
            if let Some(mut relay) = run.relay.take() {
                let _ = relay.kill();
                let _ = relay.wait();
            }
            let _ = std::fs::remove_dir_all(&run.dir);
        }
    }
}

/// `kill -<signal> <pid>`; a `pid` of `-<n>` is the process group `n`.
fn unsafe_kill(pid: &str, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), "--", pid])
        .status();
}

/// A manifest in a temp file: the app's own manifest plus extra TOML, sources made absolute.
pub fn manifest_with(extra: &str) -> PathBuf {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    let text = text.replace(
        "source = \"target/",
        &format!("source = \"{}/target/", root.display()),
    );
    write_manifest(&format!("{text}\n{extra}"))
}

/// The app's manifest with bonus-service's `bonus_fail_events` switch declared (default off):
/// `true` makes every event delivery answer 500, for fault tests.
pub fn fault_manifest() -> PathBuf {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("spin.toml")).unwrap();
    let text = text
        .replace(
            "source = \"target/",
            &format!("source = \"{}/target/", root.display()),
        )
        .replacen(
            "[variables]\n",
            "[variables]\nbonus_fail_events = { default = \"false\" }\n",
            1,
        )
        .replacen(
            "[component.bonus-service.variables]\n",
            "[component.bonus-service.variables]\nbonus_fail_events = \"{{ bonus_fail_events }}\"\n",
            1,
        );
    assert!(
        text.contains("bonus_fail_events = \"{{"),
        "no bonus-service variables"
    );
    write_manifest(&text)
}

/// A manifest of only the probe component, for host behaviour tests.
pub fn probe_manifest(extra: &str) -> PathBuf {
    let probe = wasm_dir().join("probe.wasm");
    let text = format!(
        r#"spin_manifest_version = 2
[application]
name = "probe-app"
version = "9.9.9"
[variables]
postgres_url = {{ required = true }}
postgres_host = {{ default = "127.0.0.1:5432" }}
jwt_secret = {{ required = true, secret = true }}
[component.probe]
source = "{probe}"
allowed_outbound_hosts = ["http://*.spin.internal", "postgres://{{{{ postgres_host }}}}"]
[component.probe.variables]
postgres_url = "{{{{ postgres_url }}}}"
{extra}
"#,
        probe = probe.display()
    );
    write_manifest(&text)
}

pub fn write_manifest(text: &str) -> PathBuf {
    let dir = repo_root().join("target/test-manifests");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.toml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, text).unwrap();
    path
}

/// Paths below each trigger prefix that the services serve or will serve (docs/api.md),
/// with `{id}` for an identifier. Walking unknown ones too is the point: nothing answers 2xx.
pub const SUFFIXES: &[&str] = &[
    "",
    "/",
    "/health",
    "/health/live",
    "/me",
    "/register",
    "/login",
    "/refresh",
    "/logout",
    "/logout-all",
    "/{id}",
    "/{id}/status",
    "/{id}/documents",
    "/{id}/documents/{id}/file",
    "/{id}/messages",
    "/{id}/pay",
    "/review",
    "/items",
    "/items/{id}",
    "/checkout",
    "/catalog",
    "/catalog/{id}",
    "/balance",
    "/history",
    "/spend",
    "/promocodes/apply",
    "/check",
    "/events",
    "/tickets",
    "/tickets/{id}",
    "/tickets/{id}/messages",
];

pub const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

/// The `route`s of spin.toml's HTTP triggers, e.g. `/api/cars/...`.
pub fn trigger_routes() -> Vec<String> {
    let manifest: toml::Table =
        toml::from_str(&std::fs::read_to_string(repo_root().join("spin.toml")).unwrap()).unwrap();
    manifest["trigger"]["http"]
        .as_array()
        .unwrap()
        .iter()
        .map(|trigger| trigger["route"].as_str().unwrap().to_owned())
        .collect()
}
