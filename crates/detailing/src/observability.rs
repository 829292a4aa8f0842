//! How `detailing` reports on itself: log lines as text or JSON (`--log-format`), and the
//! Prometheus endpoint (`--metrics-listen`) over the host's and the relay's numbers. Those are
//! kept by the runtime and the relay; this module only names and wires them.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use runtime::metrics::{Exposition, Kind, Registry, Source};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Every metric's name starts with `detailing_`.
pub const METRICS_PREFIX: &str = "detailing";

#[derive(Debug, Clone, Copy, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, fields at the top level (for Loki, Elasticsearch, jq).
    Json,
}

/// Logs to stderr (stdout carries the `Serving`, `Admin` and `Metrics` lines other programs
/// read), filtered by `RUST_LOG`.
pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wasmtime_wasi_http=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        // Colours only for a terminal: in a file or a pipe they split `request_id=...` with
        // escape codes, and grep no longer finds a request's lines.
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // The innermost span only: for a chained call that is its caller's request, enough to
        // tie the two together without repeating every enclosing span on every line.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

/// Serves `GET /metrics` on `address` until shutdown, announcing it on stdout the way
/// `Serving` is announced.
pub async fn start_metrics(
    address: SocketAddr,
    registry: Registry,
    mut shutdown: watch::Receiver<bool>,
) -> Result<JoinHandle<Result<()>>> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen for metrics on {address}"))?;
    println!("Metrics http://{}/metrics", listener.local_addr()?);
    Ok(tokio::spawn(runtime::metrics::serve(
        Arc::new(registry),
        listener,
        async move {
            let _ = shutdown.wait_for(|stopped| *stopped).await;
        },
    )))
}

/// The relay's numbers as Prometheus metrics.
pub struct RelaySource(pub relay::RelayMetrics);

impl Source for RelaySource {
    fn collect(&self, out: &mut Exposition) {
        let numbers = self.0.snapshot();
        out.family(
            "relay_published_total",
            Kind::Counter,
            "Payment events the broker confirmed and the outbox marked sent.",
        );
        out.sample("relay_published_total", &[], numbers.published as f64);
        out.family(
            "relay_delivered_total",
            Kind::Counter,
            "Deliveries to bonus-service: acked, dead-lettered after the last attempt, or retried.",
        );
        for (outcome, count) in [
            ("acked", numbers.acked),
            ("dead_lettered", numbers.dead_lettered),
            ("retried", numbers.retried),
        ] {
            out.sample(
                "relay_delivered_total",
                &[("outcome", outcome)],
                count as f64,
            );
        }
        // Absent until the publisher has reached the database once: an unknown depth is not 0.
        if let Some(outbox) = numbers.outbox {
            out.family(
                "relay_outbox_depth",
                Kind::Gauge,
                "Outbox rows not yet published, as last sampled.",
            );
            out.sample("relay_outbox_depth", &[], outbox.depth as f64);
            out.family(
                "relay_lag_seconds",
                Kind::Gauge,
                "Age of the oldest outbox row not yet published (0 when none waits).",
            );
            out.sample("relay_lag_seconds", &[], outbox.lag.as_secs_f64());
        }
    }
}
