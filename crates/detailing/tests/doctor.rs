//! `detailing doctor` run as a person runs it, against this machine's PostgreSQL, RabbitMQ and
//! Redis: it passes on a working set-up, reports a missing database without creating it, and
//! names the service and the command that fixes it when something is down.

mod common;

use common::{
    ensure_components_built, psql, psql_db, repo_root, TestDb, TEST_EVENT_SIGNING_KEY,
    TEST_JWT_SECRET, TEST_RELAY_TOKEN,
};
use std::net::TcpListener;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Why these tests are skipped under `SPIN_BIN` (see `common::host_only`).
const WHY_HOST_ONLY: &str = "`detailing doctor` checks our host's setup; host-internal";

/// What one run of `detailing doctor` printed and how it ended.
struct Report {
    output: Output,
    took: Duration,
}

impl Report {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The report's line that starts with `prefix`, e.g. `FAIL redis`.
    fn line(&self, prefix: &str) -> String {
        let stdout = self.stdout();
        stdout
            .lines()
            .find(|line| line.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{}", self.dump()))
            .to_owned()
    }

    fn passed(&self) -> bool {
        self.output.status.success()
    }

    fn dump(&self) -> String {
        format!(
            "status {}\n--- stdout\n{}--- stderr\n{}",
            self.output.status,
            self.stdout(),
            self.stderr()
        )
    }
}

/// Runs the doctor on the app's manifest with the test secrets, the default broker and Redis
/// URLs (unless `env` says otherwise) and `listen` as the address to check.
fn doctor(listen: &str, env: &[(&str, &str)]) -> Report {
    ensure_components_built();
    let root = repo_root();
    let mut command = Command::new(env!("CARGO_BIN_EXE_detailing"));
    command
        .arg("--manifest")
        .arg(root.join("spin.toml"))
        .arg("--migrations")
        .arg(root.join("migrations"))
        .args(["doctor", "--listen", listen])
        .env_remove("AMQP_URL")
        .env_remove("SPIN_VARIABLE_REDIS_URL")
        .env_remove("NO_COLOR")
        .env("SPIN_VARIABLE_JWT_SECRET", TEST_JWT_SECRET)
        .env("SPIN_VARIABLE_RELAY_TOKEN", TEST_RELAY_TOKEN)
        .env("SPIN_VARIABLE_EVENT_SIGNING_KEY", TEST_EVENT_SIGNING_KEY)
        .env("RUST_LOG", "warn");
    for (name, value) in env {
        command.env(name, value);
    }
    let started = Instant::now();
    let output = command.output().expect("cannot run detailing doctor");
    Report {
        output,
        took: started.elapsed(),
    }
}

/// A loopback address nothing listens on: bound by us, then released.
fn free_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().to_string()
}

fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn migration_files() -> usize {
    std::fs::read_dir(repo_root().join("migrations"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "sql")
        })
        .count()
}

#[test]
fn doctor_passes_on_this_machine_and_only_reads_the_database() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let db = TestDb::create();
    let url = db.url();
    let files = migration_files();
    let fresh = doctor(&free_address(), &[("SPIN_VARIABLE_POSTGRES_URL", &url)]);
    assert!(fresh.passed(), "{}", fresh.dump());
    for check in [
        "toolchain",
        "components",
        "postgresql",
        "rabbitmq",
        "redis",
        "secrets",
        "listen",
    ] {
        fresh.line(&format!("ok   {check} "));
    }
    let migrations = fresh.line("warn migrations");
    assert!(
        migrations.contains(&format!("0 of {files} applied in `{}`; pending: ", db.name)),
        "{}",
        fresh.dump()
    );
    assert!(fresh
        .line("warn migrations: ")
        .contains("`detailing migrate`"));
    assert!(fresh
        .stdout()
        .ends_with("All required checks passed (1 warning).\n"));
    assert_eq!(
        psql_db(
            &db,
            "SELECT to_regclass('public.schema_migrations') IS NULL"
        ),
        "t",
        "the doctor applied migrations"
    );

    let migrate = Command::new(env!("CARGO_BIN_EXE_detailing"))
        .arg("--manifest")
        .arg(repo_root().join("spin.toml"))
        .arg("migrate")
        .env("SPIN_VARIABLE_POSTGRES_URL", &url)
        .env("SPIN_VARIABLE_JWT_SECRET", TEST_JWT_SECRET)
        .env("SPIN_VARIABLE_RELAY_TOKEN", TEST_RELAY_TOKEN)
        .output()
        .unwrap();
    assert!(migrate.status.success(), "{migrate:?}");
    let migrated = doctor(&free_address(), &[("SPIN_VARIABLE_POSTGRES_URL", &url)]);
    assert!(migrated.passed(), "{}", migrated.dump());
    assert_eq!(
        migrated.line("ok   migrations"),
        format!(
            "ok   migrations  {files} of {files} applied in `{}`",
            db.name
        )
    );
    assert!(migrated.stdout().ends_with("\nAll checks passed.\n"));
}

#[test]
fn doctor_reports_a_missing_database_without_creating_it() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let name = format!("detailing_test_{}", uuid::Uuid::new_v4().simple());
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}?sslmode=disable");
    let report = doctor(&free_address(), &[("SPIN_VARIABLE_POSTGRES_URL", &url)]);
    // `detailing up` creates the database itself, so a missing one is a warning, not a failure.
    assert!(report.passed(), "{}", report.dump());
    report.line("ok   postgresql  127.0.0.1:5432 answers");
    assert_eq!(
        report.line("warn migrations "),
        format!(
            "warn migrations  database `{name}` does not exist yet: 0 of {} applied",
            migration_files()
        )
    );
    assert!(report
        .line("warn migrations: ")
        .contains("`detailing migrate` creates it"));
    assert_eq!(
        psql(&format!(
            "SELECT count(*) FROM pg_database WHERE datname = '{name}'"
        )),
        "0",
        "the doctor created the database"
    );
}

#[test]
fn doctor_fails_naming_rabbitmq_and_redis_when_their_ports_are_closed() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let db = TestDb::create();
    let amqp = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port());
    let redis = format!("redis://127.0.0.1:{}", closed_port());
    let report = doctor(
        &free_address(),
        &[
            ("SPIN_VARIABLE_POSTGRES_URL", &db.url()),
            ("AMQP_URL", &amqp),
            ("SPIN_VARIABLE_REDIS_URL", &redis),
        ],
    );
    assert_eq!(report.output.status.code(), Some(1), "{}", report.dump());
    assert!(report
        .line("FAIL rabbitmq ")
        .contains("guest:***@127.0.0.1:"));
    assert!(report.line("FAIL redis ").contains(&redis));
    assert!(report
        .line("FAIL rabbitmq: ")
        .contains("`rabbitmq-server -detached`"));
    assert!(report
        .line("FAIL redis: ")
        .contains("`redis-server --daemonize yes --port 6379`"));
    report.line("ok   postgresql ");
    assert!(
        report
            .stderr()
            .contains("Error: 2 checks failed: rabbitmq, redis"),
        "{}",
        report.dump()
    );
    assert!(
        report.took < Duration::from_secs(15),
        "took {:?}",
        report.took
    );
}

#[test]
fn doctor_fails_on_a_short_jwt_secret_and_a_busy_port() {
    if common::host_only(WHY_HOST_ONLY) {
        return;
    }
    let db = TestDb::create();
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    let report = doctor(
        &address,
        &[
            ("SPIN_VARIABLE_POSTGRES_URL", &db.url()),
            (
                "SPIN_VARIABLE_JWT_SECRET",
                "only-31-bytes-long-not-enough!!",
            ),
        ],
    );
    assert_eq!(report.output.status.code(), Some(1), "{}", report.dump());
    assert!(report
        .line("FAIL secrets ")
        .contains("SPIN_VARIABLE_JWT_SECRET is too short"));
    assert!(report
        .line("FAIL secrets: ")
        .contains("`export SPIN_VARIABLE_JWT_SECRET=$(openssl rand -hex 32)`"));
    assert!(report
        .line("FAIL listen ")
        .ends_with(&format!(" {address} is in use (another `detailing up`?)")));
    assert!(report.line("FAIL listen: ").contains("--listen 127.0.0.1:"));
    assert!(report
        .stderr()
        .contains("Error: 2 checks failed: secrets, listen"));
    drop(busy);
}
