//! A payment_succeeded event as it travels: the outbox row's body and signature exactly as
//! payment-service wrote them, in the envelope of crates/events
//! (`{"event": "<body>", "signature": "hmac-sha256=<hex>"}`). The relay re-encodes nothing and
//! holds no key; bonus-service checks the signature over the bytes that were signed.

use uuid::Uuid;

/// One signed outbox row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentEvent {
    /// Also the AMQP message id and correlation id.
    pub event_id: Uuid,
    /// The event's JSON text, as signed.
    pub body: String,
    pub signature: String,
}

impl PaymentEvent {
    /// The message body: the envelope of `body` and `signature`.
    pub fn message(&self) -> Vec<u8> {
        events::envelope(&self.body, &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_carries_the_signed_bytes_unchanged() {
        let key = events::SigningKey::new(b"a-relay-test-key-of-32-bytes-or-more").unwrap();
        // Spacing and key order as written, never normalised.
        let body = r#"{"order_id":"x", "amount":1499.99,"event_id":"y"}"#;
        let event = PaymentEvent {
            event_id: Uuid::from_u128(1),
            body: body.to_owned(),
            signature: key.sign(body),
        };
        assert_eq!(key.open(&event.message()).unwrap(), body);
    }
}
