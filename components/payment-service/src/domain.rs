//! Payments as the business sees them: what may be paid, how, and what a retry with an
//! Idempotency-Key must get back. No spin-sdk here: `cargo test` runs these rules natively.

use api::json::{self, Object};
use api::money::Money;
use api::{FieldError, FieldErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Card,
    Cash,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Cash => "cash",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "card" => Some(Self::Card),
            "cash" => Some(Self::Cash),
            _ => None,
        }
    }
}

/// `POST /api/payments`'s body as documented (the seed's example); [`NewPayment::parse`] reads it.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "order_id": "550e8400-e29b-41d4-a716-446655440000",
    "payment_method": "card"
}))]
#[allow(dead_code)]
pub struct PaymentRequest {
    /// One of the caller's orders (staff: any), not cancelled, booking something; its
    /// total is charged.
    order_id: Uuid,
    payment_method: PaymentMethod,
}

/// `POST /api/payments`: `{order_id, payment_method}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPayment {
    pub order_id: Uuid,
    pub method: PaymentMethod,
}

impl NewPayment {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let order_id = errors.check(json::required_str(body, "order_id").and_then(|s| {
            Uuid::parse_str(s.trim()).map_err(|_| FieldError::new("order_id", "must be a UUID"))
        }));
        let method = errors.check(json::required_str(body, "payment_method").and_then(|s| {
            PaymentMethod::parse(s.trim())
                .ok_or_else(|| FieldError::new("payment_method", "must be card or cash"))
        }));
        match (order_id, method) {
            (Some(order_id), Some(method)) => Ok(Self { order_id, method }),
            _ => Err(errors),
        }
    }

    /// What makes two requests "the same" for an Idempotency-Key: a key reused with another
    /// order or method is a client bug, not a retry.
    pub fn fingerprint(&self) -> String {
        let digest = Sha256::digest(format!("{}|{}", self.order_id, self.method.as_str()));
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters (a UUID, typically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let key = raw.trim();
        if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(key.to_owned()))
        } else {
            Err(FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters, e.g. a UUID",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What payment needs to know of an order, as order-service returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderToPay {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub total: Money,
}

/// Why an order cannot be paid, before any money moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpayable {
    Cancelled,
    NothingToPay,
}

impl OrderToPay {
    /// The amount to charge: the order's total, if the order may be paid at all.
    pub fn amount(&self) -> Result<Money, Unpayable> {
        if self.status == "cancelled" {
            Err(Unpayable::Cancelled)
        } else if self.total == Money::ZERO {
            Err(Unpayable::NothingToPay)
        } else {
            Ok(self.total)
        }
    }
}

/// The simulated card processor: a delay, and a switch to decline every charge (for
/// testing the decline path). Real processors plug in here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processor {
    pub delay_ms: u64,
    pub decline: bool,
}

impl Processor {
    pub const MAX_DELAY_MS: u64 = 30_000;

    pub fn parse(delay_ms: &str, decline: &str) -> Option<Self> {
        let delay_ms = delay_ms
            .trim()
            .parse()
            .ok()
            .filter(|ms| *ms <= Self::MAX_DELAY_MS)?;
        let decline = match decline.trim() {
            "true" => true,
            "false" => false,
            _ => return None,
        };
        Some(Self { delay_ms, decline })
    }
}

/// How a payment's event leaves payment-service (`payment_events_transport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The transactional outbox, drained by the relay into RabbitMQ: at least once.
    RabbitMq,
    /// Published to a Redis channel after the commit, for `[[trigger.redis]]`: at most once.
    Redis { url: String, channel: String },
}

impl Transport {
    pub fn parse(name: &str, redis_url: &str, channel: &str) -> Option<Self> {
        match name.trim() {
            "rabbitmq" => Some(Self::RabbitMq),
            "redis" if !channel.trim().is_empty() => Some(Self::Redis {
                url: redis_url.trim().to_owned(),
                channel: channel.trim().to_owned(),
            }),
            _ => None,
        }
    }
}

/// A payment_succeeded event: the seed's `{order_id, user_id, amount}` plus `event_id`,
/// the same body the relay sends, so bonus-service reads one format from both transports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentEvent {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
    pub event_id: Uuid,
}

/// A payment, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    pub order_id: Uuid,
    /// The order's owner, also when staff took the payment.
    pub user_id: Uuid,
    pub amount: Money,
    pub payment_method: PaymentMethod,
    /// Always `succeeded`: a declined charge is not stored.
    #[schema(example = "succeeded")]
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn object(value: Value) -> Object {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_seed_body_parses_and_other_methods_are_422() {
        let body = object(
            json!({"order_id":"550e8400-e29b-41d4-a716-446655440000","payment_method":"card"}),
        );
        assert_eq!(
            NewPayment::parse(&body).unwrap().method,
            PaymentMethod::Card
        );
        for method in [json!("bitcoin"), json!("CARD"), json!(1), Value::Null] {
            let body = object(
                json!({"order_id":"550e8400-e29b-41d4-a716-446655440000","payment_method":method}),
            );
            let errors = NewPayment::parse(&body).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "payment_method", "{method}");
        }
    }

    #[test]
    fn fingerprints_tell_requests_apart() {
        let id = Uuid::from_u128(1);
        let card = NewPayment {
            order_id: id,
            method: PaymentMethod::Card,
        };
        let cash = NewPayment {
            method: PaymentMethod::Cash,
            ..card
        };
        assert_eq!(card.fingerprint(), card.fingerprint());
        assert_ne!(card.fingerprint(), cash.fingerprint());
        assert_eq!(card.fingerprint().len(), 64);
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("3f1c6e2a-0b6d-4a59-9d5c-1e7f0a2b3c4d").is_ok());
        for bad in ["", " ", "has space", "ключ", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_live_orders_with_a_total_can_be_paid() {
        let order = |status: &str, kopecks| OrderToPay {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            status: status.into(),
            total: Money::from_kopecks(kopecks).unwrap(),
        };
        assert_eq!(
            order("created", 150_000).amount(),
            Ok(Money::from_kopecks(150_000).unwrap())
        );
        assert_eq!(order("completed", 1).amount().map(Money::kopecks), Ok(1));
        assert_eq!(
            order("cancelled", 150_000).amount(),
            Err(Unpayable::Cancelled)
        );
        assert_eq!(order("created", 0).amount(), Err(Unpayable::NothingToPay));
    }

    #[test]
    fn transports_are_rabbitmq_or_redis_with_a_channel() {
        assert_eq!(
            Transport::parse("rabbitmq", "", ""),
            Some(Transport::RabbitMq)
        );
        assert_eq!(
            Transport::parse(" redis ", "redis://127.0.0.1:6379", "payment_events"),
            Some(Transport::Redis {
                url: "redis://127.0.0.1:6379".into(),
                channel: "payment_events".into()
            })
        );
        assert_eq!(Transport::parse("redis", "redis://x", " "), None);
        assert_eq!(Transport::parse("kafka", "", "c"), None);
    }

    #[test]
    fn an_event_body_matches_the_relays() {
        let event = PaymentEvent {
            order_id: Uuid::from_u128(2),
            user_id: Uuid::from_u128(3),
            amount: Money::from_kopecks(149_999).unwrap(),
            event_id: Uuid::from_u128(1),
        };
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            json!({"order_id": Uuid::from_u128(2), "user_id": Uuid::from_u128(3),
                   "amount": 1499.99, "event_id": Uuid::from_u128(1)})
        );
    }

    #[test]
    fn processor_settings_are_bounded() {
        assert_eq!(
            Processor::parse("0", "false"),
            Some(Processor {
                delay_ms: 0,
                decline: false
            })
        );
        assert_eq!(Processor::parse("5000", "true").unwrap().delay_ms, 5000);
        assert_eq!(Processor::parse("30001", "false"), None);
        assert_eq!(Processor::parse("-1", "false"), None);
        assert_eq!(Processor::parse("0", "yes"), None);
    }
}
