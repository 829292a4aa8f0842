//! One instantiate+handle cycle of an empty component (`tests/fixtures/empty`) through the
//! runtime's real paths, for the target in BENCHMARKS.md (<= 20 µs):
//!
//! - `instantiate/http_request`: a `GET /empty` through `http_trigger::serve`, the function
//!   `detailing up` serves with, on one kept-alive loopback connection: parse, route, Spin
//!   headers, a fresh store and instance, the guest's handler, the response.
//! - `instantiate/host_only`: `GET /.well-known/spin/health` on the same connection, answered by
//!   the host without a guest: the HTTP and loopback part of the line above. The difference of
//!   the two is the cost of the instance and its handler on the HTTP path.
//! - `instantiate/redis_message`: `App::handle_redis_message`, the runtime's public entry that
//!   runs one guest call with no network at all: a fresh store and instance, the guest's
//!   `handle-message`, the teardown.
//!
//! The fixture must be built first (`cargo build --profile wasm --target wasm32-wasip1 -p empty`);
//! the bench builds it itself when it is missing and stops with the command when it cannot.
//!
//! ```sh
//! cargo bench -p detailing-host --bench instantiate
//! ```

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use runtime::{App, AppOptions, CompileCache, Limits, PostgresConfig, VariableSources};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BUILD: &str = "cargo build --profile wasm --target wasm32-wasip1 -p empty";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/runtime sits two levels below the repository")
        .to_path_buf()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                repo_root().join(dir)
            }
        }
        None => repo_root().join("target"),
    }
}

/// The fixture's wasm, built now if it is not there yet.
fn empty_wasm() -> PathBuf {
    let wasm = target_dir().join("wasm32-wasip1/wasm/empty.wasm");
    if wasm.exists() {
        return wasm;
    }
    eprintln!("{} is missing; running `{BUILD}`", wasm.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(repo_root())
        .args(BUILD.split_whitespace().skip(1))
        .status();
    match status {
        Ok(status) if status.success() && wasm.exists() => wasm,
        Ok(status) => panic!(
            "building the empty fixture failed ({status}); run `{BUILD}` from {} \
             (and `rustup target add wasm32-wasip1` if the target is missing)",
            repo_root().display()
        ),
        Err(e) => panic!("cannot run cargo ({e}); build the fixture with `{BUILD}`"),
    }
}

/// A manifest of the empty component alone: an HTTP route and a Redis trigger (the trigger is
/// only declared; `App::load` connects to nothing).
fn manifest(wasm: &Path) -> PathBuf {
    let dir = target_dir().join("bench-manifests");
    std::fs::create_dir_all(&dir).expect("cannot create target/bench-manifests");
    let path = dir.join("empty.toml");
    let text = format!(
        r#"spin_manifest_version = 2
[application]
name = "empty-bench"
version = "0.1.0"

[application.trigger.redis]
address = "redis://127.0.0.1:6379"

[[trigger.http]]
route = "/empty"
component = "empty"

[[trigger.redis]]
channel = "bench"
component = "empty"

[component.empty]
source = "{}"
"#,
        wasm.display()
    );
    std::fs::write(&path, text).expect("cannot write the bench manifest");
    path
}

fn load_app() -> Arc<App> {
    let wasm = empty_wasm();
    let options = AppOptions {
        manifest: manifest(&wasm),
        variables: VariableSources::env(),
        cache: CompileCache::disabled(),
        limits: Limits::default(),
        postgres: PostgresConfig::default(),
    };
    let (app, _) = App::load(options).expect("cannot load the empty component");
    app
}

/// Sends `GET path` and reads the whole answer, checking its status.
async fn get(sender: &mut SendRequest<Empty<Bytes>>, path: &str) -> usize {
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, "127.0.0.1")
        .body(Empty::new())
        .expect("a valid request");
    sender.ready().await.expect("the connection closed");
    let response = sender.send_request(request).await.expect("request failed");
    assert_eq!(response.status(), 200, "GET {path}");
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body failed")
        .to_bytes();
    body.len()
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let app = load_app();

    // The real trigger on a loopback port, one kept-alive client connection.
    let mut sender = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = app.clone();
        tokio::spawn(async move {
            let workers = runtime::http_trigger::Workers::current();
            let limits = runtime::ConnectionLimits::default();
            let forever = std::future::pending::<()>();
            runtime::http_trigger::serve(app, listener, &workers, limits, forever).await
        });
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream.set_nodelay(true).unwrap();
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake with the trigger");
        tokio::spawn(connection);
        sender
    });
    // The guest answers `{}`: a body of another length is not the fixture's answer.
    assert_eq!(rt.block_on(get(&mut sender, "/empty")), 2);

    let mut group = c.benchmark_group("instantiate");
    group.bench_function("http_request", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    get(&mut sender, "/empty").await;
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("host_only", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let started = Instant::now();
                for _ in 0..iters {
                    get(&mut sender, "/.well-known/spin/health").await;
                }
                started.elapsed()
            })
        })
    });
    group.bench_function("redis_message", |b| {
        b.iter_custom(|iters| {
            let app = app.clone();
            rt.block_on(async move {
                let started = Instant::now();
                for _ in 0..iters {
                    app.clone()
                        .handle_redis_message("empty", b"bench".to_vec())
                        .await
                        .expect("the empty component accepts every message");
                }
                started.elapsed()
            })
        })
    });
    group.finish();
}

criterion_group! {
    name = instantiate;
    // Defaults; `-- --warm-up-time S --measurement-time S` on the command line wins.
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(2))
        .measurement_time(Duration::from_secs(5));
    targets = benches
}
criterion_main!(instantiate);
