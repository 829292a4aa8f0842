//! A payment_succeeded event as it travels: the seed's body `{order_id, user_id, amount}`
//! plus `event_id` (also the AMQP message id), amount in roubles as an exact decimal number.

use serde::Serialize;
use uuid::Uuid;

/// One outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount_kopecks: i64,
}

#[derive(Serialize)]
struct Body {
    order_id: Uuid,
    user_id: Uuid,
    amount: serde_json::Number,
    event_id: Uuid,
}

impl PaymentEvent {
    /// The message body. The amount is written from its decimal text, so `1499.99` arrives
    /// as exactly that and never as a float's neighbour.
    pub fn body(&self) -> Vec<u8> {
        let roubles = format!(
            "{}.{:02}",
            self.amount_kopecks / 100,
            self.amount_kopecks % 100
        );
        let amount = roubles
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .expect("a kopeck amount is a finite decimal");
        serde_json::to_vec(&Body {
            order_id: self.order_id,
            user_id: self.user_id,
            amount,
            event_id: self.event_id,
        })
        .expect("uuids and numbers serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_seeds_plus_the_event_id() {
        let event = PaymentEvent {
            event_id: Uuid::from_u128(1),
            order_id: Uuid::from_u128(2),
            user_id: Uuid::from_u128(3),
            amount_kopecks: 149_999,
        };
        let body: serde_json::Value = serde_json::from_slice(&event.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "order_id": Uuid::from_u128(2),
                "user_id": Uuid::from_u128(3),
                "amount": 1499.99,
                "event_id": Uuid::from_u128(1)
            })
        );
        assert!(String::from_utf8(event.body())
            .unwrap()
            .contains("\"amount\":1499.99"));
    }
}
