//! Passwords: the length rule and bcrypt. bcrypt reads at most 72 bytes, so a password
//! longer than that is not cut: bcrypt is given its SHA-256 instead (every byte counts), and
//! a password of at most 72 bytes is given as it is, as it always was. The rule a client
//! sees is in characters (the API document's `minLength`/`maxLength`), whatever the script.
//! Login checks an unknown email against a dummy hash of the same cost, so both failures
//! take the same time.

use std::borrow::Cow;
use std::fmt;

use sha2::{Digest, Sha256};

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted, in characters.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// The most bytes bcrypt reads; a longer password is given to it as its SHA-256.
pub const BCRYPT_MAX_BYTES: usize = 72;

/// A password that satisfies the length rule. Never printed.
pub struct Password(String);

impl Password {
    pub fn parse(raw: &str) -> Result<Self, PasswordError> {
        match raw.chars().count() {
            n if n < MIN_PASSWORD_CHARS => Err(PasswordError::TooShort),
            n if n > MAX_PASSWORD_CHARS => Err(PasswordError::TooLong),
            _ => Ok(Self(raw.to_owned())),
        }
    }

    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// What bcrypt keys on for `password`: the password itself up to 72 bytes; beyond that a
/// NUL, `sha256:` and the hex digest, 72 bytes too (no password a person types starts with
/// a NUL, so the two never meet).
fn bcrypt_key(password: &[u8]) -> Cow<'_, [u8]> {
    if password.len() <= BCRYPT_MAX_BYTES {
        return Cow::Borrowed(password);
    }
    let digest = Sha256::digest(password);
    let mut key = b"\0sha256:".to_vec();
    key.extend(digest.iter().flat_map(|b| format!("{b:02x}").into_bytes()));
    Cow::Owned(key)
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(..)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordError {
    TooShort,
    TooLong,
}

impl fmt::Display for PasswordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort => write!(f, "must be at least {MIN_PASSWORD_CHARS} characters long"),
            Self::TooLong => write!(f, "must be at most {MAX_PASSWORD_CHARS} characters long"),
        }
    }
}

impl std::error::Error for PasswordError {}

/// A bcrypt work factor: 2^cost rounds. Below 10 is refused (docs/api.md, Authentication).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost(u32);

impl Cost {
    pub const MIN: u32 = 10;
    pub const MAX: u32 = 31;
    /// Roughly a quarter of a second per hash natively on this project's machines.
    pub const DEFAULT: Cost = Cost(12);

    pub fn new(cost: u32) -> Result<Self, CostError> {
        if (Self::MIN..=Self::MAX).contains(&cost) {
            Ok(Self(cost))
        } else {
            Err(CostError(cost.to_string()))
        }
    }

    pub fn parse(raw: &str) -> Result<Self, CostError> {
        raw.trim()
            .parse()
            .map_err(|_| CostError(raw.to_owned()))
            .and_then(Self::new)
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// A bcrypt cost outside 10..=31.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CostError(pub String);

impl fmt::Display for CostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the bcrypt cost `{}` is not a whole number between {} and {}",
            self.0,
            Cost::MIN,
            Cost::MAX
        )
    }
}

impl std::error::Error for CostError {}

/// A bcrypt hash of `password` with a fresh random salt, in the `$2b$` format.
///
/// bcrypt keys on the password plus a NUL terminator, at most 72 bytes. The crate's
/// `non_truncating_hash` counts the terminator and so refuses a 72-byte password; every
/// byte of such a password is used (only the terminator falls off), so the plain `hash`
/// is exact for what [`Password`] admits.
pub fn hash(password: &Password, cost: Cost) -> Result<String, HashError> {
    bcrypt::hash(bcrypt_key(password.as_bytes()), cost.get())
        .map_err(|error| HashError(error.to_string()))
}

/// Hashing failed: the system gave no randomness for the salt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashError(pub String);

impl fmt::Display for HashError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "hashing the password failed: {}", self.0)
    }
}

impl std::error::Error for HashError {}

/// Whether `candidate` matches `stored`, a hash from [`hash`]. With no stored hash (an
/// unknown email) the candidate is checked against a dummy hash of `cost`, which never
/// matches, so the caller cannot tell the two failures apart by the time they take.
/// A candidate longer than bcrypt reads never matches, but costs the same work.
pub fn verify(candidate: &str, stored: Option<&str>, cost: Cost) -> bool {
    let key = bcrypt_key(candidate.as_bytes());
    match stored {
        Some(stored) => bcrypt::verify(&key, stored).unwrap_or(false),
        None => {
            let _ = bcrypt::verify(&key, &dummy_hash(cost));
            false
        }
    }
}

/// A well-formed `$2b$` hash of `cost` whose salt and digest are all zero bits: checking
/// a password against it costs a full bcrypt run and finds no match.
fn dummy_hash(cost: Cost) -> String {
    format!("$2b${:02}${}", cost.get(), ".".repeat(22 + 31))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The floor: the tests hash for real, so they use the cheapest cost allowed.
    fn cost() -> Cost {
        Cost::new(Cost::MIN).unwrap()
    }

    #[test]
    fn password_length_is_8_to_256_characters_in_any_script() {
        assert_eq!(
            Password::parse("1234567").unwrap_err(),
            PasswordError::TooShort
        );
        assert!(Password::parse("12345678").is_ok());
        assert_eq!(
            Password::parse("яяяя").unwrap_err(),
            PasswordError::TooShort
        );
        assert!(Password::parse(&"я".repeat(256)).is_ok());
        assert_eq!(
            Password::parse(&"x".repeat(257)).unwrap_err(),
            PasswordError::TooLong
        );
    }

    #[test]
    fn the_password_is_not_printed() {
        let password = Password::parse("hunter2hunter2").unwrap();
        assert_eq!(format!("{password:?}"), "Password(..)");
    }

    #[test]
    fn cost_has_a_floor_of_10() {
        assert!(Cost::parse("9").is_err());
        assert_eq!(Cost::parse("10").unwrap().get(), 10);
        assert_eq!(Cost::parse(" 12 ").unwrap().get(), 12);
        assert!(Cost::parse("32").is_err());
        assert!(Cost::parse("twelve").is_err());
        assert!(Cost::parse("").is_err());
    }

    #[test]
    fn a_hash_verifies_its_password_only() {
        let password = Password::parse("correct horse").unwrap();
        let stored = hash(&password, cost()).unwrap();
        assert!(stored.starts_with("$2b$10$"), "{stored}");
        assert!(verify("correct horse", Some(&stored), cost()));
        assert!(!verify("correct horsf", Some(&stored), cost()));
        assert!(!verify("", Some(&stored), cost()));
    }

    #[test]
    fn two_hashes_of_one_password_differ_by_salt() {
        let password = Password::parse("correct horse").unwrap();
        assert_ne!(
            hash(&password, cost()).unwrap(),
            hash(&password, cost()).unwrap()
        );
    }

    #[test]
    fn every_byte_of_a_long_password_counts() {
        let password = Password::parse(&"x".repeat(72)).unwrap();
        let stored = hash(&password, cost()).unwrap();
        assert!(verify(&"x".repeat(72), Some(&stored), cost()));
        assert!(!verify(&"x".repeat(73), Some(&stored), cost()));
        // The 72nd byte counts: a 71-byte prefix is another password.
        assert!(!verify(&"x".repeat(71), Some(&stored), cost()));
        // Past 72 bytes (here 74 Cyrillic letters, 148 bytes) nothing is cut off.
        let long = Password::parse(&"я".repeat(74)).unwrap();
        let stored = hash(&long, cost()).unwrap();
        assert!(verify(&"я".repeat(74), Some(&stored), cost()));
        assert!(!verify(
            &format!("{}ю", "я".repeat(73)),
            Some(&stored),
            cost()
        ));
        assert!(!verify(&"я".repeat(36), Some(&stored), cost()));
    }

    #[test]
    fn no_stored_hash_never_matches_but_does_the_work() {
        // The dummy must be a hash bcrypt accepts, or the unknown-email path would return
        // at once and be told apart by its timing.
        assert!(matches!(
            bcrypt::verify("anything", &dummy_hash(cost())),
            Ok(false)
        ));
        assert!(!verify("anything", None, cost()));
    }

    #[test]
    fn a_corrupt_stored_hash_does_not_match() {
        assert!(!verify("correct horse", Some("not a hash"), cost()));
    }
}
