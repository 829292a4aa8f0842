//! Outbox -> RabbitMQ. A batch of unsent rows is claimed with `FOR UPDATE SKIP LOCKED` (so
//! several relays share the work without publishing a row twice at once), published as
//! persistent messages, and marked sent in the same transaction only after the broker
//! confirmed every one. A crash between confirm and commit republishes the batch: at least
//! once, never lost. Wakes on `NOTIFY payments_outbox`, and polls in case one was missed.
//! Only signed rows are published, as signed; a row from before signing stays unsent and is
//! logged (migrations/0011_signed_events.sql says how to sign it). Samples the outbox's depth
//! and oldest row for the relay's metrics as it goes.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::{BasicProperties, Channel};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{AsyncMessage, Client};
use uuid::Uuid;

use crate::event::PaymentEvent;
use crate::{amqp_properties, stopped, topology, Backoff, RelayConfig, RelayMetrics};

/// The channel payment-service notifies after a payment commits.
pub const CHANNEL: &str = "payments_outbox";

/// How long a confirm may take before the connection is presumed dead.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);

const CLAIM: &str = "SELECT event_id, body, signature FROM payments.outbox \
     WHERE sent_at IS NULL AND signature IS NOT NULL \
     ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED";

/// Unsent rows without a signature: written before events were signed.
const UNSIGNED: &str =
    "SELECT count(*) FROM payments.outbox WHERE sent_at IS NULL AND signature IS NULL";

const MARK_SENT: &str = "UPDATE payments.outbox SET sent_at = now() WHERE event_id = ANY($1)";

/// Both served by `outbox_unsent_idx`, a partial index over exactly the unsent rows.
const UNSENT: &str = "SELECT count(*), \
     COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 \
     FROM payments.outbox WHERE sent_at IS NULL";

pub async fn run(config: RelayConfig, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(config.retry_base, config.reconnect_max);
    loop {
        let session = session(&config, &mut backoff, shutdown.clone());
        let error = tokio::select! {
            result = session => match result {
                Ok(()) => return,
                Err(error) => error,
            },
            _ = stopped(&mut shutdown) => return,
        };
        let delay = backoff.next_delay();
        tracing::warn!("relay publisher: {error:#}; reconnecting in {delay:?}");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

/// One connected stretch: until shutdown (Ok) or until PostgreSQL or the broker fails.
async fn session(
    config: &RelayConfig,
    backoff: &mut Backoff,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let (mut db, mut wakeups) = connect_listening(&config.postgres_url).await?;
    // Sampled before the broker is reached, so while it is down each reconnect attempt still
    // shows the outbox filling up.
    let mut sampler = Sampler::new(config.poll_interval, config.metrics.clone());
    sampler.sample(&db).await?;
    warn_of_unsigned(&db).await?;
    let amqp = lapin::Connection::connect(&config.amqp_url, amqp_properties())
        .await
        .context("connecting to RabbitMQ")?;
    let channel = amqp.create_channel().await?;
    topology::declare(&channel).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    tracing::info!("relay publisher connected");
    loop {
        // Drain everything unsent, then sleep until told or until the poll interval.
        loop {
            sampler.sample_if_due(&db).await?;
            let published = publish_batch(&mut db, &channel, config.batch_size).await?;
            config.metrics.published(published);
            backoff.reset();
            if published < config.batch_size as usize {
                break;
            }
        }
        sampler.sample_if_due(&db).await?;
        tokio::select! {
            wakeup = wakeups.recv() => {
                if wakeup.is_none() {
                    bail!("the PostgreSQL connection for LISTEN closed");
                }
            }
            _ = tokio::time::sleep(config.poll_interval) => {}
            _ = stopped(&mut shutdown) => return Ok(()),
        }
    }
}

/// Publishes up to `limit` unsent events; returns how many.
async fn publish_batch(db: &mut Client, channel: &Channel, limit: i64) -> Result<usize> {
    let transaction = db.transaction().await?;
    let rows = transaction.query(CLAIM, &[&limit]).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let events: Vec<PaymentEvent> = rows
        .iter()
        .map(|row| PaymentEvent {
            event_id: row.get("event_id"),
            body: row.get("body"),
            signature: row.get("signature"),
        })
        .collect();
    let mut confirms = Vec::with_capacity(events.len());
    for event in &events {
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(event.event_id.to_string().into())
            // The event's id is also its correlation id: the consumer sends it on as the
            // request id of the delivery, so the event's log lines can be found by it.
            .with_correlation_id(event.event_id.to_string().into())
            .with_type("payment_succeeded".into());
        let confirm = channel
            .basic_publish(
                topology::EXCHANGE,
                topology::ROUTING_KEY,
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                &event.message(),
                properties,
            )
            .await?;
        confirms.push(confirm);
    }
    for (event, confirm) in events.iter().zip(confirms) {
        let confirmation = tokio::time::timeout(CONFIRM_TIMEOUT, confirm)
            .await
            .context("the broker did not confirm in time")??;
        match confirmation {
            Confirmation::Ack(None) => {}
            Confirmation::Ack(Some(_)) => {
                bail!(
                    "event {} was returned unrouted by the broker",
                    event.event_id
                )
            }
            Confirmation::Nack(_) => bail!("the broker refused event {}", event.event_id),
            Confirmation::NotRequested => bail!("the channel is not in confirm mode"),
        }
    }
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    transaction.execute(MARK_SENT, &[&ids]).await?;
    transaction.commit().await?;
    tracing::debug!(count = events.len(), "published payment events");
    Ok(events.len())
}

/// Says so when the outbox holds rows from before events were signed: the relay leaves them
/// unsent (bonus-service would refuse them), so they wait for an operator, not for a retry.
async fn warn_of_unsigned(db: &Client) -> Result<()> {
    let unsigned: i64 = db
        .query_one(UNSIGNED, &[])
        .await
        .context("counting unsigned outbox rows")?
        .get(0);
    if unsigned > 0 {
        tracing::warn!(
            unsigned,
            "the outbox holds {unsigned} unsent event(s) written before events were signed; \
             they are not published: sign them as migrations/0011_signed_events.sql shows"
        );
    }
    Ok(())
}

/// Samples the outbox at most once per interval: a wake-up per payment under load must not
/// become a count per payment.
struct Sampler {
    every: Duration,
    last: Option<Instant>,
    metrics: RelayMetrics,
}

impl Sampler {
    fn new(every: Duration, metrics: RelayMetrics) -> Self {
        Self {
            every,
            last: None,
            metrics,
        }
    }

    async fn sample_if_due(&mut self, db: &Client) -> Result<()> {
        if self.last.is_some_and(|last| last.elapsed() < self.every) {
            return Ok(());
        }
        self.sample(db).await
    }

    async fn sample(&mut self, db: &Client) -> Result<()> {
        let row = db
            .query_one(UNSENT, &[])
            .await
            .context("sampling the outbox")?;
        let depth: i64 = row.get(0);
        let age: f64 = row.get(1);
        self.metrics.outbox_sampled(
            u64::try_from(depth).unwrap_or(0),
            Duration::try_from_secs_f64(age).unwrap_or_default(),
        );
        self.last = Some(Instant::now());
        Ok(())
    }
}

/// A client that LISTENs on [`CHANNEL`], and the wake-ups its notifications produce. The
/// receiver closes when the connection does.
async fn connect_listening(url: &str) -> Result<(Client, mpsc::Receiver<()>)> {
    let parsed: pgconnect::ConnectionString = url.parse().context("the PostgreSQL URL")?;
    let (client, mut connection) = parsed.connect().await.context("connecting to PostgreSQL")?;
    let (wake, wakeups) = mpsc::channel(1);
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    // A full channel already holds a wake-up; one is enough.
                    let _ = wake.try_send(());
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!("relay LISTEN connection: {error}");
                    break;
                }
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .context("LISTEN")?;
    Ok((client, wakeups))
}
