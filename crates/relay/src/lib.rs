//! The payment -> bonus path, at least once and never doubled downstream: payment-service
//! writes an event into `payments.outbox` in the payment's own transaction; the publisher
//! here moves unsent rows to RabbitMQ with publisher confirms and marks them sent only after
//! the broker has them; the consumer delivers each message to bonus-service over HTTP, acks
//! after a 2xx, retries with backoff, and dead-letters what keeps failing. bonus-service is
//! idempotent by `event_id`, so every redelivery this design allows is harmless.
//! Knows the outbox table and the broker topology; knows nothing of bonuses beyond a URL.

// The relay logs through `tracing` (levels, spans, JSON lines); a print would bypass all three.
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod backoff;
mod consumer;
pub mod event;
pub mod metrics;
mod publisher;
pub mod topology;

use std::time::Duration;

use tokio::sync::watch;

pub use backoff::Backoff;
pub use metrics::RelayMetrics;

/// Where the relay reads, publishes and delivers, and how hard it tries.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    pub postgres_url: String,
    /// `AMQP_URL`, e.g. `amqp://guest:guest@127.0.0.1:5672/%2f`.
    pub amqp_url: String,
    /// bonus-service's event route, e.g. `http://127.0.0.1:3000/api/bonuses/events`.
    pub bonus_url: String,
    /// Sent as `x-relay-token`; bonus-service accepts events only with it.
    pub relay_token: String,
    /// Outbox rows claimed and published per transaction.
    pub batch_size: i64,
    /// Unacknowledged deliveries in flight at once.
    pub prefetch: u16,
    /// Deliveries to bonus-service before a message goes to the dead-letter queue.
    pub max_attempts: u32,
    /// Wake-up when no NOTIFY arrives (a missed notification costs at most this).
    pub poll_interval: Duration,
    /// First retry delay; doubles up to `retry_max` for deliveries, up to `reconnect_max`
    /// for reconnecting to PostgreSQL or the broker.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// The longest wait between reconnects: once PostgreSQL or the broker is back, events
    /// flow again within this, however long the outage was.
    pub reconnect_max: Duration,
    /// One delivery's HTTP budget.
    pub delivery_timeout: Duration,
    /// Where the relay counts what it moves; clone it before `run` to read the numbers.
    pub metrics: RelayMetrics,
}

impl RelayConfig {
    pub const DEFAULT_AMQP_URL: &'static str = "amqp://guest:guest@127.0.0.1:5672/%2f";

    /// The defaults for everything but the endpoints and the credential.
    pub fn new(
        postgres_url: String,
        amqp_url: String,
        bonus_url: String,
        relay_token: String,
    ) -> Self {
        Self {
            postgres_url,
            amqp_url,
            bonus_url,
            relay_token,
            batch_size: 100,
            prefetch: 32,
            // 0.2 s doubling to 30 s: twelve attempts span about two and a half minutes,
            // enough to ride out a bonus-service restart before a message is dead-lettered.
            max_attempts: 12,
            poll_interval: Duration::from_secs(1),
            retry_base: Duration::from_millis(200),
            retry_max: Duration::from_secs(30),
            reconnect_max: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(10),
            metrics: RelayMetrics::default(),
        }
    }
}

/// Runs the publisher and the consumer until `shutdown` turns true. Each reconnects by
/// itself, with backoff, when PostgreSQL or the broker goes away.
pub async fn run(config: RelayConfig, shutdown: watch::Receiver<bool>) {
    tracing::info!(
        amqp = %redact(&config.amqp_url),
        bonus_url = %config.bonus_url,
        "relay starting: outbox -> {} -> {}",
        topology::QUEUE,
        config.bonus_url
    );
    tokio::join!(
        publisher::run(config.clone(), shutdown.clone()),
        consumer::run(config, shutdown),
    );
    tracing::info!("relay stopped");
}

/// Waits until `shutdown` is true (or its sender is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// A URL with its password hidden, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Connection settings that put lapin on the running tokio runtime.
pub(crate) fn amqp_properties() -> lapin::ConnectionProperties {
    lapin::ConnectionProperties::default()
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio)
        .with_connection_name("detailing-relay".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_in_logs() {
        assert_eq!(
            redact("amqp://guest:guest@127.0.0.1:5672/%2f"),
            "amqp://guest:***@127.0.0.1:5672/%2f"
        );
        assert_eq!(redact("amqp://127.0.0.1:5672"), "amqp://127.0.0.1:5672");
        assert_eq!(
            redact("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }
}
