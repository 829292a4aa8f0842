//! TLS on the native side, against the machine's real services: the local PostgreSQL's own
//! TLS (ssl = on, Debian's snakeoil certificate) for `sslmode`, judged against what libpq
//! (psql) does with the same settings; amqps:// and https:// through a TLS-terminating proxy
//! in front of RabbitMQ and the app; and the outbound allow-list against `hostaddr=`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use common::{psql, psql_db, Actor, ServerConfig, TestDb, TestServer, TestVhost};
use serde_json::{json, Value};

fn detailing() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_detailing"));
    cmd.arg("--manifest")
        .arg(common::repo_root().join("spin.toml"))
        .arg("--migrations")
        .arg(common::repo_root().join("migrations"));
    cmd
}

/// The server's certificate file, from the server itself: TLS must be on.
fn server_certificate() -> PathBuf {
    assert_eq!(
        psql("SHOW ssl"),
        "on",
        "the local PostgreSQL must serve TLS (ssl = on) for these tests"
    );
    PathBuf::from(psql("SHOW ssl_cert_file"))
}

/// A scratch folder for this test binary's certificates.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = common::repo_root()
            .join("target/test-tls")
            .join(uuid::Uuid::new_v4().simple().to_string());
        std::fs::create_dir_all(&dir).unwrap();
        dir
    })
}

/// A self-signed certificate for `localhost` and 127.0.0.1 and its key, made with the
/// openssl command: (certificate, key).
fn self_signed(name: &str) -> (PathBuf, PathBuf) {
    let cert = scratch().join(format!("{name}.pem"));
    let key = scratch().join(format!("{name}.key"));
    if !cert.exists() {
        let out = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
            ])
            .args(["-nodes", "-days", "2", "-subj", &format!("/CN={name}")])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("the openssl command must be installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (cert, key)
}

/// `detailing migrate` against `url`: Ok, or its output.
fn migrate(url: &str) -> Result<(), String> {
    let out = detailing()
        .arg("migrate")
        .env("SPIN_VARIABLE_POSTGRES_URL", url)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(())
    } else {
        Err(text)
    }
}

/// libpq's verdict on the same settings: psql connects, or its error.
fn libpq(conninfo: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .args([conninfo, "-Atc", "SELECT 1"])
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .output()
        .expect("psql must be installed");
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn postgres_sslmode_and_sslrootcert_behave_as_libpq_does() {
    let snakeoil = server_certificate();
    let snakeoil = snakeoil.display().to_string();
    let (unrelated, _) = self_signed("unrelated-ca");
    let unrelated = unrelated.display().to_string();
    let db = TestDb::create();
    let name = &db.name;

    // (host, sslmode, sslrootcert, what we expect whatever psql says, a phrase our error has)
    type Case<'a> = (&'a str, &'a str, Option<&'a str>, Option<bool>, &'a str);
    let cases: &[Case<'_>] = &[
        ("127.0.0.1", "require", None, Some(true), ""),
        ("127.0.0.1", "prefer", None, Some(true), ""),
        // Chain checked, name not: the snakeoil names localhost, not 127.0.0.1.
        ("127.0.0.1", "verify-ca", Some(&snakeoil), Some(true), ""),
        (
            "127.0.0.1",
            "verify-full",
            Some(&snakeoil),
            Some(false),
            "not valid for name \"127.0.0.1\"",
        ),
        // Whatever name the snakeoil carries, psql decides whether it is `localhost`.
        (
            "localhost",
            "verify-full",
            Some(&snakeoil),
            None,
            "certificate",
        ),
        (
            "localhost",
            "verify-full",
            Some(&unrelated),
            Some(false),
            "not signed by a trusted root (UnknownIssuer",
        ),
        (
            "127.0.0.1",
            "verify-ca",
            Some(&unrelated),
            Some(false),
            "UnknownIssuer",
        ),
        // libpq: with a root file, require checks the chain too.
        (
            "127.0.0.1",
            "require",
            Some(&unrelated),
            Some(false),
            "UnknownIssuer",
        ),
    ];
    for &(host, mode, root, expected, phrase) in cases {
        let mut url = format!("postgres://postgres@{host}:5432/{name}?sslmode={mode}");
        let mut conninfo =
            format!("host={host} port=5432 user=postgres dbname={name} sslmode={mode}");
        if let Some(root) = root {
            url.push_str(&format!("&sslrootcert={root}"));
            conninfo.push_str(&format!(" sslrootcert={root}"));
        }
        let ours = migrate(&url);
        let theirs = libpq(&conninfo);
        assert_eq!(
            ours.is_ok(),
            theirs.is_ok(),
            "{url}: ours {ours:?}, libpq {theirs:?}"
        );
        if let Some(expected) = expected {
            assert_eq!(ours.is_ok(), expected, "{url}: {ours:?}");
        }
        if let Err(error) = &ours {
            assert!(
                error.contains(phrase) && error.contains(&format!("sslmode={mode}")),
                "{url}: the error must say `{phrase}` and the mode:\n{error}"
            );
            assert!(!error.contains("panicked"), "{error}");
        }
    }

    // Without sslrootcert, verify-full trusts the system's roots (libpq 16's
    // sslrootcert=system); 127.0.0.1 is never the snakeoil's name, so it is refused.
    let error = migrate(&format!(
        "postgres://postgres@127.0.0.1:5432/{name}?sslmode=verify-full"
    ))
    .unwrap_err();
    assert!(error.contains("certificate"), "{error}");
    let weak = migrate(&format!(
        "postgres://postgres@127.0.0.1:5432/{name}?sslrootcert=system&sslmode=require"
    ))
    .unwrap_err();
    assert!(
        weak.contains("may not be used with sslrootcert=system"),
        "{weak}"
    );
    let missing = migrate(&format!(
        "postgres://postgres@127.0.0.1:5432/{name}?sslmode=verify-ca&sslrootcert=/nonexistent.pem"
    ))
    .unwrap_err();
    assert!(
        missing.contains("sslrootcert=/nonexistent.pem"),
        "{missing}"
    );
    // The migrations of the successful runs are there.
    assert_ne!(
        psql_db(&db, "SELECT count(*) FROM public.schema_migrations"),
        "0"
    );
}

/// Terminates TLS on a local port with `cert`/`key` and forwards the plain bytes to
/// `127.0.0.1:target`, for as long as the test process lives. Returns the port.
fn tls_proxy(cert: &Path, key: &Path, target: u16) -> u16 {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(socket).await else {
                        return;
                    };
                    let Ok(mut upstream) =
                        tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                });
            }
        });
    });
    port
}

/// `detailing relay` as its own process, its log collected.
struct Relay {
    child: Child,
    log: Arc<Mutex<String>>,
}

impl Relay {
    fn start(db_url: &str, amqp_url: &str, bonus_url: &str, trusted: &Path) -> Self {
        let mut child = detailing()
            .args(["relay", "--bonus-url", bonus_url, "--amqp-url", amqp_url])
            .env("SPIN_VARIABLE_POSTGRES_URL", db_url)
            .env_remove("SPIN_VARIABLE_JWT_SECRET")
            .env_remove("SPIN_VARIABLE_EVENT_SIGNING_KEY")
            .env("SPIN_VARIABLE_RELAY_TOKEN", common::TEST_RELAY_TOKEN)
            // The system's trust store, as the relay's TLS clients read it: only `trusted`.
            .env("SSL_CERT_FILE", trusted)
            .env_remove("SSL_CERT_DIR")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start detailing relay");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        Self { child, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log has `text` (true) or `timeout` passes (false).
    fn wait_for(&self, text: &str, timeout: Duration) -> bool {
        common::log_has(timeout, || self.log(), text)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const WASH: &str = "6b1f2c1e-0001-4000-8000-000000000001";

/// An order of two washes for `who`, on a fresh car.
fn order(server: &TestServer, who: &Actor) -> String {
    common::order_on_new_car(server, who, json!([{"catalog_id": WASH, "quantity": 2}]))
}

/// (backends of `db` over TLS, backends of `db` without)
fn tls_backends(db: &TestDb) -> (u64, u64) {
    let counts = psql(&format!(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl)
         FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '{}'",
        db.name
    ));
    let (tls, plain) = counts.split_once('|').unwrap();
    (tls.parse().unwrap(), plain.parse().unwrap())
}

#[test]
fn the_payment_path_runs_over_tls_end_to_end() {
    if common::we_do_better(
        "Spin 4.0.2 verifies the server's certificate chain and host name for `sslmode=require`, \
         where libpq and our host only encrypt, as that mode means; the local PostgreSQL's \
         self-signed certificate for another name fails that check, so under Spin the app's \
         side needs a certificate for the database's host from a CA the system trusts",
    ) {
        return;
    }
    let snakeoil = server_certificate();
    let (cert, key) = self_signed("localhost");
    let db = TestDb::create();
    let vhost = TestVhost::create();
    // The app's pool encrypts without checking (require); the relay checks the chain.
    let app_url = db.url().replace("sslmode=disable", "sslmode=require");
    let relay_url = db.url().replace(
        "sslmode=disable",
        &format!("sslmode=verify-ca&sslrootcert={}", snakeoil.display()),
    );
    let server = TestServer::start(ServerConfig::app().env("SPIN_VARIABLE_POSTGRES_URL", &app_url));
    let app_port: u16 = server.base.rsplit(':').next().unwrap().parse().unwrap();
    let amqps = tls_proxy(&cert, &key, 5672);
    let https = tls_proxy(&cert, &key, app_port);
    let relay = Relay::start(
        &relay_url,
        &format!("amqps://guest:guest@localhost:{amqps}/{}", vhost.name),
        &format!("https://localhost:{https}/api/bonuses/events"),
        &cert,
    );
    for side in ["relay publisher connected", "relay consumer connected"] {
        assert!(
            relay.wait_for(side, Duration::from_secs(30)),
            "no `{side}`:\n{}",
            relay.log()
        );
    }

    let me = server.customer();
    let order_id = order(&server, &me);
    let body = json!({"order_id": order_id, "payment_method": "card"});
    let (status, payment) = server.call("POST", "/api/payments", me.token(), Some(&body));
    assert_eq!(status, 201, "{payment}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut balance = Value::Null;
    while Instant::now() < deadline {
        balance = server
            .call("GET", "/api/bonuses/balance", me.token(), None)
            .1;
        if balance["balance"] == 30.0 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        balance["balance"],
        30.0,
        "the event did not arrive over amqps and https:\n{}\n{}",
        relay.log(),
        server.log()
    );
    // Every connection to the database, the app's pool and the relay's, is encrypted.
    let (tls, plain) = tls_backends(&db);
    assert!(tls >= 2, "{tls} TLS backends");
    assert_eq!(plain, 0, "{plain} backends without TLS");
}

#[test]
fn amqps_is_never_spoken_in_plaintext_nor_to_an_untrusted_broker() {
    let db = TestDb::create();
    migrate(&db.url()).unwrap();
    let vhost = TestVhost::create();
    let (cert, key) = self_signed("localhost");
    let (unrelated, _) = self_signed("unrelated-ca");
    let unused = "http://127.0.0.1:9/api/bonuses/events";

    // RabbitMQ's plain port: a TLS client gets no TLS answer and must not fall back.
    let plain = Relay::start(
        &db.url(),
        &format!("amqps://guest:guest@127.0.0.1:5672/{}", vhost.name),
        unused,
        &cert,
    );
    assert!(
        plain.wait_for(
            "relay consumer: connecting to RabbitMQ",
            Duration::from_secs(20)
        ),
        "no connection error:\n{}",
        plain.log()
    );
    assert!(
        !plain.log().contains("relay consumer connected"),
        "{}",
        plain.log()
    );
    drop(plain);

    // TLS, but with a certificate the relay does not trust.
    let port = tls_proxy(&cert, &key, 5672);
    let untrusted = Relay::start(
        &db.url(),
        &format!("amqps://guest:guest@localhost:{port}/{}", vhost.name),
        unused,
        &unrelated,
    );
    assert!(
        untrusted.wait_for("UnknownIssuer", Duration::from_secs(20)),
        "the certificate was not refused:\n{}",
        untrusted.log()
    );
    assert!(
        !untrusted.log().contains("relay consumer connected"),
        "{}",
        untrusted.log()
    );
}

/// A server whose probe may reach `postgres://db.invalid:5432` only, given `postgres_url`.
fn probe_with(url_for: impl FnOnce(&str) -> String) -> (TestServer, TestDb) {
    let db = TestDb::create();
    let url = url_for(&db.name);
    let server = TestServer::start(
        ServerConfig {
            manifest: common::probe_manifest(
                "[[trigger.http]]\nroute = \"/probe/...\"\ncomponent = \"probe\"\n",
            ),
            env: Vec::new(),
            args: vec!["--no-relay".into()],
        }
        .env("SPIN_VARIABLE_POSTGRES_URL", &url)
        .env("SPIN_VARIABLE_POSTGRES_HOST", "db.invalid:5432"),
    );
    (server, db)
}

#[test]
fn a_component_cannot_reach_postgres_through_hostaddr() {
    if common::we_do_better(
        "our host checks the address a PostgreSQL URL dials (`hostaddr=`) against \
         allowed_outbound_hosts and refuses it at once; Spin 4.0.2 does not refuse it that way \
         (seen: the probe's request got no answer within the test's timeout)",
    ) {
        return;
    }
    for url_for in [
        // An allowed name, and the address actually dialled beside it.
        (|name: &str| {
            format!("postgres://postgres@db.invalid:5432/{name}?sslmode=disable&hostaddr=127.0.0.1")
        }) as fn(&str) -> String,
        // The address alone, no host at all.
        |name: &str| format!("postgres://postgres@/{name}?sslmode=disable&hostaddr=127.0.0.1"),
    ] {
        let (server, _db) = probe_with(url_for);
        let res = server.client().get(server.url("/probe/pg")).send().unwrap();
        let status = res.status().as_u16();
        let body = res.text().unwrap();
        assert_eq!(status, 500, "the probe reached the database: {body}");
        assert!(
            server
                .log_has("destination postgres://127.0.0.1:5432 is not in allowed_outbound_hosts"),
            "{}",
            server.log()
        );
    }
}
