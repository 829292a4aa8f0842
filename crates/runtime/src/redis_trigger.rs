//! `[[trigger.redis]]`: subscribes to each channel and runs one fresh instance of the
//! component per message, as Spin does, counting each message's outcome in the component's
//! metrics. Pub/sub delivers at most once: a message published while no subscriber listens,
//! or while the handler fails, is gone. Subscribing is bounded like the outbound side
//! ([`REDIS_CONNECT_TIMEOUT`], [`REDIS_RESPONSE_TIMEOUT`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio::sync::watch;

use crate::app::App;
use crate::limits::{REDIS_CONNECT_TIMEOUT, REDIS_RESPONSE_TIMEOUT};
use crate::manifest::RedisTrigger;

/// Runs every `[[trigger.redis]]` of `app` until `shutdown` turns true: one subscription per
/// (address, channel), one instance per message. Reconnects with backoff when Redis goes.
pub async fn run_triggers(app: Arc<App>, shutdown: watch::Receiver<bool>) {
    let triggers = app.redis_triggers().to_vec();
    let mut tasks = tokio::task::JoinSet::new();
    for trigger in triggers {
        tasks.spawn(subscribe(app.clone(), trigger, shutdown.clone()));
    }
    while tasks.join_next().await.is_some() {}
}

async fn subscribe(app: Arc<App>, trigger: RedisTrigger, mut shutdown: watch::Receiver<bool>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let session = listen(&app, &trigger);
        let error = tokio::select! {
            result = session => match result {
                Ok(()) => anyhow::anyhow!("the subscription ended"),
                Err(error) => error,
            },
            _ = shutdown.wait_for(|stop| *stop) => return,
        };
        tracing::warn!(
            channel = %trigger.channel,
            component = %trigger.component,
            "redis trigger: {error:#}; resubscribing in {delay:?}"
        );
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        delay = (delay * 2).min(Duration::from_secs(5));
    }
}

async fn listen(app: &Arc<App>, trigger: &RedisTrigger) -> Result<()> {
    let client = redis::Client::open(trigger.address.as_str())
        .with_context(|| format!("invalid redis address for channel `{}`", trigger.channel))?;
    // Bounded, so a Redis that accepts connections and never answers is retried, not
    // waited on for ever.
    let mut pubsub = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, client.get_async_pubsub())
        .await
        .context("connecting to Redis: no answer")?
        .context("connecting to Redis")?;
    tokio::time::timeout(REDIS_RESPONSE_TIMEOUT, pubsub.subscribe(&trigger.channel))
        .await
        .context("subscribing: no answer")??;
    tracing::info!(
        channel = %trigger.channel,
        component = %trigger.component,
        "redis trigger subscribed"
    );
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload = message.get_payload_bytes().to_vec();
        let app = app.clone();
        let component = trigger.component.clone();
        // One instance per message, concurrently, like Spin.
        tokio::spawn(async move {
            let metrics = app
                .component(&component)
                .map(|loaded| loaded.config.metrics.clone());
            let outcome = app.handle_redis_message(&component, payload).await;
            if let Some(metrics) = metrics {
                metrics.redis_message(outcome.is_ok());
            }
            if let Err(error) = outcome {
                tracing::error!(%component, "redis message handler failed: {error:#}");
            }
        });
    }
    Ok(())
}
