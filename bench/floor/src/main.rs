//! `bench-floor`: the lower bound of the benchmark. A hyper 1 HTTP/1.1 server on a tokio
//! multi-thread runtime that answers every request `200 {"status":"ok"}` as JSON, with nothing
//! else in the way: no routing, no logging, no database.
//!
//! ```sh
//! bench-floor --listen 127.0.0.1:0      # first stdout line: listening on http://ADDR
//! ```

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{header, Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use tokio::net::TcpListener;

const BODY: &[u8] = br#"{"status":"ok"}"#;

fn parse_args() -> Result<SocketAddr> {
    let mut listen: SocketAddr = "127.0.0.1:0".parse().expect("a valid default address");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                let value = args.next().context("--listen needs an address")?;
                listen = value
                    .parse()
                    .with_context(|| format!("--listen {value}: not an address"))?;
            }
            s if s.starts_with("--listen=") => {
                let value = &s["--listen=".len()..];
                listen = value
                    .parse()
                    .with_context(|| format!("--listen {value}: not an address"))?;
            }
            "-h" | "--help" => {
                println!("usage: bench-floor [--listen 127.0.0.1:0]");
                std::process::exit(0);
            }
            other => bail!("unknown argument `{other}` (usage: bench-floor [--listen ADDR])"),
        }
    }
    Ok(listen)
}

async fn answer(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn main() -> Result<()> {
    let listen = parse_args()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "listening on http://{}", listener.local_addr()?)?;
        stdout.flush()?;
        let serve = async {
            loop {
                let (stream, _) = match listener.accept().await {
                    Ok(pair) => pair,
                    Err(e) => {
                        eprintln!("accept failed: {e}");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service_fn(answer))
                        .await;
                });
            }
        };
        tokio::select! {
            () = serve => Ok(()),
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}
