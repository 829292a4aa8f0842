//! Access tokens: compact JWS with HS256 (RFC 7515/7519) carrying `sub`, `role`, `iat`
//! and `exp`. Verification accepts HS256 only, whatever the token's header claims, so a
//! token saying `none`, HS512 or RS256 is refused before its claims are read; the MAC is
//! compared in constant time. HMAC-SHA256 and base64url are all a JWS of one algorithm needs.
//! Time is a parameter (`now`, Unix seconds), so the rules are tested without a clock.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The one header this module writes: `{"alg":"HS256","typ":"JWT"}`, base64url-encoded.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// HS256 keys shorter than the hash output are weak (RFC 7518 §3.2 asks for at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// Clock skew tolerated between the issuer and a verifier, in seconds.
pub const LEEWAY_SECONDS: i64 = 30;

/// A token longer than this is refused before any decoding: ours are about 250 bytes.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// The signing key, at least [`MIN_SECRET_BYTES`] long. Its bytes never appear in `Debug`.
#[derive(Clone)]
pub struct Secret {
    /// Keyed once; each use clones the state instead of hashing the key again.
    mac: HmacSha256,
}

impl Secret {
    pub fn new(bytes: &[u8]) -> Result<Self, WeakSecret> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(WeakSecret { len: bytes.len() });
        }
        let mac = HmacSha256::new_from_slice(bytes).expect("HMAC takes a key of any length");
        Ok(Self { mac })
    }

    /// The MAC of a JWS signing input (`header.payload`).
    fn mac(&self, signing_input: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(signing_input.as_bytes());
        mac
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
    let payload =
        serde_json::to_vec(claims).expect("claims of plain fields always serialize to JSON");
    let signing_input = format!("{HEADER}.{}", URL_SAFE_NO_PAD.encode(payload));
    let signature = URL_SAFE_NO_PAD.encode(secret.mac(&signing_input).finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

/// The JOSE header fields verification reads; the others (`typ`, `kid`, ...) are ignored.
#[derive(Deserialize)]
struct Header {
    alg: String,
    /// Extensions the token says must be understood: none are, so any is refused.
    crit: Option<serde::de::IgnoredAny>,
}

/// Checks `token`'s algorithm, signature and times against `now` (Unix seconds).
pub fn verify(secret: &Secret, token: &str, now: i64) -> Result<Claims, TokenError> {
    if token.is_empty() || token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TokenError::Malformed)
    };
    let header: Header =
        serde_json::from_slice(&decode(header)?).map_err(|_| TokenError::Malformed)?;
    if header.alg != "HS256" {
        return Err(TokenError::Algorithm);
    }
    if header.crit.is_some() {
        return Err(TokenError::Malformed);
    }
    let signing_input = &token[..token.len() - signature.len() - 1];
    secret
        .mac(signing_input)
        .verify_slice(&decode(signature)?)
        .map_err(|_| TokenError::Signature)?;
    let claims: Claims =
        serde_json::from_slice(&decode(payload)?).map_err(|_| TokenError::Malformed)?;
    check_times(&claims, now)?;
    Ok(claims)
}

/// Whether `claims` are valid at `now`, within the leeway.
fn check_times(claims: &Claims, now: i64) -> Result<(), TokenError> {
    if now > claims.exp.saturating_add(LEEWAY_SECONDS) {
        return Err(TokenError::Expired);
    }
    if claims.iat > now.saturating_add(LEEWAY_SECONDS) {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}

/// Tokens already verified with one secret, so that an instance serving many requests (a
/// host that reuses instances) checks each token's signature once. A token is looked up by
/// its whole text, so only that exact token finds its claims; its times are checked again at
/// every use, so it stops working when it expires, as [`verify`] would say. At most
/// [`VerifiedTokens::CAPACITY`] are kept: when full, the expired ones go, then all of them.
#[derive(Debug, Default)]
pub struct VerifiedTokens {
    tokens: std::collections::HashMap<String, Claims>,
}

impl VerifiedTokens {
    pub const CAPACITY: usize = 256;

    /// [`verify`] with the key `secret` gives, unless `token` was verified here before (then
    /// the key is not asked for). The outer error is `secret`'s own.
    pub fn verify<E>(
        &mut self,
        secret: impl FnOnce() -> Result<Secret, E>,
        token: &str,
        now: i64,
    ) -> Result<Result<Claims, TokenError>, E> {
        if let Some(claims) = self.tokens.get(token) {
            return Ok(check_times(claims, now).map(|()| claims.clone()));
        }
        Ok(self.verify_new(&secret()?, token, now))
    }

    fn verify_new(&mut self, secret: &Secret, token: &str, now: i64) -> Result<Claims, TokenError> {
        let claims = verify(secret, token, now)?;
        if self.tokens.len() >= Self::CAPACITY {
            self.tokens
                .retain(|_, claims| check_times(claims, now).is_ok());
            if self.tokens.len() >= Self::CAPACITY {
                self.tokens.clear();
            }
        }
        self.tokens.insert(token.to_owned(), claims.clone());
        Ok(claims)
    }

    /// How many tokens are remembered.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembered_tokens_skip_the_signature_but_not_the_clock() {
        let mut memo = VerifiedTokens::default();
        let token = issue(&secret(), &claims());
        let mut keyed = 0;
        let mut key = || {
            keyed += 1;
            key_ok()
        };
        assert_eq!(memo.verify(&mut key, &token, NOW), Ok(Ok(claims())));
        assert_eq!(memo.verify(&mut key, &token, NOW + 60), Ok(Ok(claims())));
        assert_eq!(keyed, 1, "the second use needed no key, so no MAC");
        let late = NOW + 3600 + LEEWAY_SECONDS + 1;
        assert_eq!(
            memo.verify(key_ok, &token, late),
            Ok(Err(TokenError::Expired))
        );
        assert_eq!(
            memo.verify(|| Err("no key"), &token, late),
            Ok(Err(TokenError::Expired))
        );
        let fresh = issue(
            &secret(),
            &Claims::new(Uuid::from_u128(8), Role::Staff, NOW, 60),
        );
        assert_eq!(memo.verify(|| Err("no key"), &fresh, NOW), Err("no key"));
    }

    #[test]
    fn only_the_exact_token_is_remembered_and_failures_never_are() {
        let mut memo = VerifiedTokens::default();
        let token = issue(&secret(), &claims());
        memo.verify(key_ok, &token, NOW).unwrap().unwrap();
        let last = token.chars().last().unwrap();
        let forged = format!(
            "{}{}",
            &token[..token.len() - 1],
            if last == 'A' { 'B' } else { 'A' }
        );
        assert_eq!(
            memo.verify(key_ok, &forged, NOW),
            Ok(Err(TokenError::Signature))
        );
        assert_eq!(memo.len(), 1);
        let other = Secret::new(b"another key, also 32 bytes long!").unwrap();
        let foreign = issue(&other, &claims());
        assert_eq!(
            memo.verify(key_ok, &foreign, NOW),
            Ok(Err(TokenError::Signature))
        );
        assert_eq!(memo.len(), 1);
    }

    #[test]
    fn a_full_memo_drops_expired_tokens_first_then_starts_over() {
        let mut memo = VerifiedTokens::default();
        for i in 0..VerifiedTokens::CAPACITY {
            let ttl = if i == 0 { 10 } else { 3600 };
            let c = Claims::new(Uuid::from_u128(i as u128), Role::Customer, NOW, ttl);
            memo.verify(key_ok, &issue(&secret(), &c), NOW)
                .unwrap()
                .unwrap();
        }
        assert_eq!(memo.len(), VerifiedTokens::CAPACITY);
        let later = NOW + 10 + LEEWAY_SECONDS + 1;
        let next = issue(
            &secret(),
            &Claims::new(Uuid::from_u128(9999), Role::Staff, later, 60),
        );
        memo.verify(key_ok, &next, later).unwrap().unwrap();
        assert_eq!(
            memo.len(),
            VerifiedTokens::CAPACITY,
            "the expired one made room"
        );
        let last = issue(
            &secret(),
            &Claims::new(Uuid::from_u128(10_000), Role::Staff, later, 60),
        );
        memo.verify(key_ok, &last, later).unwrap().unwrap();
        assert_eq!(memo.len(), 1, "nothing had expired: the memo started over");
    }

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
    const NOW: i64 = 1_800_000_000;

    fn secret() -> Secret {
        Secret::new(KEY).unwrap()
    }

    fn key_ok() -> Result<Secret, &'static str> {
        Ok(secret())
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

    /// A token with `header` over `payload`, signed with KEY by the MAC `M`.
    fn signed_with<M: Mac + hmac::digest::KeyInit>(header: &[u8], payload: &[u8]) -> String {
        let signing_input = format!("{}.{}", b64(header), b64(payload));
        let mut mac = <M as hmac::digest::KeyInit>::new_from_slice(KEY).unwrap();
        mac.update(signing_input.as_bytes());
        format!("{signing_input}.{}", b64(&mac.finalize().into_bytes()))
    }

    fn signed(header: &[u8], payload: &[u8]) -> String {
        signed_with::<HmacSha256>(header, payload)
    }

    #[test]
    fn hs512_with_the_right_key_is_refused() {
        let token = signed_with::<Hmac<sha2::Sha512>>(
            br#"{"typ":"JWT","alg":"HS512"}"#,
            &claims_json(&claims()),
        );
        assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Algorithm));
    }

    #[test]
    fn rs256_header_with_an_hmac_signature_is_refused() {
        // The classic confusion attack: claim RS256, sign with the shared secret as if it were HMAC.
        let token = signed(br#"{"alg":"RS256","typ":"JWT"}"#, &claims_json(&claims()));
        assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Algorithm));
    }

    #[test]
    fn alg_none_signed_or_not_and_other_spellings_are_refused() {
        for header in [
            &br#"{"alg":"none","typ":"JWT"}"#[..],
            br#"{"alg":"None"}"#,
            br#"{"alg":"hs256"}"#,
            br#"{"alg":"HS256 "}"#,
        ] {
            let token = signed(header, &claims_json(&claims()));
            assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Algorithm));
        }
        for header in [&br#"{"typ":"JWT"}"#[..], br#"{"alg":256}"#, b"not json"] {
            let token = signed(header, &claims_json(&claims()));
            assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Malformed));
        }
    }

    #[test]
    fn a_critical_header_extension_is_refused() {
        let token = signed(
            br#"{"alg":"HS256","crit":["exp"],"exp":1}"#,
            &claims_json(&claims()),
        );
        assert_eq!(verify(&secret(), &token, NOW), Err(TokenError::Malformed));
    }

    #[test]
    fn tokens_with_any_header_field_order_verify() {
        // What the previous signer wrote: `typ` first, then `alg`.
        let token = signed(br#"{"typ":"JWT","alg":"HS256"}"#, &claims_json(&claims()));
        assert_eq!(verify(&secret(), &token, NOW), Ok(claims()));
        assert!(issue(&secret(), &claims()).starts_with(&b64(br#"{"alg":"HS256","typ":"JWT"}"#)));
    }

    #[test]
    fn the_mac_matches_rfc_7515_appendix_a1() {
        let key = URL_SAFE_NO_PAD
            .decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow")
            .unwrap();
        let input = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
        let mac = Secret::new(&key)
            .unwrap()
            .mac(input)
            .finalize()
            .into_bytes();
        assert_eq!(
            URL_SAFE_NO_PAD.encode(mac),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn a_padded_or_altered_signature_is_refused() {
        let token = issue(&secret(), &claims());
        assert_eq!(
            verify(&secret(), &format!("{token}="), NOW),
            Err(TokenError::Malformed)
        );
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
        bytes[31] ^= 1;
        let altered = format!("{input}.{}", URL_SAFE_NO_PAD.encode(bytes));
        assert_eq!(verify(&secret(), &altered, NOW), Err(TokenError::Signature));
        let short = format!("{input}.{}", &signature[..signature.len() - 2]);
        assert!(verify(&secret(), &short, NOW).is_err());
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
        let no_role = serde_json::to_vec(&NoRole {
            sub: Uuid::from_u128(7),
            iat: NOW,
            exp: NOW + 60,
        })
        .unwrap();
        let token = signed(br#"{"alg":"HS256","typ":"JWT"}"#, &no_role);
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
