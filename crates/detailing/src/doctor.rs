//! `detailing doctor`: checks what `detailing up` needs on this machine and says how to fix what
//! is missing. It creates no database, applies no migration and starts no service (only the dev
//! secrets are generated when absent, as every subcommand does); each check gives up in 2 s.

use crate::builder::Toolchain;
use crate::migrate::{self, Migration};
use crate::settings::{self, Settings};
use anyhow::{bail, Result};
use runtime::manifest::LoadedManifest;
use runtime::variables::env_name;
use runtime::AppVariables;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;
use tokio::time::timeout;

/// How long one check may take: long enough for a local service, short enough not to hang.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// What a check says when its service kept quiet for the whole [`CHECK_TIMEOUT`].
fn no_answer() -> String {
    format!("no answer within {} s", CHECK_TIMEOUT.as_secs())
}

/// The secrets the app's components require; `detailing up` generates development ones.
const SECRETS: [&str; 3] = ["jwt_secret", "relay_token", "event_signing_key"];

/// The target every component is built for, wanted even without a `rust-toolchain.toml`.
const WASM_TARGET: &str = "wasm32-wasip1";

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The address `detailing up` would listen on (checked to be free).
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// The broker the relay would use.
    #[arg(long, env = "AMQP_URL", default_value = relay::RelayConfig::DEFAULT_AMQP_URL)]
    amqp_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Pass,
    /// Works now, but deserves attention; never fails the run.
    Warn,
    /// Not checked, because something it depends on failed or is absent.
    Skip,
    Fail,
}

/// One check's outcome: a line for the report and, when something is wrong, what to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Pass, detail, None)
    }

    fn skip(name: &'static str, detail: impl Into<String>) -> Self {
        Self::new(name, Status::Skip, detail, None)
    }

    fn warn(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Warn, detail, Some(fix.into()))
    }

    fn fail(name: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(name, Status::Fail, detail, Some(fix.into()))
    }

    fn new(
        name: &'static str,
        status: Status,
        detail: impl Into<String>,
        fix: Option<String>,
    ) -> Self {
        Self {
            name,
            status,
            detail: detail.into(),
            fix,
        }
    }
}

/// How a status is drawn: coloured symbols for a person at a terminal, words in logs and
/// pipes (and wherever `NO_COLOR` asks for plain output, https://no-color.org).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marks {
    fancy: bool,
}

impl Marks {
    pub(crate) fn detect(is_terminal: bool) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            fancy: is_terminal && !no_color,
        }
    }

    pub(crate) fn fancy(self) -> bool {
        self.fancy
    }

    pub(crate) fn mark(self, status: Status) -> &'static str {
        match (self.fancy, status) {
            (true, Status::Pass) => "\x1b[32m✓\x1b[0m",
            (true, Status::Warn) => "\x1b[33m!\x1b[0m",
            (true, Status::Skip) => "\x1b[2m-\x1b[0m",
            (true, Status::Fail) => "\x1b[31m✗\x1b[0m",
            (false, Status::Pass) => "ok  ",
            (false, Status::Warn) => "warn",
            (false, Status::Skip) => "skip",
            (false, Status::Fail) => "FAIL",
        }
    }
}

/// Runs every check, prints the report on stdout and fails when a required check failed.
pub fn run(manifest: &LoadedManifest, migrations: &Path, args: DoctorArgs) -> Result<()> {
    let settings = Settings::load(&manifest.dir);
    let from_dev_files: Vec<&str> = SECRETS
        .into_iter()
        .filter(|name| std::env::var(env_name(name)).is_err())
        .collect();
    let postgres_url = match &settings {
        Ok(settings) => settings.postgres_url.clone(),
        Err(_) => std::env::var(env_name("postgres_url"))
            .unwrap_or_else(|_| settings::DEFAULT_POSTGRES_URL.to_owned()),
    };
    let redis_url = settings
        .as_ref()
        .ok()
        .and_then(|s| AppVariables::resolve(&manifest.manifest.variables, &s.variables).ok())
        .and_then(|variables| variables.get("redis_url").map(str::to_owned));
    let secrets = match &settings {
        Ok(settings) => check_secrets(settings, manifest, &from_dev_files),
        Err(e) => Check::fail(
            "secrets",
            format!("{e:#}"),
            "make .detailing/ writable, or set SPIN_VARIABLE_JWT_SECRET, SPIN_VARIABLE_RELAY_TOKEN and SPIN_VARIABLE_EVENT_SIGNING_KEY",
        ),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The network checks run at once: a dead set-up costs about one timeout, not one per service.
    let (toolchain, [postgres, migrations], rabbitmq, redis) = runtime.block_on(async {
        tokio::join!(
            check_toolchain(&manifest.dir),
            check_postgres(&postgres_url, migrations),
            check_rabbitmq(&args.amqp_url),
            check_redis(redis_url.as_deref()),
        )
    });
    let checks = [
        toolchain,
        check_components(manifest),
        postgres,
        migrations,
        rabbitmq,
        redis,
        secrets,
        check_listen(args.listen),
    ];
    print!(
        "{}",
        render(&checks, Marks::detect(std::io::stdout().is_terminal()))
    );
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name)
        .collect();
    if !failed.is_empty() {
        bail!(
            "{} check{} failed: {}",
            failed.len(),
            if failed.len() == 1 { "" } else { "s" },
            failed.join(", ")
        );
    }
    Ok(())
}

/// The report: one line per check, then what to do about each failure and warning.
fn render(checks: &[Check], marks: Marks) -> String {
    let mut out = String::new();
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for check in checks {
        let _ = writeln!(
            out,
            "{} {:width$}  {}",
            marks.mark(check.status),
            check.name,
            check.detail
        );
    }
    let mut todo: Vec<&Check> = checks.iter().filter(|c| c.fix.is_some()).collect();
    // Failures first: they are what stands between this machine and `detailing up`.
    todo.sort_by_key(|c| c.status != Status::Fail);
    if !todo.is_empty() {
        let _ = writeln!(out, "\nWhat to do:");
        for check in &todo {
            let fix = check.fix.as_deref().unwrap_or_default();
            let _ = writeln!(out, "{} {}: {fix}", marks.mark(check.status), check.name);
        }
        let _ = writeln!(
            out,
            "(in a checkout, `detailing` is `cargo run --release -p detailing --`)"
        );
    }
    if !checks.iter().any(|c| c.status == Status::Fail) {
        let warnings = todo.len();
        let _ = match warnings {
            0 => writeln!(out, "\nAll checks passed."),
            1 => writeln!(out, "\nAll required checks passed (1 warning)."),
            n => writeln!(out, "\nAll required checks passed ({n} warnings)."),
        };
    }
    out
}

/// The pinned toolchain is installed with the targets it lists (at least `wasm32-wasip1`).
async fn check_toolchain(app_dir: &Path) -> Check {
    let pinned = Toolchain::read(app_dir).unwrap_or_default();
    let mut wanted = pinned.targets;
    if wanted.is_empty() {
        wanted.push(WASM_TARGET.to_owned());
    }
    let mut command = tokio::process::Command::new("rustup");
    command
        .args(["target", "list", "--installed"])
        .current_dir(app_dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    // Named explicitly, so rustup answers about it instead of installing it on first use.
    if let Some(channel) = &pinned.channel {
        command.args(["--toolchain", channel]);
    }
    let answer = match timeout(CHECK_TIMEOUT, command.output()).await {
        Err(_) => Err(Rustup::Failed(no_answer())),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => Err(Rustup::Missing),
        Ok(Err(e)) => Err(Rustup::Failed(e.to_string())),
        Ok(Ok(out)) if out.status.success() => Ok(String::from_utf8_lossy(&out.stdout).into()),
        Ok(Ok(out)) => Err(Rustup::Failed(
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .next()
                .unwrap_or("rustup failed")
                .trim_start_matches("error: ")
                .to_owned(),
        )),
    };
    toolchain_check(pinned.channel.as_deref(), &wanted, answer)
}

/// What asking rustup went wrong with.
#[derive(Debug)]
enum Rustup {
    Missing,
    Failed(String),
}

fn toolchain_check(
    channel: Option<&str>,
    wanted: &[String],
    installed: Result<String, Rustup>,
) -> Check {
    const NAME: &str = "toolchain";
    let toolchain = channel.unwrap_or("the active toolchain");
    match installed {
        Err(Rustup::Missing) => Check::fail(
            NAME,
            "rustup is not installed",
            "install it: `curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh`",
        ),
        Err(Rustup::Failed(why)) => {
            let fix = match channel {
                Some(channel) => format!(
                    "`rustup toolchain install {channel} --target {}`",
                    wanted.join(",")
                ),
                None => "see `rustup show`".to_owned(),
            };
            Check::fail(NAME, format!("{toolchain}: {why}"), fix)
        }
        Ok(list) => {
            let missing: Vec<&str> = wanted
                .iter()
                .map(String::as_str)
                .filter(|target| !list.lines().any(|line| line.trim() == *target))
                .collect();
            if missing.is_empty() {
                return Check::pass(NAME, format!("{toolchain} with {}", wanted.join(", ")));
            }
            let toolchain_flag = channel
                .map(|c| format!("--toolchain {c} "))
                .unwrap_or_default();
            Check::fail(
                NAME,
                format!("{toolchain} lacks the target {}", missing.join(", ")),
                format!(
                    "`rustup target add {toolchain_flag}{}` (`detailing build` adds it too)",
                    missing.join(" ")
                ),
            )
        }
    }
}

/// Every component's `source` is there to load.
fn check_components(manifest: &LoadedManifest) -> Check {
    const NAME: &str = "components";
    let all = &manifest.manifest.component;
    let missing: Vec<String> = all
        .iter()
        .filter(|(_, c)| !manifest.source_path(c).is_file())
        .map(|(id, c)| format!("{id} ({})", c.source))
        .collect();
    if missing.is_empty() {
        return Check::pass(NAME, format!("{0} of {0} built", all.len()));
    }
    Check::fail(
        NAME,
        format!(
            "{} of {} not built: {}",
            missing.len(),
            all.len(),
            missing.join(", ")
        ),
        "`detailing build` (or start with `detailing up --build`)",
    )
}

/// PostgreSQL answers at `url`, and how the database's migrations compare with the files.
/// Read-only: a missing database is reported, not created.
async fn check_postgres(url: &str, migrations_dir: &Path) -> [Check; 2] {
    const NAME: &str = "postgresql";
    let shown = migrate::redact(url);
    let files = migrate::discover(migrations_dir);
    let parsed: pgconnect::ConnectionString = match url.parse() {
        Ok(parsed) => parsed,
        Err(e) => {
            return [
                Check::fail(
                    NAME,
                    format!("{shown} is not a connection string: {e}"),
                    format!(
                        "set SPIN_VARIABLE_POSTGRES_URL, e.g. to {}",
                        settings::DEFAULT_POSTGRES_URL
                    ),
                ),
                Check::skip("migrations", "no database to compare with"),
            ];
        }
    };
    let tls = match parsed.tls() {
        Ok(tls) => tls,
        Err(e) => {
            return [
                Check::fail(
                    NAME,
                    format!("{shown}: {e}"),
                    "fix sslmode/sslrootcert in SPIN_VARIABLE_POSTGRES_URL",
                ),
                Check::skip("migrations", "no database to compare with"),
            ]
        }
    };
    let mut config = parsed.config().clone();
    config.connect_timeout(CHECK_TIMEOUT);
    let database = config.get_dbname().unwrap_or("postgres").to_owned();
    let server = settings::host_port(url).unwrap_or_else(|| shown.clone());
    let attempt = timeout(CHECK_TIMEOUT, async {
        let (client, connection) = config.connect(tls).await?;
        tokio::spawn(connection);
        let version: String = client
            .query_one("SELECT current_setting('server_version')", &[])
            .await?
            .get(0);
        let applied = applied_migrations(&client).await?;
        Ok::<_, tokio_postgres::Error>((version, applied))
    })
    .await;
    let unreachable = |why: String| {
        [
            Check::fail(
                NAME,
                format!("{shown}: {why}"),
                "start PostgreSQL: `pg_ctlcluster $(ls /etc/postgresql) main start`, or set \
                 SPIN_VARIABLE_POSTGRES_URL to a server that runs",
            ),
            Check::skip("migrations", "no database to compare with"),
        ]
    };
    match attempt {
        Ok(Ok((version, applied))) => [
            Check::pass(NAME, format!("{shown} answers (PostgreSQL {version})")),
            migration_state(files, Some(&applied), &database),
        ],
        Ok(Err(e)) if is_missing_database(&e) => [
            Check::pass(NAME, format!("{server} answers (PostgreSQL)")),
            migration_state(files, None, &database),
        ],
        // The server answered and refused: the URL's user, password or database is wrong.
        Ok(Err(e)) if e.as_db_error().is_some() => [
            Check::fail(
                NAME,
                format!("{shown}: {:#}", anyhow::Error::from(e)),
                "check the user, password and database in SPIN_VARIABLE_POSTGRES_URL",
            ),
            Check::skip("migrations", "no database to compare with"),
        ],
        Ok(Err(e)) => unreachable(format!("{:#}", anyhow::Error::from(e))),
        Err(_) => unreachable(no_answer()),
    }
}

/// migrate.rs keeps its own check private; this is the same SQLSTATE (3D000).
fn is_missing_database(e: &tokio_postgres::Error) -> bool {
    e.code() == Some(&tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
}

/// `(version, checksum)` of every applied migration; none before the first `detailing migrate`.
async fn applied_migrations(
    client: &tokio_postgres::Client,
) -> Result<Vec<(String, String)>, tokio_postgres::Error> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('public.schema_migrations') IS NOT NULL",
            &[],
        )
        .await?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            "SELECT version, checksum FROM public.schema_migrations ORDER BY version",
            &[],
        )
        .await?;
    Ok(rows.iter().map(|row| (row.get(0), row.get(1))).collect())
}

/// The database's migrations (`None`: no database yet) against the files, as migrate.rs
/// would judge them: a changed file stops `detailing up`, pending ones it applies itself.
fn migration_state(
    files: Result<Vec<Migration>>,
    applied: Option<&[(String, String)]>,
    database: &str,
) -> Check {
    const NAME: &str = "migrations";
    let files = match files {
        Ok(files) => files,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{e:#}"),
                "run from the checkout, or pass --migrations <folder>",
            )
        }
    };
    let total = files.len();
    let Some(applied) = applied else {
        return Check::warn(
            NAME,
            format!("database `{database}` does not exist yet: 0 of {total} applied"),
            "`detailing migrate` creates it and applies them (`detailing up` does too)",
        );
    };
    let checksum_of = |version: &str| {
        applied
            .iter()
            .find(|(v, _)| v == version)
            .map(|(_, c)| c.as_str())
    };
    if let Some(changed) = files
        .iter()
        .find(|m| checksum_of(&m.version).is_some_and(|c| c != m.checksum))
    {
        return Check::fail(
            NAME,
            format!(
                "{} was changed after it was applied; `detailing up` refuses to start",
                changed.version
            ),
            format!(
                "restore it (`git log -p -- {}`) and put the change in a new migration",
                changed.path.display()
            ),
        );
    }
    let pending: Vec<&str> = files
        .iter()
        .filter(|m| checksum_of(&m.version).is_none())
        .map(|m| m.version.as_str())
        .collect();
    let unknown: Vec<&str> = applied
        .iter()
        .filter(|(v, _)| !files.iter().any(|m| &m.version == v))
        .map(|(v, _)| v.as_str())
        .collect();
    let done = total - pending.len();
    if !pending.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "{done} of {total} applied in `{database}`; pending: {}",
                abbreviate(&pending)
            ),
            "`detailing migrate` (`detailing up` applies them first)",
        );
    }
    if !unknown.is_empty() {
        return Check::warn(
            NAME,
            format!(
                "{total} of {total} applied, and `{database}` also has {} that this checkout lacks",
                abbreviate(&unknown)
            ),
            "update the checkout (`git pull`), or give this one its own database in \
             SPIN_VARIABLE_POSTGRES_URL",
        );
    }
    Check::pass(NAME, format!("{total} of {total} applied in `{database}`"))
}

/// The first few names of a list and how many more there are.
fn abbreviate(names: &[&str]) -> String {
    const SHOWN: usize = 3;
    match names.len() {
        n if n <= SHOWN => names.join(", "),
        n => format!("{} and {} more", names[..SHOWN].join(", "), n - SHOWN),
    }
}

/// The relay's broker accepts a real AMQP connection (credentials and vhost included).
async fn check_rabbitmq(url: &str) -> Check {
    const NAME: &str = "rabbitmq";
    let shown = relay::redact(url);
    let uri: lapin::uri::AMQPUri = match url.parse() {
        Ok(uri) => uri,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{shown} is not an AMQP URL: {e}"),
                format!(
                    "set AMQP_URL (or --amqp-url), e.g. to {}",
                    relay::RelayConfig::DEFAULT_AMQP_URL
                ),
            )
        }
    };
    let properties = lapin::ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name("detailing-doctor".into());
    let unreachable = |why: String| {
        Check::fail(
            NAME,
            format!("{shown}: {why}"),
            "start RabbitMQ: `rabbitmq-server -detached`, or set AMQP_URL (or --amqp-url) to a \
             broker that runs",
        )
    };
    match timeout(
        CHECK_TIMEOUT,
        lapin::Connection::connect_uri(uri, properties),
    )
    .await
    {
        Ok(Ok(connection)) => {
            // Closed properly, so the broker does not log an abrupt disconnect.
            let _ = timeout(CHECK_TIMEOUT, connection.close(200, "doctor is done")).await;
            Check::pass(NAME, format!("{shown} accepts a connection"))
        }
        Ok(Err(lapin::Error::IOError(e))) => unreachable(e.to_string()),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("{shown}: {e}"),
            "check the user, password and vhost in AMQP_URL (`rabbitmqctl list_users`, \
             `rabbitmqctl list_vhosts`)",
        ),
        Err(_) => unreachable(no_answer()),
    }
}

/// Redis answers `PING` at the app's `redis_url`.
async fn check_redis(url: Option<&str>) -> Check {
    const NAME: &str = "redis";
    let Some(url) = url else {
        return Check::skip(
            NAME,
            "no redis_url (the manifest declares none, or its variables do not resolve)",
        );
    };
    let shown = relay::redact(url);
    let unreachable = |why: String| {
        Check::fail(
            NAME,
            format!("{shown}: {why}"),
            "start Redis: `redis-server --daemonize yes --port 6379`, or set \
             SPIN_VARIABLE_REDIS_URL to a server that runs",
        )
    };
    let client = match redis::Client::open(url) {
        Ok(client) => client,
        Err(e) => {
            return Check::fail(
                NAME,
                format!("{shown} is not a Redis URL: {e}"),
                "set SPIN_VARIABLE_REDIS_URL, e.g. to redis://127.0.0.1:6379",
            )
        }
    };
    let ping = timeout(CHECK_TIMEOUT, async {
        let mut connection = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING")
            .query_async::<String>(&mut connection)
            .await
    })
    .await;
    match ping {
        Ok(Ok(pong)) if pong == "PONG" => Check::pass(NAME, format!("{shown} answers PONG")),
        Ok(Ok(other)) => unreachable(format!("answered {other:?} to PING, not PONG")),
        Ok(Err(e)) if e.is_io_error() => unreachable(e.to_string()),
        Ok(Err(e)) => Check::fail(
            NAME,
            format!("{shown}: {e}"),
            "check the password and database number in SPIN_VARIABLE_REDIS_URL \
             (redis://:password@host:port/db)",
        ),
        Err(_) => unreachable(no_answer()),
    }
}

/// The secrets resolve as `detailing up` resolves them (`jwt_secret` at least 32 bytes);
/// development values are fine here and worth a warning.
fn check_secrets(settings: &Settings, manifest: &LoadedManifest, from_dev_files: &[&str]) -> Check {
    const NAME: &str = "secrets";
    let declared: Vec<&str> = SECRETS
        .into_iter()
        .filter(|name| manifest.manifest.variables.contains_key(*name))
        .collect();
    if let Err(e) = AppVariables::resolve(&manifest.manifest.variables, &settings.variables) {
        return Check::fail(NAME, format!("{e:#}"), "export each variable named above");
    }
    // Resolving without the length check passed, so a failure here is the weak key.
    let variables =
        match settings.resolve(manifest) {
            Ok(variables) => variables,
            Err(e) => return Check::fail(
                NAME,
                format!("{e:#}"),
                "use 32 bytes or more: `export SPIN_VARIABLE_JWT_SECRET=$(openssl rand -hex 32)`",
            ),
        };
    if let Some(empty) = declared
        .iter()
        .find(|name| variables.get(name).is_some_and(str::is_empty))
    {
        let variable = env_name(empty);
        return Check::fail(
            NAME,
            format!("{variable} is empty"),
            format!(
                "`export {variable}=$(openssl rand -hex 32)`, or unset it for a development one"
            ),
        );
    }
    let development: Vec<&str> = declared
        .iter()
        .copied()
        .filter(|name| from_dev_files.contains(name))
        .collect();
    if development.is_empty() {
        return Check::pass(NAME, format!("{} set", declared.join(", ")));
    }
    let variables: Vec<String> = development.iter().map(|name| env_name(name)).collect();
    Check::warn(
        NAME,
        format!(
            "{} set; the development {} from .detailing/",
            declared.join(", "),
            if development.len() == 1 {
                "one is"
            } else {
                "ones are"
            }
        ),
        format!(
            "fine on this machine; anywhere else set {} (e.g. `export {}=$(openssl rand -hex 32)`)",
            variables.join(" and "),
            variables[0]
        ),
    )
}

/// Nothing listens where `detailing up` would.
fn check_listen(address: SocketAddr) -> Check {
    const NAME: &str = "listen";
    match std::net::TcpListener::bind(address) {
        Ok(_) => Check::pass(NAME, format!("{address} is free")),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            let port = address.port();
            let other = SocketAddr::new(address.ip(), port.checked_add(1).unwrap_or(3000));
            Check::fail(
                NAME,
                format!("{address} is in use (another `detailing up`?)"),
                format!(
                    "stop what listens there (`ss -ltnp 'sport = :{port}'` names it), or use \
                     another address: `detailing up --listen {other}`"
                ),
            )
        }
        Err(e) => Check::fail(
            NAME,
            format!("cannot listen on {address}: {e}"),
            "use an address of this machine: `detailing up --listen 127.0.0.1:3000`",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use runtime::manifest::Manifest;
    use runtime::VariableSources;

    const PLAIN: Marks = Marks { fancy: false };

    /// A port nothing listens on: bound by us, then released.
    fn closed_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn manifest(dir: &Path, components: &str) -> LoadedManifest {
        let text = format!(
            "spin_manifest_version = 2\n[application]\nname = \"t\"\n\
             [variables]\njwt_secret = {{ required = true, secret = true }}\n\
             relay_token = {{ required = true, secret = true }}\n{components}"
        );
        LoadedManifest {
            manifest: Manifest::parse(&text).unwrap(),
            dir: dir.to_path_buf(),
        }
    }

    fn settings(values: &[(&str, &str)]) -> Settings {
        let mut variables = VariableSources::default();
        for (name, value) in values {
            variables
                .fallbacks
                .insert((*name).to_owned(), (*value).to_owned());
        }
        Settings {
            postgres_url: settings::DEFAULT_POSTGRES_URL.to_owned(),
            variables,
        }
    }

    fn migration(version: &str, checksum: &str) -> Migration {
        Migration {
            version: version.into(),
            path: format!("migrations/{version}.sql").into(),
            sql: String::new(),
            checksum: checksum.into(),
        }
    }

    const LONG: &str = "a-signing-key-of-at-least-32-bytes!!";

    #[test]
    fn rabbitmq_on_a_closed_port_fails_with_the_command_to_start_it() {
        let url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port());
        let check = block_on(check_rabbitmq(&url));
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.detail.contains("guest:***@"), "{check:?}");
        assert!(
            check.fix.unwrap().contains("`rabbitmq-server -detached`"),
            "the fix names the command"
        );
    }

    #[test]
    fn redis_on_a_closed_port_fails_with_the_command_to_start_it() {
        let url = format!("redis://127.0.0.1:{}", closed_port());
        let check = block_on(check_redis(Some(&url)));
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(check.fix.unwrap().contains("`redis-server --daemonize yes"));
        assert_eq!(block_on(check_redis(None)).status, Status::Skip);
    }

    #[test]
    fn postgres_on_a_closed_port_fails_and_skips_the_migrations() {
        let url = format!(
            "postgres://postgres:pw@127.0.0.1:{}/x?sslmode=disable",
            closed_port()
        );
        let [postgres, migrations] = block_on(check_postgres(&url, Path::new("migrations")));
        assert_eq!(postgres.status, Status::Fail, "{postgres:?}");
        assert!(postgres.detail.contains("postgres:***@"), "{postgres:?}");
        assert!(postgres.fix.unwrap().contains("pg_ctlcluster"));
        assert_eq!(migrations.status, Status::Skip);
    }

    #[test]
    fn a_server_that_accepts_and_never_answers_fails_within_the_timeout() {
        // The kernel completes the handshake from the backlog; nothing ever reads or writes.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let postgres_url = format!("postgres://postgres@127.0.0.1:{port}/x?sslmode=disable");
        let amqp_url = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
        let redis_url = format!("redis://127.0.0.1:{port}");
        let started = std::time::Instant::now();
        let ([postgres, _], rabbitmq, redis) = block_on(async {
            tokio::join!(
                check_postgres(&postgres_url, Path::new("migrations")),
                check_rabbitmq(&amqp_url),
                check_redis(Some(&redis_url)),
            )
        });
        for check in [&postgres, &rabbitmq, &redis] {
            assert_eq!(check.status, Status::Fail, "{check:?}");
            // redis gives up by itself first, with its own response timeout.
            let quiet = check.detail.ends_with(&no_answer()) || check.detail.ends_with("timed out");
            assert!(quiet, "{check:?}");
        }
        assert!(
            started.elapsed() < CHECK_TIMEOUT * 3,
            "{:?}",
            started.elapsed()
        );
        drop(silent);
    }

    #[test]
    fn bad_urls_are_reported_as_such_not_as_services_down() {
        let rabbitmq = block_on(check_rabbitmq("http://nope"));
        assert_eq!(rabbitmq.status, Status::Fail);
        assert!(
            rabbitmq.fix.unwrap().contains("AMQP_URL"),
            "{}",
            rabbitmq.detail
        );
        let redis = block_on(check_redis(Some("nope://x")));
        assert!(redis.detail.contains("is not a Redis URL"), "{redis:?}");
    }

    #[test]
    fn a_port_in_use_fails_and_suggests_another() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let check = check_listen(address);
        assert_eq!(check.status, Status::Fail);
        assert!(check
            .fix
            .unwrap()
            .contains("detailing up --listen 127.0.0.1:"));
        drop(listener);
        assert_eq!(check_listen(address).status, Status::Pass);
    }

    #[test]
    fn a_jwt_secret_shorter_than_32_bytes_fails() {
        let dir = Path::new(".");
        let short = settings(&[("jwt_secret", "short"), ("relay_token", "token")]);
        let check = check_secrets(&short, &manifest(dir, ""), &[]);
        assert_eq!(check.status, Status::Fail, "{check:?}");
        assert!(
            check.detail.contains("SPIN_VARIABLE_JWT_SECRET"),
            "{check:?}"
        );
        assert!(check.fix.unwrap().contains("openssl rand -hex 32"));
    }

    #[test]
    fn secrets_missing_empty_development_and_set() {
        let dir = Path::new(".");
        let app = manifest(dir, "");
        let missing = check_secrets(&settings(&[("jwt_secret", LONG)]), &app, &[]);
        assert_eq!(missing.status, Status::Fail);
        assert!(
            missing.detail.contains("SPIN_VARIABLE_RELAY_TOKEN"),
            "{missing:?}"
        );

        let empty = settings(&[("jwt_secret", LONG), ("relay_token", "")]);
        let check = check_secrets(&empty, &app, &[]);
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.contains("SPIN_VARIABLE_RELAY_TOKEN is empty"));

        let set = settings(&[("jwt_secret", LONG), ("relay_token", "token")]);
        assert_eq!(check_secrets(&set, &app, &[]).status, Status::Pass);
        let development = check_secrets(&set, &app, &["jwt_secret"]);
        assert_eq!(development.status, Status::Warn);
        assert!(development
            .fix
            .unwrap()
            .contains("SPIN_VARIABLE_JWT_SECRET=$(openssl rand -hex 32)"));
    }

    #[test]
    fn components_without_their_wasm_fail_with_detailing_build() {
        let dir = std::env::temp_dir().join(format!("doctor-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.wasm"), b"\0asm").unwrap();
        let app = manifest(
            &dir,
            "[component.a]\nsource = \"a.wasm\"\n[component.b]\nsource = \"b.wasm\"\n",
        );
        let check = check_components(&app);
        assert_eq!(check.status, Status::Fail);
        assert_eq!(check.detail, "1 of 2 not built: b (b.wasm)");
        assert!(check.fix.unwrap().contains("`detailing build`"));
        std::fs::write(dir.join("b.wasm"), b"\0asm").unwrap();
        assert_eq!(check_components(&app).status, Status::Pass);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_missing_target_fails_with_rustup_target_add() {
        let wanted = vec![WASM_TARGET.to_owned()];
        let ok = toolchain_check(
            Some("1.95.0"),
            &wanted,
            Ok("wasm32-wasip1\nx86_64-unknown-linux-gnu\n".into()),
        );
        assert_eq!(ok.status, Status::Pass);
        assert_eq!(ok.detail, "1.95.0 with wasm32-wasip1");
        let missing = toolchain_check(
            Some("1.95.0"),
            &wanted,
            Ok("x86_64-unknown-linux-gnu\n".into()),
        );
        assert_eq!(missing.status, Status::Fail);
        assert_eq!(
            missing.fix.as_deref(),
            Some("`rustup target add --toolchain 1.95.0 wasm32-wasip1` (`detailing build` adds it too)")
        );
        let absent = toolchain_check(
            Some("1.95.0"),
            &wanted,
            Err(Rustup::Failed("toolchain '1.95.0' is not installed".into())),
        );
        assert_eq!(
            absent.fix.as_deref(),
            Some("`rustup toolchain install 1.95.0 --target wasm32-wasip1`")
        );
        let no_rustup = toolchain_check(None, &wanted, Err(Rustup::Missing));
        assert!(no_rustup.fix.unwrap().contains("sh.rustup.rs"));
    }

    #[test]
    fn migration_state_compares_applied_with_files() {
        let files = || Ok(vec![migration("0001_a", "c1"), migration("0002_b", "c2")]);
        let applied = |rows: &[(&str, &str)]| -> Vec<(String, String)> {
            rows.iter()
                .map(|(v, c)| ((*v).to_owned(), (*c).to_owned()))
                .collect()
        };
        let all = applied(&[("0001_a", "c1"), ("0002_b", "c2")]);
        let check = migration_state(files(), Some(&all), "db");
        assert_eq!(check.status, Status::Pass);
        assert_eq!(check.detail, "2 of 2 applied in `db`");

        let some = applied(&[("0001_a", "c1")]);
        let check = migration_state(files(), Some(&some), "db");
        assert_eq!(check.status, Status::Warn);
        assert_eq!(check.detail, "1 of 2 applied in `db`; pending: 0002_b");
        assert!(check.fix.unwrap().contains("`detailing migrate`"));

        let changed = applied(&[("0001_a", "other")]);
        let check = migration_state(files(), Some(&changed), "db");
        assert_eq!(check.status, Status::Fail);
        assert!(check.detail.starts_with("0001_a was changed"));

        let newer = applied(&[("0001_a", "c1"), ("0002_b", "c2"), ("0003_c", "c3")]);
        let check = migration_state(files(), Some(&newer), "db");
        assert_eq!(check.status, Status::Warn);
        assert!(check.detail.contains("0003_c"), "{check:?}");

        let check = migration_state(files(), None, "db");
        assert_eq!(check.status, Status::Warn);
        assert_eq!(
            check.detail,
            "database `db` does not exist yet: 0 of 2 applied"
        );

        let check = migration_state(Err(anyhow::anyhow!("cannot read x")), None, "db");
        assert_eq!(check.status, Status::Fail);
        assert_eq!(abbreviate(&["a", "b", "c", "d", "e"]), "a, b, c and 2 more");
    }

    #[test]
    fn the_plain_report_lists_checks_then_fixes_failures_first() {
        let checks = [
            Check::warn("secrets", "development", "set them"),
            Check::fail("redis", "closed", "start it"),
            Check::pass("listen", "free"),
        ];
        let report = render(&checks, PLAIN);
        assert!(report.is_ascii(), "{report}");
        let lines: Vec<&str> = report.lines().collect();
        assert_eq!(lines[0], "warn secrets  development");
        assert_eq!(lines[1], "FAIL redis    closed");
        assert_eq!(lines[2], "ok   listen   free");
        assert_eq!(lines[4], "What to do:");
        assert_eq!(lines[5], "FAIL redis: start it");
        assert_eq!(lines[6], "warn secrets: set them");
        assert!(!report.contains("checks passed"));

        let report = render(&[Check::pass("listen", "free")], PLAIN);
        assert!(report.ends_with("\nAll checks passed.\n"), "{report}");
        let fancy = render(&checks, Marks { fancy: true });
        assert!(fancy.contains('✓') && fancy.contains('✗'));
    }
}
