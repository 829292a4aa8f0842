//! `allowed_outbound_hosts`: parsing Spin's `scheme://host:port` patterns and checking a
//! destination against them. Every outbound capability (HTTP, chaining, Postgres, Redis) asks
//! here before it connects.

use anyhow::{bail, Context, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    Exact(String),
    /// `*.example.com`: any subdomain, not the bare domain.
    Suffix(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AllowedHost {
    scheme: Option<String>,
    host: HostPattern,
    port: PortPattern,
}

/// The parsed `allowed_outbound_hosts` of one component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

pub fn default_port(scheme: &str) -> Option<u16> {
    Some(match scheme {
        "http" => 80,
        "https" => 443,
        "postgres" => 5432,
        "mysql" => 3306,
        "redis" => 6379,
        "mqtt" => 1883,
        _ => return None,
    })
}

impl AllowedHosts {
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self> {
        let entries = entries
            .iter()
            .map(|e| {
                parse_entry(e.as_ref()).with_context(|| {
                    format!("invalid allowed_outbound_hosts entry `{}`", e.as_ref())
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self { entries })
    }

    pub fn allows(&self, scheme: &str, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        self.entries.iter().any(|e| {
            e.scheme.as_deref().is_none_or(|s| s == scheme)
                && match &e.host {
                    HostPattern::Any => true,
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Suffix(suffix) => {
                        host.len() > suffix.len() + 1
                            && host.ends_with(suffix.as_str())
                            && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
                    }
                }
                && match e.port {
                    PortPattern::Any => true,
                    PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
                }
        })
    }
}

fn parse_entry(entry: &str) -> Result<AllowedHost> {
    let Some((scheme, rest)) = entry.split_once("://") else {
        bail!("expected scheme://host[:port]");
    };
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') {
        bail!("a path is not allowed");
    }
    let scheme = match scheme {
        "*" => None,
        s if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') => {
            Some(s.to_ascii_lowercase())
        }
        _ => bail!("invalid scheme"),
    };
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || rest.starts_with('[') => (h, Some(p)),
        _ => (rest, None),
    };
    let host = match host {
        "*" => HostPattern::Any,
        h if h.starts_with("*.") => HostPattern::Suffix(h[2..].to_ascii_lowercase()),
        "" => bail!("missing host"),
        h if h.contains('*') => bail!("`*` is only allowed as the whole host or as `*.` prefix"),
        h => HostPattern::Exact(h.to_ascii_lowercase()),
    };
    let port = match port {
        Some("*") => PortPattern::Any,
        Some(p) => match p.split_once("..") {
            Some((lo, hi)) => PortPattern::Range(lo.parse()?, hi.parse()?),
            None => {
                let p: u16 = p.parse().context("invalid port")?;
                PortPattern::Range(p, p)
            }
        },
        None => match scheme.as_deref().and_then(default_port) {
            Some(p) => PortPattern::Range(p, p),
            None => bail!("a port is required for this scheme"),
        },
    };
    Ok(AllowedHost { scheme, host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_hosts_use_the_scheme_default_port() {
        let a = AllowedHosts::parse(&[
            "http://car-service.spin.internal",
            "postgres://127.0.0.1:5432",
        ])
        .unwrap();
        assert!(a.allows("http", "car-service.spin.internal", 80));
        assert!(!a.allows("https", "car-service.spin.internal", 443));
        assert!(!a.allows("http", "car-service.spin.internal", 8080));
        assert!(a.allows("postgres", "127.0.0.1", 5432));
        assert!(!a.allows("postgres", "10.0.0.1", 5432));
        assert!(!a.allows("http", "example.com", 80));
    }

    #[test]
    fn wildcards_for_scheme_host_subdomain_and_port() {
        let a = AllowedHosts::parse(&[
            "http://*.spin.internal",
            "*://db.local:*",
            "https://*:8000..8010",
        ])
        .unwrap();
        assert!(a.allows("http", "anything.spin.internal", 80));
        assert!(!a.allows("http", "spin.internal", 80));
        assert!(!a.allows("http", "evilspin.internal", 80));
        assert!(a.allows("redis", "db.local", 1));
        assert!(a.allows("https", "x.y", 8005));
        assert!(!a.allows("https", "x.y", 8011));
    }

    #[test]
    fn malformed_entries_are_rejected() {
        for bad in [
            "car-service",
            "http://",
            "http://a/b",
            "http://a*b",
            "foo://host",
        ] {
            assert!(AllowedHosts::parse(&[bad]).is_err(), "{bad}");
        }
        assert!(!AllowedHosts::default().allows("http", "x", 80));
    }
}
