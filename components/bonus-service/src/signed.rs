//! Which payment events are real: the ones payment-service signed. Every message, from the
//! relay over HTTP or from the Redis channel, is the envelope of crates/events, and its body
//! counts only when the HMAC-SHA256 under `event_signing_key` matches (compared in constant
//! time). A refusal carries its reason, which names no key material: the HTTP route logs it,
//! and spin-sdk prints a Redis handler's error.

use api::json::Object;
use api::ApiError;

use crate::domain::SignedEventRequest;
use crate::error::BonusError;

pub const KEY_VARIABLE: &str = "event_signing_key";

/// The event body inside `message`, if payment-service signed it with this component's key.
pub fn open(message: &[u8]) -> Result<Object, BonusError> {
    // The envelope's documented shape first: anything else is not a signed envelope.
    let shaped = api::json::parse_json_object(message)
        .ok()
        .is_some_and(|object| api::body::parse::<SignedEventRequest>(&object).is_ok());
    if !shaped {
        return Err(BonusError::InvalidSignature(events::Refused::NotSigned));
    }
    let key = api::config::variable(KEY_VARIABLE)?;
    let key = events::SigningKey::new(key.as_bytes())
        .map_err(|short| ApiError::configuration(format!("{KEY_VARIABLE}: {short}")))?;
    let body = key.open(message).map_err(BonusError::InvalidSignature)?;
    Ok(api::json::parse_json_object(body.as_bytes())?)
}
