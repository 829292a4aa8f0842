//! Payment events on the wire, one format for every transport: the event's JSON body as
//! payment-service wrote it, byte for byte, and an HMAC-SHA256 of exactly those bytes under
//! the `event_signing_key`, wrapped in an envelope
//! `{"event": "<body as a JSON string>", "signature": "hmac-sha256=<64 hex digits>"}`.
//! payment-service signs; the relay and Redis carry the envelope without the key; bonus-service
//! opens it and trusts only the body inside a matching signature.

// A library: it returns errors and leaves logging to its caller (a component's stderr, the
// relay's `tracing`).
#![warn(clippy::print_stdout, clippy::print_stderr)]

use std::fmt;

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The shortest key accepted: as long as the hash, so the key is not the weak part.
pub const MIN_KEY_BYTES: usize = 32;

/// What a signature starts with: the one algorithm, named so another can follow.
const SCHEME: &str = "hmac-sha256=";

/// The shared secret of payment-service and bonus-service. Its bytes are never printed.
#[derive(Clone)]
pub struct SigningKey(Vec<u8>);

/// A key shorter than [`MIN_KEY_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyTooShort;

impl fmt::Display for KeyTooShort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "an event signing key needs {MIN_KEY_BYTES} bytes at least"
        )
    }
}

impl std::error::Error for KeyTooShort {}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

/// Why a message was not taken as a payment event. The texts name no key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Not an envelope with an `event` string and a `signature` string (a bare event body,
    /// say, as anyone can publish).
    NotSigned,
    /// A signature that is not `hmac-sha256=` and 64 hex digits.
    MalformedSignature,
    /// A well-formed signature that does not match the body under this key.
    WrongSignature,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSigned => {
                "not a signed event: expected {\"event\": \"<body>\", \"signature\": \"hmac-sha256=<hex>\"}"
            }
            Self::MalformedSignature => "the signature is not hmac-sha256= and 64 hex digits",
            Self::WrongSignature => {
                "the signature does not match the event (signed with another key, or altered)"
            }
        })
    }
}

impl std::error::Error for Refused {}

#[derive(Serialize)]
struct EnvelopeOut<'a> {
    event: &'a str,
    signature: &'a str,
}

#[derive(Deserialize)]
struct EnvelopeIn {
    event: Option<String>,
    signature: Option<String>,
}

/// The message both transports carry for `body` and its `signature`.
pub fn envelope(body: &str, signature: &str) -> Vec<u8> {
    serde_json::to_vec(&EnvelopeOut {
        event: body,
        signature,
    })
    .expect("two strings serialize")
}

impl SigningKey {
    pub fn new(key: &[u8]) -> Result<Self, KeyTooShort> {
        if key.len() < MIN_KEY_BYTES {
            return Err(KeyTooShort);
        }
        Ok(Self(key.to_vec()))
    }

    fn mac(&self, body: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(body.as_bytes());
        mac
    }

    /// `hmac-sha256=<hex>` over exactly the bytes of `body`.
    pub fn sign(&self, body: &str) -> String {
        let tag = self.mac(body).finalize().into_bytes();
        let mut signature = String::with_capacity(SCHEME.len() + 64);
        signature.push_str(SCHEME);
        for byte in tag {
            signature.push(char::from(HEX[usize::from(byte >> 4)]));
            signature.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        signature
    }

    /// The envelope of `body`, signed.
    pub fn seal(&self, body: &str) -> Vec<u8> {
        envelope(body, &self.sign(body))
    }

    /// Ok when `signature` is this key's over `body`; compared in constant time.
    pub fn verify(&self, body: &str, signature: &str) -> Result<(), Refused> {
        let tag = signature
            .strip_prefix(SCHEME)
            .and_then(decode_hex)
            .ok_or(Refused::MalformedSignature)?;
        self.mac(body)
            .verify_slice(&tag)
            .map_err(|_| Refused::WrongSignature)
    }

    /// The body inside `message`, if it is an envelope whose signature this key made.
    pub fn open(&self, message: &[u8]) -> Result<String, Refused> {
        let envelope: EnvelopeIn =
            serde_json::from_slice(message).map_err(|_| Refused::NotSigned)?;
        let (Some(body), Some(signature)) = (envelope.event, envelope.signature) else {
            return Err(Refused::NotSigned);
        };
        self.verify(&body, &signature)?;
        Ok(body)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// 32 bytes from 64 hex digits (either case), else None.
fn decode_hex(text: &str) -> Option<[u8; 32]> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks_exact(2)) {
        let high = char::from(pair[0]).to_digit(16)?;
        let low = char::from(pair[1]).to_digit(16)?;
        *byte = (high * 16 + low) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a-test-signing-key-of-32-bytes-or-more";
    const BODY: &str = r#"{"order_id":"550e8400-e29b-41d4-a716-446655440000","user_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","amount":1499.99,"event_id":"3fa85f64-5717-4562-b3fc-2c963f66afa6"}"#;

    fn key() -> SigningKey {
        SigningKey::new(KEY).unwrap()
    }

    #[test]
    fn a_sealed_event_opens_to_the_same_bytes() {
        let message = key().seal(BODY);
        assert_eq!(key().open(&message).unwrap(), BODY);
        let value: serde_json::Value = serde_json::from_slice(&message).unwrap();
        assert_eq!(value["event"], BODY);
        assert!(value["signature"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256="));
    }

    #[test]
    fn the_signature_is_hmac_sha256_in_lower_case_hex() {
        // Python's `hmac.new(key, msg, hashlib.sha256).hexdigest()` for the same inputs.
        let key = SigningKey::new(b"0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            key.sign("what do ya want for nothing?"),
            "hmac-sha256=137e6557c3c13a1ca5dc7e52a389a0f86be8cb4db4ae61c62396058b00acacd0"
        );
    }

    #[test]
    fn short_keys_are_refused() {
        assert_eq!(SigningKey::new(&[7; 31]).unwrap_err(), KeyTooShort);
        assert!(SigningKey::new(&[7; 32]).is_ok());
        assert_eq!(format!("{:?}", key()), "SigningKey(..)");
    }

    #[test]
    fn bare_forged_altered_and_foreign_events_are_refused() {
        let k = key();
        // A bare body, as anyone with PUBLISH rights could send it.
        assert_eq!(k.open(BODY.as_bytes()), Err(Refused::NotSigned));
        assert_eq!(k.open(b"not json"), Err(Refused::NotSigned));
        assert_eq!(
            k.open(br#"{"event": 1, "signature": "x"}"#),
            Err(Refused::NotSigned)
        );
        assert_eq!(
            k.open(&envelope(BODY, "")),
            Err(Refused::MalformedSignature)
        );
        assert_eq!(
            k.open(&envelope(BODY, &format!("hmac-sha256={}", "z".repeat(64)))),
            Err(Refused::MalformedSignature)
        );
        assert_eq!(
            k.open(&envelope(BODY, &format!("hmac-sha256={}", "0".repeat(64)))),
            Err(Refused::WrongSignature)
        );
        // The body changed after signing: one more zero bonus-worthy digit.
        let signature = k.sign(BODY);
        let altered = BODY.replace("1499.99", "14999.9");
        assert_eq!(
            k.open(&envelope(&altered, &signature)),
            Err(Refused::WrongSignature)
        );
        // Signed with another key.
        let other = SigningKey::new(b"another-key-that-is-also-32-bytes-long").unwrap();
        assert_eq!(k.open(&other.seal(BODY)), Err(Refused::WrongSignature));
        // Upper-case hex is the same signature.
        let upper = signature
            .to_uppercase()
            .replace("HMAC-SHA256=", "hmac-sha256=");
        assert_eq!(k.open(&envelope(BODY, &upper)).unwrap(), BODY);
    }

    #[test]
    fn reasons_never_carry_the_key() {
        for refused in [
            Refused::NotSigned,
            Refused::MalformedSignature,
            Refused::WrongSignature,
        ] {
            assert!(!refused.to_string().contains("a-test-signing-key"));
        }
    }
}
