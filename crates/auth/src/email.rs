//! Email addresses as account names: trimmed and lower-cased so that one mailbox is one
//! account, wherever an address enters (registration, login, the staff command).

use std::fmt;

/// An address that passed the plain check (one `@`, a dotted domain, no spaces), stored
/// normalised. The address is proven by use, not by a regular expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_BYTES: usize = 254;
    pub const MAX_LOCAL_BYTES: usize = 64;

    pub fn parse(s: &str) -> Result<Self, InvalidEmail> {
        let email = normalise(s);
        let valid = email.len() <= Self::MAX_BYTES
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && match email.split_once('@') {
                Some((local, domain)) => {
                    !local.is_empty()
                        && local.len() <= Self::MAX_LOCAL_BYTES
                        && !domain.contains('@')
                        && domain.contains('.')
                        && domain.split('.').all(|label| !label.is_empty())
                }
                None => false,
            };
        if valid {
            Ok(Self(email))
        } else {
            Err(InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How an address is stored and looked up. Login uses it without validating, so a
/// malformed address simply matches no account.
pub fn normalise(s: &str) -> String {
    s.trim().to_lowercase()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidEmail;

impl fmt::Display for InvalidEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be an email address like name@example.com")
    }
}

impl std::error::Error for InvalidEmail {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lower_cased() {
        assert_eq!(
            Email::parse("  Test@Example.COM ").unwrap().as_str(),
            "test@example.com"
        );
        assert_eq!(
            Email::parse("Иван@Пример.рф").unwrap().as_str(),
            "иван@пример.рф"
        );
    }

    #[test]
    fn malformed_emails_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        for email in [
            "",
            "test",
            "test@",
            "@example.com",
            "test@example",
            "test@@example.com",
            "te st@example.com",
            "test@example..com",
            long.as_str(),
        ] {
            assert!(Email::parse(email).is_err(), "{email}");
        }
    }
}
