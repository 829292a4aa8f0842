//! Dependencies fail, nothing is lost: PostgreSQL stopped in the middle of mixed traffic, the
//! host SIGKILLed in the middle of concurrent writes, RabbitMQ and Redis stopped, and
//! dependencies that accept connections but never answer. RELIABILITY.md ("Faults") states
//! the promises these tests hold the app to.
//!
//! The suite shares one PostgreSQL, RabbitMQ and Redis with every other test running at the
//! same time, and those are never stopped here: a test that stops a dependency brings its own
//! (a PostgreSQL cluster in a temporary folder, a redis-server, a TCP proxy in front of the
//! broker) on a port of its own.

mod common;

use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use common::{psql_db, Actor, ServerConfig, TestServer, TestVhost};
use serde_json::{json, Value};

// Under the Spin CLI (`SPIN_BIN`), the tests of the app's answers while PostgreSQL, the
// broker or the host itself fail run as they are; the ones whose promise rests on a bound
// our host sets and Spin 4.0.2 does not (a Redis outage, dependencies that never answer)
// say so and return (`common::we_do_better`, docs/spin-compatibility.md).

/// Why the silent-dependency tests do not run under Spin: what they hold the app to is a
/// bound Spin has not.
const SPIN_WAITS_FOREVER: &str = "Spin 4.0.2 bounds neither a request (no deadline) nor \
     opening a PostgreSQL or Redis connection, and waits 600 s for an HTTP answer: a \
     dependency that accepts and never answers holds the request that long or for ever; our \
     host gives up within its limits (5 s to connect to PostgreSQL, 1 s to Redis, the \
     caller's deadline for an answer) and answers 503 or 504 in the dependency's code";

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";
const TOWELS: &str = "6b1f2c1e-0002-4000-8000-000000000003";

/// What "fast" means for an answer while a dependency is down: far below any deadline.
const FAST: Duration = Duration::from_secs(2);

// ---------------------------------------------------------------------------------------
// Calls, timed.

/// One answered HTTP call.
#[derive(Debug, Clone)]
struct Answer {
    what: &'static str,
    started: Instant,
    took: Duration,
    status: u16,
    /// The body when it is JSON, else `Null`.
    body: Value,
    json: bool,
}

impl Answer {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    fn ended(&self) -> Instant {
        self.started + self.took
    }

    fn id(&self) -> Option<String> {
        self.body["id"].as_str().map(str::to_owned)
    }
}

/// A client whose own timeout is far beyond the host's deadlines: a request that hangs shows
/// as a long `took`, not as a client error.
fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(90))
        .build()
        .unwrap()
}

/// A client and the base URL it calls.
struct Api<'a>(&'a reqwest::blocking::Client, &'a str);

impl Api<'_> {
    /// `method base+path` as `who`, with an optional JSON body and Idempotency-Key. `Err`
    /// when no answer came (the connection failed or was cut).
    fn send(
        &self,
        what: &'static str,
        method: &str,
        path: &str,
        who: Option<&Actor>,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Answer, String> {
        let Self(client, base) = self;
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = client.request(method, format!("{base}{path}"));
        if let Some(who) = who {
            request = request.bearer_auth(&who.token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("idempotency-key", key);
        }
        let started = Instant::now();
        let response = request.send().map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let json = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let text = response.text().map_err(|e| e.to_string())?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Answer {
            what,
            started,
            took: started.elapsed(),
            status,
            json: json && !body.is_null(),
            body,
        })
    }
}

fn vin() -> String {
    format!(
        "XTA21093{:09}",
        uuid::Uuid::new_v4().as_u128() % 1_000_000_000
    )
}

fn new_car() -> Value {
    json!({"license_plate": "А123БВ799", "vin": vin(), "make": "Lada", "model": "Vesta", "year": 2021})
}

fn booking(car_id: &str) -> Value {
    json!({"car_id": car_id, "desired_time": common::next_slot(),
        "items": [{"catalog_id": WASH, "quantity": 1}, {"catalog_id": TOWELS, "quantity": 2}]})
}

fn checkout_body(car_id: &str) -> Value {
    json!({"car_id": car_id, "desired_time": common::next_slot()})
}

fn payment_body(order_id: &str) -> Value {
    json!({"order_id": order_id, "payment_method": "card"})
}

// ---------------------------------------------------------------------------------------
// Dependencies of a test's own.

/// A port below the kernel's ephemeral range that is free now. A dependency stopped and
/// started again binds its port twice; an ephemeral port could be taken in between by an
/// outgoing connection of another test.
fn fixed_port() -> u16 {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let low: u16 = range
        .split_whitespace()
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(32768)
        .max(20_000);
    loop {
        let port = 15_000 + (uuid::Uuid::new_v4().as_u128() % u128::from(low - 15_000)) as u16;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn run_ok(command: &mut Command, what: &str) -> String {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A PostgreSQL cluster of the test's own in a temporary folder, on a fixed port, so it can
/// be stopped and started without touching the shared server. initdb refuses to run as
/// root, so as root the server runs as the `postgres` user.
struct OwnPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                let mut bins: Vec<PathBuf> = versions
                    .filter_map(|v| v.ok().map(|v| v.path().join("bin")))
                    .filter(|bin| bin.join("initdb").exists())
                    .collect();
                bins.sort();
                bins.pop()
            })
            .unwrap_or_else(|| {
                PathBuf::from(run_ok(
                    Command::new("pg_config").arg("--bindir"),
                    "pg_config",
                ))
            });
        let as_postgres = run_ok(Command::new("id").arg("-u"), "id") == "0";
        let dir = std::env::temp_dir().join(format!(
            "detailing-faults-pg-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        if as_postgres {
            run_ok(
                Command::new("chown").arg("postgres:").arg(&dir),
                "chown postgres",
            );
        }
        let pg = Self {
            dir,
            bin,
            port: fixed_port(),
            as_postgres,
        };
        let data = pg.dir.join("data");
        run_ok(
            pg.tool("initdb")
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
                .args(["--locale=C", "--no-sync"]),
            "initdb",
        );
        pg.start_server();
        pg.psql("postgres", "CREATE DATABASE detailing");
        pg
    }

    fn tool(&self, name: &str) -> Command {
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join(name));
            command
        } else {
            Command::new(self.bin.join(name))
        }
    }

    fn start_server(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.display()
        );
        run_ok(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("log"))
                .args(["-w", "-t", "30", "-o", &options, "start"]),
            "pg_ctl start",
        );
    }

    /// `pg_ctl stop` in fast mode, what a service manager does: sessions are ended (FATAL
    /// 57P01 to each client), the server is gone when it returns.
    fn stop_server(&self) {
        run_ok(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.dir.join("data"))
                .args(["-m", "fast", "-w", "-t", "30", "stop"]),
            "pg_ctl stop",
        );
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    fn psql(&self, database: &str, sql: &str) -> String {
        run_ok(
            Command::new("psql").args([&self.url(database), "-v", "ON_ERROR_STOP=1", "-Atc", sql]),
            "psql",
        )
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-m", "immediate", "-w", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A redis-server of the test's own on a fixed port, without persistence.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> Self {
        let mut redis = Self {
            port: fixed_port(),
            child: None,
        };
        redis.start_server();
        redis
    }

    fn start_server(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed");
        self.child = Some(child);
        let ping = common::wait_for(
            Duration::from_secs(10),
            || {
                Command::new("redis-cli")
                    .args(["-p", &self.port.to_string(), "ping"])
                    .output()
                    .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
                    .unwrap_or_default()
            },
            |answer| answer == "PONG",
        );
        assert_eq!(ping, "PONG", "redis-server did not start");
    }

    /// SIGKILL: the server is gone at once, its connections reset.
    fn stop_server(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop_server();
    }
}

/// A dependency that hangs: a listener that accepts every connection and reads whatever
/// comes, never answering. Its port.
fn silent_listener() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut sink = [0u8; 4096];
                while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// A TCP proxy in front of the shared broker that can be "stopped": while down, every new
/// connection is closed as soon as it is accepted and every open one is cut. From the
/// relay's side that is what a broker going down looks like (connections reset, connection
/// attempts failing at once) while the real broker, which other tests use, keeps running.
struct BrokerProxy {
    port: u16,
    /// The connections passed through while up; `None` while down.
    open: Arc<Mutex<Option<Vec<TcpStream>>>>,
}

impl BrokerProxy {
    fn start(upstream: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let open: Arc<Mutex<Option<Vec<TcpStream>>>> = Arc::new(Mutex::new(Some(Vec::new())));
        let registry = open.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().map_while(Result::ok) {
                let Ok(server) = TcpStream::connect(upstream) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                // Checked and registered under one lock, so `down` cuts every connection
                // it lets through.
                let mut open = registry.lock().unwrap();
                let Some(open) = open.as_mut() else {
                    let _ = client.shutdown(Shutdown::Both);
                    let _ = server.shutdown(Shutdown::Both);
                    continue;
                };
                open.push(client.try_clone().unwrap());
                open.push(server.try_clone().unwrap());
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                        let _ = from.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Self { port, open }
    }

    fn amqp_url(&self, vhost: &TestVhost) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/{}", self.port, vhost.name)
    }

    fn down(&self) {
        for stream in self.open.lock().unwrap().take().into_iter().flatten() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    fn up(&self) {
        self.open.lock().unwrap().get_or_insert_with(Vec::new);
    }
}

// ---------------------------------------------------------------------------------------
// What must hold of the data after any fault.

/// Every order, payment and accrual whole: an order has its lines and their total; a
/// succeeded order payment has exactly one outbox event and nothing else has one; at most
/// one live payment per order; every event accrued exactly once, and every accrual comes
/// from an event; balances are the sum of their ledgers. `sql` runs a query in the app's
/// database.
fn assert_whole(sql: &dyn Fn(&str) -> String) {
    let checks = [
        (
            "orders without lines or with a wrong total",
            "SELECT count(*) FROM orders.orders o WHERE o.total_kopecks <> \
             (SELECT COALESCE(sum(l.unit_price_kopecks * l.quantity), 0) \
              FROM orders.order_lines l WHERE l.order_id = o.id) \
             OR NOT EXISTS (SELECT 1 FROM orders.order_lines l WHERE l.order_id = o.id)",
        ),
        (
            "succeeded order payments without exactly one event",
            "SELECT count(*) FROM payments.payments p \
             WHERE p.status = 'succeeded' AND p.order_id IS NOT NULL \
             AND (SELECT count(*) FROM payments.outbox o WHERE o.payment_id = p.id) <> 1",
        ),
        (
            "events of payments that did not succeed",
            "SELECT count(*) FROM payments.outbox o JOIN payments.payments p \
             ON p.id = o.payment_id WHERE p.status <> 'succeeded'",
        ),
        (
            "orders with more than one live payment",
            "SELECT count(*) FROM (SELECT order_id FROM payments.payments \
             WHERE status IN ('pending', 'succeeded') AND order_id IS NOT NULL \
             GROUP BY order_id HAVING count(*) > 1) doubled",
        ),
        (
            "events not accrued exactly once",
            "SELECT count(*) FROM payments.outbox o WHERE \
             (SELECT count(*) FROM bonuses.ledger l WHERE l.event_id = o.event_id) <> 1",
        ),
        (
            "accruals without an event",
            "SELECT count(*) FROM bonuses.ledger l WHERE l.kind = 'accrual' AND NOT EXISTS \
             (SELECT 1 FROM payments.outbox o WHERE o.event_id = l.event_id)",
        ),
        (
            "balances that are not the sum of their ledger",
            "SELECT count(*) FROM bonuses.accounts a WHERE a.balance_kopecks <> \
             (SELECT COALESCE(sum(l.amount_kopecks), 0) FROM bonuses.ledger l \
              WHERE l.user_id = a.user_id)",
        ),
        (
            "accruals that are not 1 % of their payment",
            "SELECT count(*) FROM bonuses.ledger l JOIN payments.outbox o USING (event_id) \
             WHERE l.amount_kopecks <> (o.amount_kopecks + 50) / 100",
        ),
    ];
    for (what, query) in checks {
        assert_eq!(sql(query), "0", "{what}");
    }
}

/// Waits (up to `timeout`) until the outbox is drained and every event is accrued: the
/// relay's work after a fault. The count of events.
fn drained(sql: &dyn Fn(&str) -> String, timeout: Duration) -> String {
    let state = || {
        sql(
            "SELECT (SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL) || ' ' || \
             (SELECT count(*) FROM payments.outbox) || ' ' || \
             (SELECT count(DISTINCT event_id) FROM bonuses.ledger WHERE kind = 'accrual')",
        )
    };
    let last = common::wait_for(timeout, state, |state| {
        let parts: Vec<&str> = state.split(' ').collect();
        parts[0] == "0" && parts[1] == parts[2]
    });
    let parts: Vec<&str> = last.split(' ').collect();
    assert!(
        parts[0] == "0" && parts[1] == parts[2],
        "the relay did not catch up (unsent, events, accrued): {last}"
    );
    parts[1].to_owned()
}

fn quoted(ids: &[String]) -> String {
    ids.iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",")
}

// ---------------------------------------------------------------------------------------
// PostgreSQL stopped in the middle of mixed traffic.

/// One customer's round of mixed traffic: a car, an order of it, the order paid, an item in
/// the cart and a checkout, the balance and the order list. Each step that needs an earlier
/// one's result is skipped when that failed.
fn round(client: &reqwest::blocking::Client, base: &str, me: &Actor, answers: &Mutex<Vec<Answer>>) {
    let keep = |answer: Result<Answer, String>| -> Option<Answer> {
        let answer = answer.unwrap_or_else(|e| panic!("no answer at all: {e}"));
        answers.lock().unwrap().push(answer.clone());
        Some(answer).filter(|a| a.status == 201)
    };
    let car =
        keep(Api(client, base).send("car", "POST", "/api/cars", Some(me), Some(&new_car()), None))
            .and_then(|a| a.id());
    if let Some(car) = &car {
        let order = keep(Api(client, base).send(
            "order",
            "POST",
            "/api/orders",
            Some(me),
            Some(&booking(car)),
            None,
        ))
        .and_then(|a| a.id());
        if let Some(order) = order {
            let key = uuid::Uuid::new_v4().to_string();
            keep(Api(client, base).send(
                "payment",
                "POST",
                "/api/payments",
                Some(me),
                Some(&payment_body(&order)),
                Some(&key),
            ));
        }
    }
    let item = json!({"catalog_id": WASH, "quantity": 1});
    let added = keep(Api(client, base).send(
        "cart item",
        "POST",
        "/api/cart/items",
        Some(me),
        Some(&item),
        None,
    ));
    if let (Some(_), Some(car)) = (added, &car) {
        keep(Api(client, base).send(
            "checkout",
            "POST",
            "/api/cart/checkout",
            Some(me),
            Some(&checkout_body(car)),
            None,
        ));
    }
    keep(Api(client, base).send(
        "balance",
        "GET",
        "/api/bonuses/balance",
        Some(me),
        None,
        None,
    ));
    keep(Api(client, base).send("orders", "GET", "/api/orders", Some(me), None, None));
}

#[test]
fn postgres_stopped_mid_traffic_answers_503_fast_and_recovers_without_a_restart() {
    const WORKERS: usize = 6;
    let test_started = Instant::now();
    let pg = OwnPostgres::start();
    let vhost = TestVhost::create();
    let server = TestServer::start(
        ServerConfig::app()
            .with_relay(&vhost)
            .env("SPIN_VARIABLE_POSTGRES_URL", &pg.url("detailing"))
            .env("SPIN_VARIABLE_POSTGRES_HOST", &pg.host()),
    );
    let sql = |query: &str| pg.psql("detailing", query);
    let client = client();
    let health = || {
        Api(&client, &server.base)
            .send("health", "GET", "/api/orders/health", None, None, None)
            .unwrap()
    };
    let answers = Mutex::new(Vec::new());
    let stop = AtomicBool::new(false);
    let customers: Vec<Actor> = (0..WORKERS).map(|_| server.customer()).collect();
    let (down, up, recovered, health_down) = std::thread::scope(|scope| {
        for me in &customers {
            let (client, answers, stop, base) = (&client, &answers, &stop, &server.base);
            scope.spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    round(client, base, me, answers);
                }
            });
        }
        std::thread::sleep(Duration::from_secs(2));
        pg.stop_server();
        let down = Instant::now();
        std::thread::sleep(Duration::from_millis(500));
        let health_down = health();
        std::thread::sleep(Duration::from_millis(2500));
        let up = Instant::now();
        pg.start_server();
        let recovered = common::wait_for(Duration::from_secs(15), health, |h| h.status == 200);
        assert_eq!(
            recovered.status,
            200,
            "{:?}\n{}",
            recovered.body,
            server.log()
        );
        let recovered = recovered.ended();
        // Traffic goes on for a while on the recovered database.
        std::thread::sleep(Duration::from_secs(2));
        stop.store(true, Ordering::SeqCst);
        (down, up, recovered, health_down)
    });
    let answers = answers.into_inner().unwrap();
    let log = server.log();

    // Health says the database is gone.
    assert_eq!(
        (health_down.status, health_down.code()),
        (503, "database_unavailable"),
        "{:?}",
        health_down.body
    );
    // While the server was down, every answer was a JSON 503 database_unavailable, fast.
    let while_down: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.started >= down && a.ended() <= up)
        .collect();
    assert!(
        while_down.len() >= 10,
        "too little traffic while PostgreSQL was down: {}",
        while_down.len()
    );
    for answer in &while_down {
        assert!(
            answer.status == 503 && answer.code() == "database_unavailable" && answer.json,
            "{} answered {} {:?} while PostgreSQL was down\n{log}",
            answer.what,
            answer.status,
            answer.body
        );
        assert!(
            answer.took < FAST,
            "{} took {:?} while PostgreSQL was down",
            answer.what,
            answer.took
        );
    }
    // Around the stop and the start, an answer is a success or that same 503: never a 500
    // or a 502 from a query cut off or an upstream that lost its database.
    for answer in &answers {
        let fine = matches!(answer.status, 200 | 201)
            || (answer.status == 503 && answer.code() == "database_unavailable");
        assert!(
            fine,
            "{} answered {} {:?}\n{log}",
            answer.what, answer.status, answer.body
        );
    }
    // Recovered without a restart: everything after health said so succeeded.
    let after: Vec<&Answer> = answers.iter().filter(|a| a.started > recovered).collect();
    assert!(!after.is_empty(), "no traffic after the recovery");
    for answer in after {
        assert!(
            matches!(answer.status, 200 | 201),
            "{} answered {} {:?} after the recovery",
            answer.what,
            answer.status,
            answer.body
        );
    }
    let recovery = recovered - up;
    assert!(
        recovery < Duration::from_secs(5),
        "took {recovery:?} to recover"
    );

    // Nothing half-written; what the client was told succeeded is there.
    let paid: Vec<String> = answers
        .iter()
        .filter(|a| a.what == "payment" && a.status == 201)
        .filter_map(Answer::id)
        .collect();
    let booked: Vec<String> = answers
        .iter()
        .filter(|a| matches!(a.what, "order" | "checkout") && a.status == 201)
        .filter_map(Answer::id)
        .collect();
    assert_eq!(
        sql(&format!(
            "SELECT count(*) FROM payments.payments WHERE status = 'succeeded' AND id IN ({})",
            quoted(&paid)
        )),
        paid.len().to_string()
    );
    assert_eq!(
        sql(&format!(
            "SELECT count(*) FROM orders.orders WHERE id IN ({})",
            quoted(&booked)
        )),
        booked.len().to_string()
    );
    let events = drained(&sql, Duration::from_secs(30));
    assert_whole(&sql);
    let cut_claims = sql("SELECT count(*) FROM payments.payments WHERE status = 'pending'");
    println!(
        "{} answers ({} while down, all 503 in at most {:?}); recovered {recovery:?} after the \
         start; {} payments seen, {events} events accrued once; {cut_claims} claims cut by \
         the stop (left to the lease); {:?} in all",
        answers.len(),
        while_down.len(),
        while_down.iter().map(|a| a.took).max().unwrap_or_default(),
        paid.len(),
        test_started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// The host SIGKILLed in the middle of concurrent writes.

#[derive(Debug, Clone)]
enum Intent {
    Order {
        who: usize,
        car: String,
    },
    Pay {
        who: usize,
        order: String,
        key: String,
    },
    Checkout {
        who: usize,
        car: String,
    },
}

#[test]
fn a_host_killed_mid_writes_keeps_every_acknowledged_write_and_nothing_else() {
    // Each customer: 2 orders to book, 2 to pay, 1 checkout. Under Spin, fewer: Spin 4.0.2
    // gives every component a pool of up to 64 PostgreSQL connections of its own, and 200
    // writes at once through four components would take more than the 100 a default
    // PostgreSQL allows (docs/spin-compatibility.md, "PostgreSQL connections").
    let customer_count: usize = if common::under_spin() { 10 } else { 40 };
    let test_started = Instant::now();
    let vhost = TestVhost::create();
    let mut server = TestServer::start(
        ServerConfig::app()
            .with_relay(&vhost)
            // Charges take a while, so the kill finds payments between claim and record.
            .env("SPIN_VARIABLE_PAYMENT_PROCESSING_DELAY_MS", "300"),
    );
    let client = client();
    let customers: Vec<Actor> = (0..customer_count).map(|_| server.customer()).collect();
    let base = server.base.clone();
    let created = |who: &Actor, what, path, body: &Value| {
        let answer = Api(&client, &base)
            .send(what, "POST", path, Some(who), Some(body), None)
            .unwrap();
        assert_eq!(answer.status, 201, "{what}: {:?}", answer.body);
        answer.id().unwrap_or_default()
    };
    // Everything the writes need, made first.
    let writes: Vec<Intent> = std::thread::scope(|scope| {
        let handles: Vec<_> = customers
            .iter()
            .enumerate()
            .map(|(who, me)| {
                let created = &created;
                scope.spawn(move || {
                    let mut writes = Vec::new();
                    for _ in 0..2 {
                        let car = created(me, "car", "/api/cars", &new_car());
                        writes.push(Intent::Order { who, car });
                        let car = created(me, "car", "/api/cars", &new_car());
                        let order = created(me, "order", "/api/orders", &booking(&car));
                        let key = uuid::Uuid::new_v4().to_string();
                        writes.push(Intent::Pay { who, order, key });
                    }
                    let car = created(me, "car", "/api/cars", &new_car());
                    created(
                        me,
                        "cart item",
                        "/api/cart/items",
                        &json!({"catalog_id": WASH, "quantity": 2}),
                    );
                    writes.push(Intent::Checkout { who, car });
                    writes
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert_eq!(writes.len(), customer_count * 5);

    // All at once; the host is SIGKILLed once a quarter of the payments are answered.
    let paid = AtomicUsize::new(0);
    let payments = writes
        .iter()
        .filter(|w| matches!(w, Intent::Pay { .. }))
        .count();
    let barrier = Barrier::new(writes.len() + 1);
    let outcomes: Vec<Result<Answer, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = writes
            .iter()
            .map(|write| {
                let (client, base, customers, paid, barrier) =
                    (&client, &base, &customers, &paid, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let outcome = match write {
                        Intent::Order { who, car } => Api(client, base).send(
                            "order",
                            "POST",
                            "/api/orders",
                            Some(&customers[*who]),
                            Some(&booking(car)),
                            None,
                        ),
                        Intent::Pay { who, order, key } => Api(client, base).send(
                            "payment",
                            "POST",
                            "/api/payments",
                            Some(&customers[*who]),
                            Some(&payment_body(order)),
                            Some(key),
                        ),
                        Intent::Checkout { who, car } => Api(client, base).send(
                            "checkout",
                            "POST",
                            "/api/cart/checkout",
                            Some(&customers[*who]),
                            Some(&checkout_body(car)),
                            None,
                        ),
                    };
                    if matches!(&outcome, Ok(answer) if answer.what == "payment") {
                        paid.fetch_add(1, Ordering::SeqCst);
                    }
                    outcome
                })
            })
            .collect();
        barrier.wait();
        let fired = Instant::now();
        while paid.load(Ordering::SeqCst) < payments / 4
            && fired.elapsed() < Duration::from_secs(20)
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        server.kill();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let seen = outcomes.iter().filter(|o| o.is_ok()).count();
    assert!(
        seen > 0 && seen < writes.len(),
        "the kill did not land mid-flight ({seen} of {} answered)",
        writes.len()
    );
    for answer in outcomes.iter().flatten() {
        assert_eq!(
            answer.status, 201,
            "{} answered {:?}",
            answer.what, answer.body
        );
    }
    server.restart();
    let sql = |query: &str| psql_db(&server.db, query);

    // Every payment retried with its key: one the client saw succeed answers the same
    // payment again; one whose answer was lost is paid now, or is still claimed by the
    // killed attempt (409 payment_in_progress until the claim's lease ends). Never twice.
    let base = server.base.clone();
    let retries: Vec<(usize, Answer)> = std::thread::scope(|scope| {
        let handles: Vec<_> = writes
            .iter()
            .enumerate()
            .filter_map(|(i, write)| match write {
                Intent::Pay { who, order, key } => Some((i, &customers[*who], order, key)),
                _ => None,
            })
            .map(|(i, who, order, key)| {
                let (client, base) = (&client, &base);
                scope.spawn(move || {
                    let answer = Api(client, base)
                        .send(
                            "payment",
                            "POST",
                            "/api/payments",
                            Some(who),
                            Some(&payment_body(order)),
                            Some(key),
                        )
                        .unwrap();
                    (i, answer)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut in_progress = 0;
    for (i, retry) in &retries {
        match &outcomes[*i] {
            Ok(first) => assert_eq!(
                (retry.status, retry.id()),
                (201, first.id()),
                "a retry of a payment the client saw succeed: {:?}",
                retry.body
            ),
            Err(_) if retry.status == 409 && retry.code() == "payment_in_progress" => {
                in_progress += 1
            }
            Err(_) => assert_eq!(retry.status, 201, "{:?}", retry.body),
        }
    }

    // Every write the client saw succeed is there, whole.
    let table = |query: &str| -> std::collections::HashMap<String, String> {
        sql(query)
            .lines()
            .filter_map(|line| line.split_once('|'))
            .map(|(key, value)| (key.to_owned(), value.to_owned()))
            .collect()
    };
    let orders = table("SELECT id, car_id FROM orders.orders");
    let payments = table("SELECT id, order_id || ' ' || status FROM payments.payments");
    let carts = table("SELECT user_id, count(*) FROM cart.items GROUP BY user_id");
    for (write, outcome) in writes.iter().zip(&outcomes) {
        let Ok(answer) = outcome else { continue };
        let id = answer.id().unwrap();
        match write {
            Intent::Order { car, .. } | Intent::Checkout { car, .. } => {
                assert_eq!(orders.get(&id), Some(car), "order {id} of car {car}")
            }
            Intent::Pay { order, .. } => assert_eq!(
                payments.get(&id),
                Some(&format!("{order} succeeded")),
                "payment {id}"
            ),
        }
        if let Intent::Checkout { who, .. } = write {
            assert_eq!(
                carts.get(&customers[*who].id.to_string()),
                None,
                "a checkout answered 201 left its cart full"
            );
        }
    }
    // Nothing else: no car booked twice, no order of a car nobody booked, no payment of an
    // order nobody paid.
    let cars: Vec<String> = writes
        .iter()
        .filter_map(|w| match w {
            Intent::Order { car, .. } | Intent::Checkout { car, .. } => Some(car.clone()),
            Intent::Pay { .. } => None,
        })
        .collect();
    let paid_orders: Vec<String> = writes
        .iter()
        .filter_map(|w| match w {
            Intent::Pay { order, .. } => Some(order.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        sql(&format!(
            "SELECT count(*) FROM (SELECT car_id FROM orders.orders WHERE car_id IN ({}) \
             GROUP BY car_id HAVING count(*) > 1) twice",
            quoted(&cars)
        )),
        "0",
        "a car booked twice"
    );
    let pay_cars = writes.len() / 5 * 2;
    assert_eq!(
        sql("SELECT count(*) FROM orders.orders"),
        (pay_cars
            + sql(&format!(
                "SELECT count(*) FROM orders.orders WHERE car_id IN ({})",
                quoted(&cars)
            ))
            .parse::<usize>()
            .unwrap())
        .to_string(),
        "orders nobody booked"
    );
    assert_eq!(
        sql(&format!(
            "SELECT count(*) FROM payments.payments WHERE order_id NOT IN ({})",
            quoted(&paid_orders)
        )),
        "0",
        "payments nobody made"
    );
    let events = drained(&sql, Duration::from_secs(60));
    assert_whole(&sql);
    println!(
        "{seen} of {} writes answered before the SIGKILL; after the restart {} payment retries \
         ({in_progress} still claimed by the killed attempt); {events} events accrued once; \
         {:?} in all",
        writes.len(),
        retries.len(),
        test_started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// RabbitMQ and Redis stopped.

/// How long the broker stays down: the 30 s, longer than the relay's reconnect
/// ceiling, so the relay is seen to come back by itself however long it waited.
const BROKER_OUTAGE: Duration = Duration::from_secs(30);

fn order_of(client: &reqwest::blocking::Client, base: &str, me: &Actor) -> String {
    let car = Api(client, base)
        .send("car", "POST", "/api/cars", Some(me), Some(&new_car()), None)
        .unwrap();
    assert_eq!(car.status, 201, "{:?}", car.body);
    let order = Api(client, base)
        .send(
            "order",
            "POST",
            "/api/orders",
            Some(me),
            Some(&booking(&car.id().unwrap())),
            None,
        )
        .unwrap();
    assert_eq!(order.status, 201, "{:?}", order.body);
    order.id().unwrap()
}

/// Pays an order of `me`'s; the answer must be 201, `within` that long.
fn pay_within(
    client: &reqwest::blocking::Client,
    base: &str,
    me: &Actor,
    within: Duration,
) -> Answer {
    let order = order_of(client, base, me);
    let key = uuid::Uuid::new_v4().to_string();
    let paid = Api(client, base)
        .send(
            "payment",
            "POST",
            "/api/payments",
            Some(me),
            Some(&payment_body(&order)),
            Some(&key),
        )
        .unwrap();
    assert_eq!(paid.status, 201, "{:?}", paid.body);
    assert!(paid.took < within, "a payment took {:?}", paid.took);
    paid
}

#[test]
fn rabbitmq_down_for_30_s_payments_succeed_and_every_event_arrives_once_after() {
    let test_started = Instant::now();
    let vhost = TestVhost::create();
    let proxy = BrokerProxy::start("127.0.0.1:5672");
    let mut config = ServerConfig::app();
    config.args.retain(|arg| arg != "--no-relay");
    let server = TestServer::start(config.arg("--amqp-url").arg(&proxy.amqp_url(&vhost)));
    let sql = |query: &str| psql_db(&server.db, query);
    let accrued = || sql("SELECT count(*) FROM bonuses.ledger WHERE kind = 'accrual'");
    let client = client();
    let me = server.customer();

    for _ in 0..3 {
        pay_within(&client, &server.base, &me, FAST);
    }
    let before = common::wait_for(Duration::from_secs(30), accrued, |n| n == "3");
    assert_eq!(before, "3", "{}", server.log());

    proxy.down();
    let down = Instant::now();
    // Payments go on while the broker is away, spread over the outage.
    let mut paid_while_down = 0;
    while down.elapsed() < BROKER_OUTAGE - Duration::from_secs(5) {
        pay_within(&client, &server.base, &me, FAST);
        paid_while_down += 1;
        std::thread::sleep(Duration::from_secs(2));
    }
    // Their events wait in the outbox; none reached bonus-service.
    assert_eq!(
        sql("SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL"),
        paid_while_down.to_string()
    );
    assert_eq!(accrued(), "3");
    std::thread::sleep(BROKER_OUTAGE.saturating_sub(down.elapsed()));
    proxy.up();
    let up = Instant::now();

    let events = drained(&sql, Duration::from_secs(30));
    let caught_up = up.elapsed();
    assert_eq!(events, (3 + paid_while_down).to_string());
    assert_whole(&sql);
    assert_eq!(vhost.ready(relay::topology::DEAD_LETTER_QUEUE), 0);
    println!(
        "{paid_while_down} payments during a {BROKER_OUTAGE:?} outage, all 201; their events \
         arrived once, {caught_up:?} after the broker came back; {:?} in all",
        test_started.elapsed()
    );
}

#[test]
fn redis_down_the_app_keeps_serving_and_only_events_published_meanwhile_are_lost() {
    if common::we_do_better(
        "Spin 4.0.2's Redis trigger ends when its connection to Redis drops, and `spin up` \
         then stops the whole app (\"A trigger exited unexpectedly. Terminating.\"); our host \
         keeps serving and subscribes again once Redis is back",
    ) {
        return;
    }
    let test_started = Instant::now();
    let mut redis = OwnRedis::start();
    let channel = format!("payment_events_{}", uuid::Uuid::new_v4().simple());
    let server = TestServer::start(
        ServerConfig::app()
            .env("SPIN_VARIABLE_PAYMENT_EVENTS_TRANSPORT", "redis")
            .env("SPIN_VARIABLE_PAYMENT_EVENTS_CHANNEL", &channel)
            .env("SPIN_VARIABLE_REDIS_URL", &redis.url())
            .env("SPIN_VARIABLE_REDIS_HOST", &redis.host()),
    );
    let subscriptions = |count: usize| {
        let log = common::wait_for(
            Duration::from_secs(20),
            || server.log(),
            |log| log.matches("redis trigger subscribed").count() >= count,
        );
        assert!(
            log.matches("redis trigger subscribed").count() >= count,
            "{log}"
        );
    };
    let sql = |query: &str| psql_db(&server.db, query);
    let accrued = || sql("SELECT count(*) FROM bonuses.ledger WHERE kind = 'accrual'");
    let client = client();
    let me = server.customer();
    subscriptions(1);
    pay_within(&client, &server.base, &me, FAST);
    assert_eq!(
        common::wait_for(Duration::from_secs(15), accrued, |n| n == "1"),
        "1"
    );

    redis.stop_server();
    // The app keeps serving: payments succeed (their events are lost), reads answer.
    let mut lost = Vec::new();
    for _ in 0..3 {
        lost.push(pay_within(&client, &server.base, &me, FAST).id().unwrap());
        let balance = Api(&client, &server.base)
            .send(
                "balance",
                "GET",
                "/api/bonuses/balance",
                Some(&me),
                None,
                None,
            )
            .unwrap();
        assert_eq!(balance.status, 200, "{:?}", balance.body);
        assert!(balance.took < FAST);
    }
    redis.start_server();
    // Published again once the trigger has resubscribed: pub/sub keeps nothing for later.
    subscriptions(2);
    pay_within(&client, &server.base, &me, FAST);
    assert_eq!(
        common::wait_for(Duration::from_secs(15), accrued, |n| n == "2"),
        "2",
        "an event published after Redis came back did not arrive\n{}",
        server.log()
    );
    // At most once: the events of the payments made while Redis was down never arrive.
    // Their outbox rows still record them, for reconciliation.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(accrued(), "2");
    assert_eq!(
        sql(&format!(
            "SELECT count(*) FROM payments.outbox WHERE payment_id IN ({})",
            quoted(&lost)
        )),
        "3"
    );
    println!(
        "3 payments while Redis was down, all 201 and fast, their events lost; delivery back \
         after the restart; {:?} in all",
        test_started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------
// Dependencies that accept connections and never answer.

/// The request timeout of the silent-dependency tests: short, so a request that waits for
/// the deadline instead of its dependency's timeout shows.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(8);

fn short_deadline(config: ServerConfig) -> ServerConfig {
    config
        .arg("--request-timeout-ms")
        .arg(&REQUEST_TIMEOUT.as_millis().to_string())
}

#[test]
fn a_silent_car_service_ends_bookings_with_504_before_the_deadline() {
    if common::we_do_better(SPIN_WAITS_FOREVER) {
        return;
    }
    let test_started = Instant::now();
    let hole = silent_listener();
    let server = TestServer::start(short_deadline(ServerConfig::app().env(
        "SPIN_VARIABLE_CAR_SERVICE_URL",
        &format!("http://127.0.0.1:{hole}"),
    )));
    let client = client();
    let me = server.customer();
    let car = uuid::Uuid::new_v4().to_string();
    std::thread::scope(|scope| {
        let order = scope.spawn(|| {
            Api(&client, &server.base)
                .send(
                    "order",
                    "POST",
                    "/api/orders",
                    Some(&me),
                    Some(&booking(&car)),
                    None,
                )
                .unwrap()
        });
        // Checkout chains to order-service, which waits on car-service.
        let added = Api(&client, &server.base)
            .send(
                "cart item",
                "POST",
                "/api/cart/items",
                Some(&me),
                Some(&json!({"catalog_id": WASH, "quantity": 1})),
                None,
            )
            .unwrap();
        assert_eq!(added.status, 201);
        let checkout = Api(&client, &server.base)
            .send(
                "checkout",
                "POST",
                "/api/cart/checkout",
                Some(&me),
                Some(&checkout_body(&car)),
                None,
            )
            .unwrap();
        let order = order.join().unwrap();
        assert_eq!(
            (order.status, order.code()),
            (504, "car_service_timeout"),
            "{:?}",
            order.body
        );
        assert_eq!(
            (checkout.status, checkout.code()),
            (504, "order_service_timeout"),
            "{:?}",
            checkout.body
        );
        for answer in [&order, &checkout] {
            assert!(
                answer.took < REQUEST_TIMEOUT,
                "{} took {:?}",
                answer.what,
                answer.took
            );
            println!(
                "{} answered {} in {:?}",
                answer.what, answer.status, answer.took
            );
        }
    });
    println!("{:?} in all", test_started.elapsed());
}

#[test]
fn a_silent_postgres_ends_requests_with_503_within_the_connect_timeout() {
    if common::we_do_better(SPIN_WAITS_FOREVER) {
        return;
    }
    let test_started = Instant::now();
    let hole = silent_listener();
    let server = TestServer::start(short_deadline(
        ServerConfig::app()
            .arg("--skip-migrations")
            .env(
                "SPIN_VARIABLE_POSTGRES_URL",
                &format!("postgres://postgres@127.0.0.1:{hole}/detailing?sslmode=disable"),
            )
            .env("SPIN_VARIABLE_POSTGRES_HOST", &format!("127.0.0.1:{hole}")),
    ));
    let client = client();
    let me = server.customer();
    let answers: Vec<Answer> = std::thread::scope(|scope| {
        let calls: Vec<(&'static str, &'static str, String, Option<Value>)> = vec![
            ("health", "GET", "/api/cars/health".into(), None),
            ("cars", "GET", "/api/cars".into(), None),
            ("car", "POST", "/api/cars".into(), Some(new_car())),
            ("orders", "GET", "/api/orders".into(), None),
            ("balance", "GET", "/api/bonuses/balance".into(), None),
            ("cart", "GET", "/api/cart".into(), None),
            (
                "payment",
                "POST",
                "/api/payments".into(),
                Some(payment_body(&uuid::Uuid::new_v4().to_string())),
            ),
            (
                "login",
                "POST",
                "/api/users/login".into(),
                Some(json!({"email": "nobody@example.com", "password": "whatever it is"})),
            ),
        ];
        let handles: Vec<_> = calls
            .into_iter()
            .map(|(what, method, path, body)| {
                let (client, server, me) = (&client, &server, &me);
                scope.spawn(move || {
                    Api(client, &server.base)
                        .send(what, method, &path, Some(me), body.as_ref(), None)
                        .unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for answer in &answers {
        assert_eq!(
            (answer.status, answer.code(), answer.json),
            (503, "database_unavailable", true),
            "{}: {:?}\n{}",
            answer.what,
            answer.body,
            server.log()
        );
        assert!(
            answer.took < REQUEST_TIMEOUT,
            "{} took {:?}",
            answer.what,
            answer.took
        );
    }
    println!(
        "every answer 503 database_unavailable, the slowest in {:?}; {:?} in all",
        answers.iter().map(|a| a.took).max().unwrap(),
        test_started.elapsed()
    );
}

#[test]
fn a_silent_redis_never_holds_a_payment_up() {
    if common::we_do_better(SPIN_WAITS_FOREVER) {
        return;
    }
    let test_started = Instant::now();
    let hole = silent_listener();
    let server = TestServer::start(short_deadline(
        ServerConfig::app()
            .env("SPIN_VARIABLE_PAYMENT_EVENTS_TRANSPORT", "redis")
            .env(
                "SPIN_VARIABLE_REDIS_URL",
                &format!("redis://127.0.0.1:{hole}"),
            )
            .env("SPIN_VARIABLE_REDIS_HOST", &format!("127.0.0.1:{hole}")),
    ));
    let client = client();
    let me = server.customer();
    // Each payment waits for Redis at most its connect timeout (1 s, runtime::limits).
    for _ in 0..2 {
        let paid = pay_within(&client, &server.base, &me, FAST + Duration::from_secs(1));
        println!("payment answered 201 in {:?}", paid.took);
    }
    let answer = Api(&client, &server.base)
        .send("cars", "GET", "/api/cars", Some(&me), None, None)
        .unwrap();
    assert_eq!(answer.status, 200);
    println!("{:?} in all", test_started.elapsed());
}
