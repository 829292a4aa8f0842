//! RabbitMQ -> bonus-service. Each delivery is POSTed to the bonus event route with the
//! relay credential and acked only after a 2xx; failures are retried in place with backoff,
//! and after `max_attempts` the message is rejected without requeue, which the queue's
//! dead-letter exchange turns into a copy in `payment_succeeded_queue.dlq`. A relay that
//! dies mid-retry leaves the message unacked, so the broker hands it to the next consumer.

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{amqp_properties, stopped, topology, Backoff, RelayConfig};

pub async fn run(config: RelayConfig, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(config.retry_base, config.retry_max);
    let http = match reqwest::Client::builder()
        .timeout(config.delivery_timeout)
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            tracing::error!("relay consumer cannot build its HTTP client: {error}");
            return;
        }
    };
    loop {
        let error = match session(&config, &http, &mut backoff, shutdown.clone()).await {
            Ok(()) => return,
            Err(error) => error,
        };
        let delay = backoff.next_delay();
        tracing::warn!("relay consumer: {error:#}; reconnecting in {delay:?}");
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stopped(&mut shutdown) => return,
        }
    }
}

async fn session(
    config: &RelayConfig,
    http: &reqwest::Client,
    backoff: &mut Backoff,
    mut shutdown: watch::Receiver<bool>,
) -> Result<()> {
    let amqp = lapin::Connection::connect(&config.amqp_url, amqp_properties())
        .await
        .context("connecting to RabbitMQ")?;
    let channel = amqp.create_channel().await?;
    topology::declare(&channel).await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions::default())
        .await?;
    let mut deliveries = channel
        .basic_consume(
            topology::QUEUE,
            "detailing-relay",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    tracing::info!("relay consumer connected");
    backoff.reset();
    let mut in_flight = JoinSet::new();
    loop {
        tokio::select! {
            delivery = deliveries.next() => match delivery {
                Some(Ok(delivery)) => {
                    in_flight.spawn(deliver(delivery, http.clone(), config.clone()));
                }
                Some(Err(error)) => return Err(error).context("consuming"),
                None => bail!("the broker closed the consumer"),
            },
            Some(done) = in_flight.join_next(), if !in_flight.is_empty() => {
                if let Err(error) = done {
                    tracing::error!("a delivery task failed: {error}");
                }
            }
            // Unacked deliveries go back to the queue when the channel closes.
            _ = stopped(&mut shutdown) => return Ok(()),
        }
    }
}

/// Delivers one message until bonus-service takes it or the attempts run out.
async fn deliver(delivery: Delivery, http: reqwest::Client, config: RelayConfig) {
    let event_id = delivery
        .properties
        .message_id()
        .as_ref()
        .map(|id| id.to_string())
        .unwrap_or_default();
    let mut backoff = Backoff::new(config.retry_base, config.retry_max);
    for attempt in 1..=config.max_attempts {
        match post(&http, &config, &delivery.data).await {
            Ok(()) => {
                if let Err(error) = delivery.ack(BasicAckOptions::default()).await {
                    // The channel is gone: the broker redelivers, bonus-service deduplicates.
                    tracing::warn!(event_id, "ack failed: {error}");
                }
                return;
            }
            Err(error) if attempt < config.max_attempts => {
                let delay = backoff.next_delay();
                tracing::warn!(
                    event_id,
                    attempt,
                    "delivery failed: {error:#}; retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
            }
            Err(error) => {
                tracing::error!(
                    event_id,
                    attempt,
                    "delivery failed: {error:#}; dead-lettering into {}",
                    topology::DEAD_LETTER_QUEUE
                );
                let reject = BasicRejectOptions { requeue: false };
                if let Err(error) = delivery.reject(reject).await {
                    tracing::warn!(event_id, "reject failed: {error}");
                }
            }
        }
    }
}

async fn post(http: &reqwest::Client, config: &RelayConfig, body: &[u8]) -> Result<()> {
    let response = http
        .post(&config.bonus_url)
        .header("content-type", "application/json")
        .header("x-relay-token", &config.relay_token)
        .body(body.to_vec())
        .send()
        .await
        .context("bonus-service unreachable")?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        let text = response.text().await.unwrap_or_default();
        bail!(
            "bonus-service answered {status}: {}",
            &text[..text.len().min(300)]
        )
    }
}
