//! `detailing`: build, migrate and serve the car-detailing Spin application.

mod builder;
mod doctor;
mod migrate;
mod observability;
mod settings;
mod swap;
mod users;
mod watch;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use observability::RelaySource;
use runtime::http_trigger::Workers;
use runtime::manifest::LoadedManifest;
use runtime::metrics::Registry;
use runtime::reuse::{Range, ReuseFlags};
use runtime::{
    App, AppOptions, CacheOutcome, CompileCache, Concurrency, ConnectionLimits, Limits,
    PostgresConfig,
};
use settings::Settings;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// malloc, free and memcpy were 13 % of the host's CPU on a trivial route. With mimalloc, two
/// alternating rounds (BENCHMARKS.md, tuning log): car lookups +11-16 % req/s and 12-17 % less
/// CPU per request, other scenarios +1-9 %, for about 27 MB more resident memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "detailing",
    version,
    about = "The car-detailing platform on a Spin-compatible host"
)]
struct Cli {
    /// The Spin manifest of the application.
    #[arg(long, short = 'f', global = true, default_value = "spin.toml")]
    manifest: PathBuf,
    /// Folder of SQL migrations (default: `migrations/` beside the manifest).
    #[arg(long, global = true)]
    migrations: Option<PathBuf>,
    /// How log lines (on stderr) are written.
    #[arg(long, global = true, value_enum, default_value_t)]
    log_format: observability::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every component (runs each `[component.x.build] command`, like `spin build`).
    Build,
    /// Apply database migrations, then exit.
    Migrate,
    /// Check the local set-up (toolchain, components, PostgreSQL, RabbitMQ, Redis, secrets,
    /// port) and say what to fix; exits non-zero when a required check fails.
    Doctor(doctor::DoctorArgs),
    /// Apply migrations and serve the application.
    Up(Box<UpArgs>),
    /// Replace one component of a running `detailing up` with a new .wasm (hot swap).
    Swap(SwapArgs),
    /// Move payment events: outbox -> RabbitMQ -> bonus-service (also run inside `up`).
    Relay(RelayArgs),
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a staff account; the password is prompted for, or read from stdin when piped.
    CreateStaff(CreateStaffArgs),
}

#[derive(Args)]
struct CreateStaffArgs {
    /// The account's email (its login).
    #[arg(long)]
    email: String,
    /// The name shown for the account.
    #[arg(long, default_value = "Staff")]
    full_name: String,
    /// A phone number in E.164, like +79991234567.
    #[arg(long)]
    phone: Option<String>,
}

/// How the relay reaches the broker and how hard it tries.
#[derive(Args, Clone)]
struct RelayTuning {
    /// The RabbitMQ broker's URL.
    #[arg(long, env = "AMQP_URL", default_value = relay::RelayConfig::DEFAULT_AMQP_URL)]
    amqp_url: String,
    /// Outbox rows published per transaction.
    #[arg(long, default_value_t = 100)]
    relay_batch_size: i64,
    /// Deliveries to bonus-service in flight at once.
    #[arg(long, default_value_t = 32)]
    relay_prefetch: u16,
    /// Delivery attempts before a message is dead-lettered (backoff 0.2 s doubling to 30 s).
    #[arg(long, default_value_t = 12)]
    relay_max_attempts: u32,
}

impl RelayTuning {
    fn config(
        &self,
        postgres_url: &str,
        bonus_url: String,
        relay_token: String,
    ) -> relay::RelayConfig {
        relay::RelayConfig {
            batch_size: self.relay_batch_size,
            prefetch: self.relay_prefetch,
            max_attempts: self.relay_max_attempts,
            ..relay::RelayConfig::new(
                postgres_url.to_owned(),
                self.amqp_url.clone(),
                bonus_url,
                relay_token,
            )
        }
    }
}

#[derive(Args)]
struct SwapArgs {
    /// The component's id in spin.toml, e.g. car-service.
    component: String,
    /// The new build: a wasm32-wasip1 module or a component.
    wasm: PathBuf,
    /// The host's admin endpoint (default: the one the local `detailing up` wrote into
    /// .detailing/admin-url when it started).
    #[arg(long)]
    admin: Option<String>,
    /// The file holding the admin endpoint's token (default: .detailing/admin-token).
    #[arg(long)]
    admin_token_file: Option<PathBuf>,
}

#[derive(Args)]
struct RelayArgs {
    /// bonus-service's event route, through a running `detailing up` (or Spin).
    #[arg(long, default_value = "http://127.0.0.1:3000/api/bonuses/events")]
    bonus_url: String,
    #[command(flatten)]
    tuning: RelayTuning,
    /// Serve Prometheus metrics at http://<address>/metrics (off unless given).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
}

#[derive(Args)]
struct UpArgs {
    /// Rebuild a component when its sources (the manifest's `watch` globs) change, and swap
    /// it in while serving.
    #[arg(long)]
    watch: bool,
    /// Serve the admin endpoint for `detailing swap` here (off unless given); loopback
    /// addresses only, port 0 picks one. Its token is written to .detailing/admin-token.
    #[arg(long)]
    admin_listen: Option<SocketAddr>,
    /// Serve Prometheus metrics at http://<address>/metrics (off unless given; port 0 picks one).
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// Do not run the payment-event relay in this process (run `detailing relay` instead).
    #[arg(long)]
    no_relay: bool,
    #[command(flatten)]
    relay: RelayTuning,
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Build the components before serving.
    #[arg(long)]
    build: bool,
    /// Skip migrations (when a separate job applies them).
    #[arg(long)]
    skip_migrations: bool,
    /// Where compiled components are cached between runs.
    #[arg(long, env = "DETAILING_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Wall-clock budget of one request, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    request_timeout_ms: u64,
    /// Largest request body accepted (larger gets 413).
    #[arg(long, default_value_t = 4 << 20)]
    max_body_bytes: usize,
    /// Largest linear memory of one instance, in MiB.
    #[arg(long, default_value_t = 64)]
    memory_mb: usize,
    /// Instances alive at once across all components.
    #[arg(long, default_value_t = 512)]
    max_instances: u32,
    /// A component's concurrency cap, `<component>=<running>[:<waiting>]` (repeatable): at most
    /// <running> of its requests run at once, <waiting> more (default 16 per running one) wait
    /// for a turn, the rest get 503 with Retry-After. user-service has one by default: half
    /// the cores running and 64 waiting, so password hashing never takes every core
    /// (`user-service=0` lifts it).
    #[arg(long = "component-concurrency", value_name = "COMPONENT=N[:WAITING]")]
    component_concurrency: Vec<String>,
    /// Requests one instance of a component serves, one after another, before it is dropped:
    /// a count or a range A..B drawn from per instance. As in `spin up`, the default is 1 (a
    /// fresh instance per request); a component's `[component.<id>.tool.detailing]` section
    /// may ask for more, and this flag, when given, applies to every component instead.
    #[arg(long, env = "DETAILING_MAX_INSTANCE_REUSE_COUNT", value_parser = Range::<u32>::parse_count)]
    max_instance_reuse_count: Option<Range<u32>>,
    /// Requests one instance serves at once. Accepted as `spin up` accepts it; WASIp2
    /// instances, all this host runs, serve one request at a time whatever it says.
    #[arg(long, value_parser = Range::<u32>::parse_count)]
    max_instance_concurrent_reuse_count: Option<Range<u32>>,
    /// How long an idle instance is kept for its next request (`1s`, `250ms`, a range
    /// `1..8s`; a bare number is seconds). Default 1s, or the component's own setting.
    #[arg(long, value_parser = Range::<Duration>::parse_duration)]
    idle_instance_timeout: Option<Range<Duration>>,
    /// Open connections at once; one more is answered 503 and closed at once.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// How long a connection may sit idle waiting for a request (new or kept alive), in ms.
    #[arg(long, default_value_t = 60_000)]
    idle_timeout_ms: u64,
    /// How long a request's head may take to arrive from its first byte, in ms.
    #[arg(long, default_value_t = 10_000)]
    header_read_timeout_ms: u64,
    /// How long a request's body may take to arrive, in ms (then 408).
    #[arg(long, default_value_t = 30_000)]
    body_read_timeout_ms: u64,
    /// Largest request head (request line and headers), in bytes (larger gets 431).
    #[arg(long, default_value_t = 32 << 10)]
    max_header_bytes: usize,
    /// Postgres connections per database URL.
    #[arg(long, default_value_t = 16)]
    pg_pool_size: usize,
    /// Threads serving HTTP, each with a single-threaded runtime that keeps a connection and
    /// its instances on one thread (default: one per CPU).
    #[arg(long)]
    http_workers: Option<usize>,
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    observability::init_logging(cli.log_format);
    let manifest = LoadedManifest::from_file(&cli.manifest)?;
    let migrations = cli
        .migrations
        .clone()
        .unwrap_or_else(|| manifest.dir.join("migrations"));
    match cli.command {
        Command::Build => builder::build_all(&manifest),
        Command::Doctor(args) => doctor::run(&manifest, &migrations, args),
        Command::Migrate => {
            let settings = Settings::database();
            runtime_for_cli()?.block_on(migrate_app(&migrations, &settings.postgres_url))
        }
        Command::User {
            command: UserCommand::CreateStaff(args),
        } => {
            let settings = Settings::load(&manifest.dir)?;
            let variables = settings.resolve(&manifest)?;
            runtime_for_cli()?.block_on(create_staff(&migrations, &settings, &variables, args))
        }
        Command::Swap(args) => {
            let admin = match args.admin {
                Some(admin) => admin,
                None => swap::admin_url(&manifest.dir)?,
            };
            let token = swap::admin_token(&manifest.dir, args.admin_token_file.as_deref())?;
            runtime_for_cli()?.block_on(swap::swap(&admin, &token, &args.component, &args.wasm))
        }
        Command::Relay(args) => {
            // The relay needs the database and its credential, not the app's other secrets.
            let settings = Settings::database();
            let token = Settings::secret(&manifest.dir, "relay_token")?;
            let config = args
                .tuning
                .config(&settings.postgres_url, args.bonus_url, token);
            runtime_for_cli()?.block_on(async {
                let shutdown = shutdown_watch();
                let metrics = match args.metrics_listen {
                    Some(address) => {
                        let mut registry = Registry::new(observability::METRICS_PREFIX);
                        registry.register(Arc::new(RelaySource(config.metrics.clone())));
                        let started =
                            observability::start_metrics(address, registry, shutdown.clone());
                        Some(started.await?)
                    }
                    None => None,
                };
                relay::run(config, shutdown).await;
                if let Some(metrics) = metrics {
                    let _ = metrics.await;
                }
                Ok(())
            })
        }
        Command::Up(args) => {
            if args.build {
                builder::build_all(&manifest)?;
            }
            runtime_for_cli()?.block_on(up(&cli.manifest, &manifest.dir, &migrations, *args))
        }
    }
}

fn runtime_for_cli() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

async fn migrate_app(migrations: &Path, url: &str) -> Result<()> {
    let applied = migrate::run(url, migrations)
        .await
        .with_context(|| format!("migrating {}", migrate::redact(url)))?;
    tracing::info!("migrations up to date ({} applied now)", applied.len());
    Ok(())
}

async fn create_staff(
    migrations: &Path,
    settings: &Settings,
    variables: &runtime::AppVariables,
    args: CreateStaffArgs,
) -> Result<()> {
    let email = auth::Email::parse(&args.email).context("--email")?;
    let cost = settings::bcrypt_cost(variables)?;
    let password = users::read_password(&email)?;
    migrate_app(migrations, &settings.postgres_url).await?;
    let db = migrate::connect_creating(&settings.postgres_url).await?;
    let id = users::create_staff(
        &db,
        &email,
        &args.full_name,
        args.phone.as_deref(),
        &password,
        cost,
    )
    .await?;
    println!("created staff account {} ({id})", email.as_str());
    Ok(())
}

async fn up(manifest_path: &Path, app_dir: &Path, migrations: &Path, args: UpArgs) -> Result<()> {
    let settings = Settings::load(app_dir)?;
    // A weak signing key is refused before anything serves (components check it again).
    let loaded = LoadedManifest::from_file(manifest_path)?;
    let variables = settings.resolve(&loaded)?;
    if !args.skip_migrations {
        migrate_app(migrations, &settings.postgres_url).await?;
    }
    let reuse = reuse_flags(&args);
    let cache_dir = args
        .cache_dir
        .unwrap_or_else(|| app_dir.join(".detailing/cache"));
    let options = AppOptions {
        manifest: manifest_path.to_path_buf(),
        variables: settings.variables,
        cache: CompileCache::at(cache_dir),
        limits: Limits {
            memory_bytes: args.memory_mb << 20,
            request_timeout: Duration::from_millis(args.request_timeout_ms),
            max_body_bytes: args.max_body_bytes,
            max_instances: args.max_instances,
            component_concurrency: component_concurrency(&args.component_concurrency, &loaded)?,
            reuse,
        },
        postgres: PostgresConfig {
            max_connections_per_url: args.pg_pool_size,
            ..Default::default()
        },
    };
    let (app, reports) = tokio::task::spawn_blocking(move || App::load(options)).await??;
    for r in &reports {
        let how = match r.outcome {
            CacheOutcome::Cached => "from cache",
            CacheOutcome::Compiled => "compiled",
        };
        tracing::info!("component {} ready ({how}, {} ms)", r.component, r.millis);
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let base = format!("http://{}", listener.local_addr()?);
    // An app without a relay credential has no event consumer to relay to.
    let relay_config = match (args.no_relay, variables.get("relay_token")) {
        (false, Some(token)) => Some(args.relay.config(
            &settings.postgres_url,
            format!("{base}/api/bonuses/events"),
            token.to_owned(),
        )),
        _ => None,
    };
    // Announced before `Serving`, so whoever waits for that line can already swap and scrape.
    let shutdown = shutdown_watch();
    let admin = match args.admin_listen {
        Some(listen) => {
            Some(swap::start_admin(app.clone(), listen, app_dir, shutdown.clone()).await?)
        }
        None => None,
    };
    let metrics = match args.metrics_listen {
        Some(address) => {
            let mut registry = Registry::new(observability::METRICS_PREFIX);
            registry.register(app.clone());
            if let Some(config) = &relay_config {
                registry.register(Arc::new(RelaySource(config.metrics.clone())));
            }
            Some(observability::start_metrics(address, registry, shutdown.clone()).await?)
        }
        None => None,
    };
    println!("Serving {base}");
    println!("Available Routes:");
    for line in runtime::http_trigger::describe_routes(&app, &base) {
        println!("{line}");
    }
    let relay = relay_config.map(|config| tokio::spawn(relay::run(config, shutdown.clone())));
    let redis_triggers = tokio::spawn(runtime::redis_trigger::run_triggers(
        app.clone(),
        shutdown.clone(),
    ));
    let watcher = if args.watch {
        let manifest = LoadedManifest::from_file(manifest_path)?;
        Some(tokio::spawn(watch::run(
            app.clone(),
            manifest,
            shutdown.clone(),
        )))
    } else {
        None
    };
    let workers = Workers::start(
        args.http_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    )?;
    tracing::info!("serving HTTP on {} worker threads", workers.len());
    let mut stop = shutdown.clone();
    let connection_limits = ConnectionLimits {
        idle_timeout: Duration::from_millis(args.idle_timeout_ms),
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms),
        body_read_timeout: Duration::from_millis(args.body_read_timeout_ms),
        max_header_bytes: args.max_header_bytes,
        max_connections: args.max_connections,
    };
    let stopped = async move {
        let _ = stop.wait_for(|stopped| *stopped).await;
    };
    let served =
        runtime::http_trigger::serve(app, listener, &workers, connection_limits, stopped).await;
    // Joining the worker threads blocks; whatever still ran on them is dropped.
    let _ = tokio::task::spawn_blocking(move || drop(workers)).await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    let _ = redis_triggers.await;
    if let Some(admin) = admin {
        let _ = admin.await;
    }
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    if let Some(watcher) = watcher {
        let _ = watcher.await;
    }
    served
}

/// The component whose work is hashing passwords: capped by default so a flood of logins
/// cannot take every core from the other services.
const PASSWORD_HASHING_COMPONENT: &str = "user-service";

/// The reuse flags as given; a concurrent reuse count above one is accepted, as Spin accepts
/// it, with a warning that it changes nothing here.
fn reuse_flags(args: &UpArgs) -> ReuseFlags {
    if args
        .max_instance_concurrent_reuse_count
        .is_some_and(|count| count.most() > 1)
    {
        tracing::warn!(
            "--max-instance-concurrent-reuse-count above 1 has no effect: WASIp2 instances serve one request at a time"
        );
    }
    ReuseFlags {
        max_requests: args.max_instance_reuse_count,
        idle_timeout: args.idle_instance_timeout,
    }
}

/// The `--component-concurrency` caps, with user-service's default (half the cores) when the
/// app has it; `=0` lifts a cap.
fn component_concurrency(
    given: &[String],
    manifest: &LoadedManifest,
) -> Result<BTreeMap<String, Concurrency>> {
    let mut caps = BTreeMap::new();
    if manifest
        .manifest
        .component
        .contains_key(PASSWORD_HASHING_COMPONENT)
    {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        // A long line: a waiting login costs no CPU, and a burst of sign-ups should wait
        // rather than fail.
        let cap = Concurrency {
            running: (cores / 2).max(1),
            waiting: 64,
        };
        caps.insert(PASSWORD_HASHING_COMPONENT.to_owned(), cap);
    }
    for entry in given {
        let (id, cap) = entry
            .split_once('=')
            .with_context(|| format!("--component-concurrency `{entry}`: want COMPONENT=N"))?;
        if cap.trim() == "0" {
            caps.remove(id);
            continue;
        }
        let cap = Concurrency::parse(cap)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--component-concurrency `{entry}`"))?;
        caps.insert(id.to_owned(), cap);
    }
    Ok(caps)
}

/// Turns true on Ctrl-C or SIGTERM; everything that must stop watches it.
fn shutdown_watch() -> tokio::sync::watch::Receiver<bool> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        let _ = stop.send(true);
    });
    stopped
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("cannot listen for SIGTERM");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
