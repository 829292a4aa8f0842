//! Who may deliver payment events: the relay, proving it with the `x-relay-token` header
//! equal to the `relay_token` Spin variable. User bearer tokens mean nothing here; a user
//! must never be able to accrue bonuses by posting an event of their own.

use sha2::{Digest, Sha256};
use spin_sdk::http::Request;

use crate::error::BonusError;

pub const TOKEN_HEADER: &str = "x-relay-token";
pub const TOKEN_VARIABLE: &str = "relay_token";

/// Ok when `request` carries the relay's token. A missing header is refused before the
/// variable is read, so it needs no host; a wrong one only after comparing in constant time.
pub fn check(request: &Request) -> Result<(), BonusError> {
    let presented = request
        .header(TOKEN_HEADER)
        .ok_or(BonusError::InvalidRelayToken)?;
    let expected = api::config::variable(TOKEN_VARIABLE)?;
    if same_token(presented.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(BonusError::InvalidRelayToken)
    }
}

/// Whether two tokens are equal, in time that depends on neither's content. Both are hashed
/// first, so the comparison always covers 32 bytes and does not reveal the expected token's
/// length either; every byte is compared, with no early exit.
pub fn same_token(presented: &[u8], expected: &[u8]) -> bool {
    let presented = Sha256::digest(presented);
    let expected = Sha256::digest(expected);
    let difference = presented
        .iter()
        .zip(expected.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(difference) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use spin_sdk::http::Method;

    #[test]
    fn only_the_same_token_matches() {
        assert!(same_token(b"relay-token", b"relay-token"));
        assert!(!same_token(b"relay-token", b"relay-tokeN"));
        assert!(!same_token(b"relay-token", b"relay-token "));
        assert!(!same_token(b"", b"relay-token"));
        assert!(!same_token(b"relay", b"relay-token"));
    }

    #[test]
    fn a_missing_header_is_refused_before_any_host_call() {
        // Natively there is no Spin host: reading the variable would panic.
        let mut request = Request::new(Method::Post, "/api/bonuses/events");
        request.set_header("authorization", "Bearer a-user-token");
        assert!(matches!(
            check(&request),
            Err(BonusError::InvalidRelayToken)
        ));
    }
}
