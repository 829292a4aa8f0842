//! Refresh tokens: opaque, 32 random bytes written as 43 base64url characters. Only the
//! SHA-256 of a token is stored; with 256 bits of entropy a plain hash is enough (there is
//! nothing to guess, so no slow hash or salt is needed), and a database leak gives no usable
//! token. What a token may do (rotation, families, revocation) is user-service's.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Random bytes per token.
pub const TOKEN_BYTES: usize = 32;

/// Characters of a token: 32 bytes in unpadded base64url.
pub const TOKEN_CHARS: usize = 43;

/// A refresh token as the client holds it. Its text never appears in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct RefreshToken(String);

impl RefreshToken {
    /// A new token from the system's random source (WASI's `random_get` in a component).
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes)?;
        Ok(Self::from_bytes(bytes))
    }

    /// The token of these random bytes.
    pub fn from_bytes(bytes: [u8; TOKEN_BYTES]) -> Self {
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// `text` if it can be a token this module made (anything else is unknown without a
    /// look-up). Surrounding whitespace is not trimmed: a token is copied, not typed.
    pub fn parse(text: &str) -> Option<Self> {
        if text.len() != TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let bytes: [u8; TOKEN_BYTES] = bytes.try_into().ok()?;
        // Base64 leaves two bits of the last character unused; only the canonical spelling
        // is a token, so one token has one text and one hash.
        (URL_SAFE_NO_PAD.encode(bytes) == text).then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What is stored: SHA-256 of the token's text, 64 lower-case hex digits.
    pub fn hash(&self) -> String {
        Sha256::digest(self.0.as_bytes())
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

impl fmt::Debug for RefreshToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RefreshToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_43_base64url_characters_and_parses() {
        let token = RefreshToken::generate().unwrap();
        assert_eq!(token.as_str().len(), TOKEN_CHARS);
        assert!(token
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(RefreshToken::parse(token.as_str()), Some(token));
    }

    #[test]
    fn generated_tokens_differ() {
        let tokens: std::collections::HashSet<String> = (0..64)
            .map(|_| RefreshToken::generate().unwrap().as_str().to_owned())
            .collect();
        assert_eq!(tokens.len(), 64);
    }

    #[test]
    fn the_stored_hash_is_sha256_of_the_text_in_hex() {
        let token = RefreshToken::from_bytes([0; TOKEN_BYTES]);
        assert_eq!(
            token.as_str(),
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
        );
        // printf '%s' AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA | sha256sum
        assert_eq!(
            token.hash(),
            "0f007385b6f9d4b7eeb2748605afe1a984a0a3bfa3f014d09e2a784ce9e5cd1a"
        );
    }

    #[test]
    fn anything_else_is_not_a_token() {
        let good = RefreshToken::from_bytes([7; TOKEN_BYTES]);
        let text = good.as_str();
        let padded = format!("{text}=");
        let standard = text.replace('-', "+").replace('_', "/");
        let mut non_canonical = text.to_owned();
        // The last character carries two unused bits: another letter decodes to the same bytes.
        let last = non_canonical.pop().unwrap();
        non_canonical.push(if last == 'c' { 'd' } else { 'c' });
        for bad in [
            "",
            "garbage",
            &text[..42],
            &padded,
            &format!(" {}", &text[1..]),
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.abc",
            &"!".repeat(TOKEN_CHARS),
            &"я".repeat(21),
        ] {
            assert_eq!(RefreshToken::parse(bad), None, "{bad:?}");
        }
        if standard != text {
            assert_eq!(RefreshToken::parse(&standard), None);
        }
        assert_eq!(RefreshToken::parse(&non_canonical), None);
    }

    #[test]
    fn debug_hides_the_token() {
        let token = RefreshToken::from_bytes([1; TOKEN_BYTES]);
        assert_eq!(format!("{token:?}"), "RefreshToken(..)");
    }
}
