//! The broker's shape, declared by whoever connects first (declarations are idempotent):
//! the durable exchange `payment_events` and queue `payment_succeeded_queue`, plus a
//! dead-letter exchange and `payment_succeeded_queue.dlq` for messages that keep failing.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{Channel, ExchangeKind};

pub const EXCHANGE: &str = "payment_events";
pub const ROUTING_KEY: &str = "payment.succeeded";
pub const QUEUE: &str = "payment_succeeded_queue";
pub const DEAD_LETTER_EXCHANGE: &str = "payment_events.dlx";
pub const DEAD_LETTER_QUEUE: &str = "payment_succeeded_queue.dlq";

pub async fn declare(channel: &Channel) -> lapin::Result<()> {
    let durable = ExchangeDeclareOptions {
        durable: true,
        ..Default::default()
    };
    let durable_queue = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    for exchange in [EXCHANGE, DEAD_LETTER_EXCHANGE] {
        channel
            .exchange_declare(
                exchange,
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await?;
    }
    // A message rejected without requeue goes to the dead-letter exchange, keeping its body
    // and gaining an `x-death` header that says why and from where.
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(DEAD_LETTER_EXCHANGE.into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(DEAD_LETTER_QUEUE.into()),
    );
    channel
        .queue_declare(QUEUE, durable_queue, arguments)
        .await?;
    channel
        .queue_bind(
            QUEUE,
            EXCHANGE,
            ROUTING_KEY,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(DEAD_LETTER_QUEUE, durable_queue, FieldTable::default())
        .await?;
    channel
        .queue_bind(
            DEAD_LETTER_QUEUE,
            DEAD_LETTER_EXCHANGE,
            DEAD_LETTER_QUEUE,
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await?;
    Ok(())
}
