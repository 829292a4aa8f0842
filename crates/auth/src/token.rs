//! Access tokens: compact JWS with HS256 (RFC 7515/7519) carrying `sub`, `role`, `iat`
//! and `exp`. Verification accepts HS256 only, whatever the token's header claims, so a
//! token saying `none`, HS512 or RS256 is refused before its claims are read.
//! Time is a parameter (`now`, Unix seconds), so the rules are tested without a clock.

use std::fmt;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// HS256 keys shorter than the hash output are weak (RFC 7518 §3.2 asks for at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Clock skew tolerated between the issuer and a verifier, in seconds.
pub const LEEWAY_SECONDS: i64 = 30;

/// A token longer than this is refused before any decoding: ours are about 250 bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The signing key, at least [`MIN_SECRET_BYTES`] long. Its bytes never appear in `Debug`.
#[derive(Clone)]
pub struct Secret {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl Secret {
    pub fn new(bytes: &[u8]) -> Result<Self, WeakSecret> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret { len: bytes.len() });
        }
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
        })
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// The secret is too short to sign with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeakSecret {
    pub len: usize,
}

impl fmt::Display for WeakSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the JWT secret has {} bytes; at least {MIN_SECRET_BYTES} are required",
            self.len
        )
    }
}

impl std::error::Error for WeakSecret {}

/// What a user may do beyond their own resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Customer,
    Staff,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Staff => "staff",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "customer" => Some(Self::Customer),
            "staff" => Some(Self::Staff),
            _ => None,
        }
    }
}

/// The claims of an access token. Unknown claims are ignored; missing ones make the token invalid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: Uuid,
    pub role: Role,
    /// Issued at, Unix seconds.
    pub iat: i64,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

impl Claims {
    /// Claims for `user` valid from `now` for `ttl_seconds`.
    pub fn new(user: Uuid, role: Role, now: i64, ttl_seconds: i64) -> Self {
        Self {
            sub: user,
            role,
            iat: now,
            exp: now.saturating_add(ttl_seconds),
        }
    }
}

/// Why a token was refused. Every variant is a 401 for the client; the variant is for
/// logs, tests and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON with the claims we need.
    Malformed,
    /// The header names an algorithm other than HS256 (including `none`).
    Algorithm,
    /// The signature does not match: another key, or the token was altered.
    Signature,
    /// `exp` is past (beyond the leeway).
    Expired,
    /// `iat` is in the future (beyond the leeway).
    NotYetValid,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Malformed => "the access token is malformed",
            Self::Algorithm => "the access token is not signed with HS256",
            Self::Signature => "the access token's signature is invalid",
            Self::Expired => "the access token has expired",
            Self::NotYetValid => "the access token is not valid yet",
        })
    }
}

impl std::error::Error for TokenError {}

/// Signs `claims` into a compact HS256 token.
pub fn issue(secret: &Secret, claims: &Claims) -> String {
    // Encoding can only fail for keys of another family or claims that do not serialize;
    // neither is possible with an HMAC secret and these claims.
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &secret.encoding)
        .expect("HS256 signing of plain claims cannot fail")
}

/// Checks `token`'s algorithm, signature and times against `now` (Unix seconds).
pub fn verify(secret: &Secret, token: &str, now: i64) -> Result<Claims, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    // Times are checked below against the caller's clock; the library would read its own.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Claims>(token, &secret.decoding, &validation)
        .map_err(|error| match error.kind() {
            ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => TokenError::Algorithm,
            ErrorKind::InvalidSignature => TokenError::Signature,
            _ => TokenError::Malformed,
        })?
        .claims;
    if now > claims.exp.saturating_add(LEEWAY_SECONDS) {
        return Err(TokenError::Expired);
    }
    if claims.iat > now.saturating_add(LEEWAY_SECONDS) {
        return Err(TokenError::NotYetValid);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000;

    fn secret() -> Secret {
        Secret::new(KEY).unwrap()
    }

    fn claims() -> Claims {
        Claims::new(Uuid::from_u128(7), Role::Customer, NOW, 3600)
    }

    fn b64(bytes: &[u8]) -> String {
        // base64url without padding, enough for the hand-made tokens below.
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk
                .iter()
                .enumerate()
                .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
            for i in 0..=chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            }
        }
        out
    }

    fn payload(claims: &Claims) -> String {
        b64(&claims_json(claims))
    }

    fn claims_json(claims: &Claims) -> Vec<u8> {
        format!(
            r#"{{"sub":"{}","role":"{}","iat":{},"exp":{}}}"#,
            claims.sub,
            claims.role.as_str(),
            claims.iat,
            claims.exp
        )
        .into_bytes()
    }

    #[test]
    fn a_fresh_token_verifies_to_its_claims() {
        let token = issue(&secret(), &claims());
        assert_eq!(verify(&secret(), &token, NOW), Ok(claims()));
        assert_eq!(verify(&secret(), &token, NOW + 3600), Ok(claims()));
    }

    #[test]
    fn the_role_round_trips() {
        let staff = Claims::new(Uuid::from_u128(1), Role::Staff, NOW, 60);
        let token = issue(&secret(), &staff);
        assert_eq!(verify(&secret(), &token, NOW).unwrap().role, Role::Staff);
    }

    #[test]
    fn an_expired_token_is_refused_after_the_leeway() {
        let token = issue(&secret(), &claims());
        let exp = claims().exp;
        assert!(verify(&secret(), &token, exp + LEEWAY_SECONDS).is_ok());
        assert_eq!(
            verify(&secret(), &token, exp + LEEWAY_SECONDS + 1),
            Err(TokenError::Expired)
        );
    }

    #[test]
    fn a_token_issued_in_the_future_is_not_valid_yet() {
        let token = issue(&secret(), &claims());
        assert!(verify(&secret(), &token, NOW - LEEWAY_SECONDS).is_ok());
        assert_eq!(
            verify(&secret(), &token, NOW - LEEWAY_SECONDS - 1),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = Secret::new(b"another-secret-of-at-least-32-bytes!").unwrap();
        let token = issue(&other, &claims());
        assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Signature));
    }

    #[test]
    fn alg_none_is_refused() {
        let header = b64(br#"{"alg":"none","typ":"JWT"}"#);
        for signature in ["", "AAAA"] {
            let token = format!("{header}.{}.{signature}", payload(&claims()));
            assert!(verify(&secret(), &token, NOW).is_err(), "{token}");
        }
    }

    #[test]
    fn hs512_with_the_right_key_is_refused() {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(),
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Algorithm));
    }

    #[test]
    fn rs256_header_with_an_hmac_signature_is_refused() {
        // The classic confusion attack: claim RS256, sign with the shared secret as if it were HMAC.
        let header = b64(br#"{"alg":"RS256","typ":"JWT"}"#);
        let signing_input = format!("{header}.{}", payload(&claims()));
        let signature = jsonwebtoken::crypto::sign(
            signing_input.as_bytes(),
            &secret().encoding,
            Algorithm::HS256,
        )
        .unwrap();
        let token = format!("{signing_input}.{signature}");
        assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Algorithm));
    }

    #[test]
    fn a_tampered_payload_is_refused() {
        let token = issue(&secret(), &claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let staff = Claims {
            role: Role::Staff,
            ..claims()
        };
        let forged = payload(&staff);
        parts[1] = &forged;
        assert_eq!(
            verify(&secret(), &parts.join("."), NOW),
            Err(TokenError::Signature)
        );
    }

    #[test]
    fn truncated_tokens_are_refused() {
        let token = issue(&secret(), &claims());
        for cut in [1, 10, token.len() / 2, token.len() - 1] {
            assert!(
                verify(&secret(), &token[..cut], NOW).is_err(),
                "cut at {cut}"
            );
        }
        let without_signature = token.rsplit_once('.').unwrap().0;
        assert!(verify(&secret(), without_signature, NOW).is_err());
    }

    #[test]
    fn garbage_is_malformed() {
        let long = "a".repeat(MAX_TOKEN_BYTES + 1);
        for token in ["", "garbage", "a.b.c", "...", "Bearer x", long.as_str()] {
            assert_eq!(
                verify(&secret(), token, NOW),
                Err(TokenError::Malformed),
                "{token}"
            );
        }
    }

    #[test]
    fn a_signed_token_without_required_claims_is_malformed() {
        #[derive(Serialize)]
        struct NoRole {
            sub: Uuid,
            iat: i64,
            exp: i64,
        }
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &NoRole {
                sub: Uuid::from_u128(7),
                iat: NOW,
                exp: NOW + 60,
            },
            &EncodingKey::from_secret(KEY),
        )
        .unwrap();
        assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn secrets_shorter_than_32_bytes_are_refused() {
        assert_eq!(
            Secret::new(&[b'x'; 31]).unwrap_err(),
            WeakSecret { len: 31 }
        );
        assert!(Secret::new(&[b'x'; 32]).is_ok());
        assert!(Secret::new(b"").is_err());
    }

    #[test]
    fn the_secret_is_not_printed() {
        assert_eq!(format!("{:?}", secret()), "Secret(..)");
    }
}
