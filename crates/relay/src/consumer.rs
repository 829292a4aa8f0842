//! RabbitMQ -> bonus-service. Each delivery is POSTed to the bonus event route with the
//! relay credential and acked only after a 2xx; failures are retried in place with backoff,
//! and after `max_attempts` the message is rejected without requeue, which the queue's
//! dead-letter exchange turns into a copy in `payment_succeeded_queue.dlq`. A message
//! bonus-service refuses for what it is (400, 403 such as a bad signature, 413, 415, 422) is
//! poison: no retry can change it, so it is dead-lettered at once. A relay that dies
//! mid-retry leaves the message unacked, so the broker hands it to the next consumer.
//! Each POST carries `x-request-id: relay-<event id>`, so bonus-service's lines for one event
//! can be found.

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::BasicProperties;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{amqp_properties, stopped, topology, Backoff, RelayConfig};

pub async fn run(config: RelayConfig, mut shutdown: watch::Receiver<bool>) {
    let mut backoff = Backoff::new(config.retry_base, config.reconnect_max);
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
    let request_id = request_id(&delivery.properties);
    let mut backoff = Backoff::new(config.retry_base, config.retry_max);
    for attempt in 1..=config.max_attempts {
        match post(&http, &config, &delivery.data, request_id.as_deref()).await {
            Err(Failure::Poison(error)) => {
                tracing::error!(
                    event_id,
                    attempt,
                    "delivery refused: {error:#}; the message itself is refused, so it is \
                     dead-lettered into {} without retrying",
                    topology::DEAD_LETTER_QUEUE
                );
                dead_letter(&delivery, &config, &event_id).await;
                return;
            }
            Ok(()) => {
                match delivery.ack(BasicAckOptions::default()).await {
                    Ok(()) => config.metrics.acked(),
                    // The channel is gone: the broker redelivers, bonus-service deduplicates.
                    Err(error) => tracing::warn!(event_id, "ack failed: {error}"),
                }
                return;
            }
            Err(Failure::Retry(error)) if attempt < config.max_attempts => {
                config.metrics.retried();
                let delay = backoff.next_delay();
                tracing::warn!(
                    event_id,
                    attempt,
                    "delivery failed: {error:#}; retrying in {delay:?}"
                );
                tokio::time::sleep(delay).await;
            }
            Err(Failure::Retry(error)) => {
                tracing::error!(
                    event_id,
                    attempt,
                    "delivery failed: {error:#}; dead-lettering into {}",
                    topology::DEAD_LETTER_QUEUE
                );
                dead_letter(&delivery, &config, &event_id).await;
            }
        }
    }
}

/// Rejects without requeue: the queue's dead-letter exchange keeps a copy.
async fn dead_letter(delivery: &Delivery, config: &RelayConfig, event_id: &str) {
    let reject = BasicRejectOptions { requeue: false };
    match delivery.reject(reject).await {
        Ok(()) => config.metrics.dead_lettered(),
        Err(error) => tracing::warn!(event_id, "reject failed: {error}"),
    }
}

/// Why a delivery did not go through.
enum Failure {
    /// bonus-service unreachable, timing out, failing (5xx) or not ready for this relay (401
    /// a token being rolled out, 404, 408, 409, 429): worth another attempt.
    Retry(anyhow::Error),
    /// bonus-service refused the message itself: the same bytes will be refused again.
    Poison(anyhow::Error),
}

/// Statuses that refuse the message itself rather than this moment.
fn is_poison(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 400 | 403 | 413 | 415 | 422)
}

/// `relay-<correlation id>`: the outbox event id the publisher set (the message id for a
/// message published before correlation ids were set). None for an id that would not make a
/// valid request id (1 to 128 visible ASCII characters): a bad header must not fail the
/// delivery, and without one the host makes up an id.
fn request_id(properties: &BasicProperties) -> Option<String> {
    [properties.correlation_id(), properties.message_id()]
        .into_iter()
        .flatten()
        .map(|id| format!("relay-{}", id.as_str()))
        .find(|id| id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
}

async fn post(
    http: &reqwest::Client,
    config: &RelayConfig,
    body: &[u8],
    request_id: Option<&str>,
) -> Result<(), Failure> {
    let mut request = http
        .post(&config.bonus_url)
        .header("content-type", "application/json")
        .header("x-relay-token", &config.relay_token);
    if let Some(id) = request_id {
        request = request.header("x-request-id", id);
    }
    let response = request
        .body(body.to_vec())
        .send()
        .await
        .context("bonus-service unreachable")
        .map_err(Failure::Retry)?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    let error = anyhow::anyhow!(
        "bonus-service answered {status}: {}",
        text.chars().take(300).collect::<String>()
    );
    Err(if is_poison(status) {
        Failure::Poison(error)
    } else {
        Failure::Retry(error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_refusals_of_the_message_itself_skip_the_retries() {
        for poison in [400, 403, 413, 415, 422] {
            assert!(
                is_poison(reqwest::StatusCode::from_u16(poison).unwrap()),
                "{poison}"
            );
        }
        for retried in [401, 404, 408, 409, 429, 500, 502, 503, 504] {
            assert!(
                !is_poison(reqwest::StatusCode::from_u16(retried).unwrap()),
                "{retried}"
            );
        }
    }

    #[test]
    fn deliveries_carry_the_event_id_as_request_id_when_it_makes_a_sane_one() {
        let event = "6b1f2c1e-0001-4000-8000-000000000001";
        let both = BasicProperties::default()
            .with_message_id("message".into())
            .with_correlation_id(event.into());
        assert_eq!(request_id(&both).unwrap(), format!("relay-{event}"));
        let old = BasicProperties::default().with_message_id(event.into());
        assert_eq!(request_id(&old).unwrap(), format!("relay-{event}"));
        let odd = BasicProperties::default()
            .with_correlation_id("has space".into())
            .with_message_id("x".repeat(123).into());
        assert_eq!(request_id(&odd), None);
        assert_eq!(request_id(&BasicProperties::default()), None);
    }
}
