//! PostgreSQL connection strings as libpq reads them, TLS included: `sslmode` (`disable`,
//! `prefer`, `require`, `verify-ca`, `verify-full`) and `sslrootcert` (a PEM file or `system`),
//! which tokio-postgres alone does not understand, and every address a string names.
//! One parse serves the host's pool, the migrations, the relay and the outbound allow-list.

// A library: it returns errors and leaves logging to its caller's `tracing`.
#![warn(clippy::print_stdout, clippy::print_stderr)]

mod tls;

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

use tokio_postgres::config::Host;

pub use tls::{MakeRustlsConnect, RustlsConnect, RustlsStream};

/// libpq's `sslmode`, less `allow` (plaintext first, then TLS), which nothing here needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SslMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, no certificate check (libpq's default).
    Prefer,
    /// TLS or no connection; the certificate is not checked (unless `sslrootcert` names a
    /// file: then the chain is, as libpq does).
    Require,
    /// TLS with the server's chain checked against the trusted roots; any host name.
    VerifyCa,
    /// TLS with the chain checked and the certificate naming the host connected to.
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// Where the trusted roots for `verify-ca` and `verify-full` come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootCert {
    /// The system's store (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else /etc/ssl/certs and the like).
    System,
    /// `sslrootcert=<path>`: one or more PEM certificates.
    File(PathBuf),
}

/// A connection string that could not be used. The message never holds the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

/// One address a connection string may connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Tcp { host: String, port: u16 },
    Unix { path: PathBuf, port: u16 },
}

/// A parsed connection string: tokio-postgres's settings plus the TLS ones.
#[derive(Debug, Clone)]
pub struct ConnectionString {
    config: tokio_postgres::Config,
    ssl_mode: SslMode,
    root_cert: Option<RootCert>,
}

impl FromStr for ConnectionString {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let (rest, tls) = split_tls_options(s)?;
        let mut config: tokio_postgres::Config = rest
            .parse()
            .map_err(|e| Error::new(format!("invalid connection string: {e}")))?;
        let root_cert = match tls.root_cert.as_deref() {
            None => None,
            Some("") => return Err(Error::new("sslrootcert is empty")),
            Some("system") => Some(RootCert::System),
            Some(path) => Some(RootCert::File(PathBuf::from(path))),
        };
        let ssl_mode = match tls.ssl_mode.as_deref() {
            // libpq: trusting the system's roots only makes sense with the name checked.
            None if root_cert == Some(RootCert::System) => SslMode::VerifyFull,
            None | Some("prefer") => SslMode::Prefer,
            Some("disable") => SslMode::Disable,
            Some("require") => SslMode::Require,
            Some("verify-ca") => SslMode::VerifyCa,
            Some("verify-full") => SslMode::VerifyFull,
            Some("allow") => {
                return Err(Error::new(
                    "sslmode=allow is not supported; use disable, prefer, require, verify-ca or verify-full",
                ))
            }
            Some(other) => return Err(Error::new(format!("invalid sslmode `{other}`"))),
        };
        if root_cert == Some(RootCert::System) && ssl_mode != SslMode::VerifyFull {
            return Err(Error::new(format!(
                "weak sslmode `{}` may not be used with sslrootcert=system (use verify-full)",
                ssl_mode.as_str()
            )));
        }
        let hosts = config.get_hosts().len();
        let hostaddrs = config.get_hostaddrs().to_vec();
        if hosts == 0 && !hostaddrs.is_empty() {
            // tokio-postgres takes the name TLS checks from `host` only; libpq refuses
            // verify-full without a host name, and checks nothing else by name.
            if ssl_mode == SslMode::VerifyFull {
                return Err(Error::new(
                    "sslmode=verify-full needs a host name to check the certificate against: \
                     give host= beside hostaddr=",
                ));
            }
            for addr in &hostaddrs {
                config.host(addr.to_string());
            }
        }
        let unix_only = hostaddrs.is_empty()
            && !config.get_hosts().is_empty()
            && config
                .get_hosts()
                .iter()
                .all(|h| !matches!(h, Host::Tcp(_)));
        // libpq ignores sslmode on Unix sockets: the server never offers TLS there.
        config.ssl_mode(match ssl_mode {
            _ if unix_only => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            _ => tokio_postgres::config::SslMode::Require,
        });
        Ok(Self {
            config,
            ssl_mode,
            root_cert,
        })
    }
}

impl ConnectionString {
    /// tokio-postgres's settings, TLS mode included; connect with [`Self::tls`].
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    pub fn ssl_mode(&self) -> SslMode {
        self.ssl_mode
    }

    pub fn root_cert(&self) -> Option<&RootCert> {
        self.root_cert.as_ref()
    }

    /// The TLS connector for this string's `sslmode` and roots. Reads `sslrootcert` now, so
    /// a missing or unreadable file is an error here, in every mode that may use TLS.
    pub fn tls(&self) -> Result<MakeRustlsConnect, Error> {
        tls::connector(self.ssl_mode, self.root_cert.as_ref())
    }

    /// Connects as tokio-postgres does, over TLS as the string asks.
    pub async fn connect(
        &self,
    ) -> Result<
        (
            tokio_postgres::Client,
            tokio_postgres::Connection<
                tokio_postgres::Socket,
                RustlsStream<tokio_postgres::Socket>,
            >,
        ),
        ConnectError,
    > {
        let tls = self.tls().map_err(ConnectError::Setup)?;
        self.config
            .connect(tls)
            .await
            .map_err(ConnectError::Postgres)
    }

    /// Every address the string may connect to, in the order tokio-postgres tries them,
    /// with its port: each `hostaddr` where one is given (then it is what is dialled, and the
    /// `host` beside it only names the server for TLS), else each `host` (a name, an address
    /// or a Unix socket directory). A string that names none, or whose lists do not line
    /// up, is an error (it could not connect anyway).
    pub fn destinations(&self) -> Result<Vec<Destination>, Error> {
        let hosts = self.config.get_hosts();
        let hostaddrs: &[IpAddr] = self.config.get_hostaddrs();
        let ports = self.config.get_ports();
        if !hosts.is_empty() && !hostaddrs.is_empty() && hosts.len() != hostaddrs.len() {
            return Err(Error::new(format!(
                "{} hosts but {} hostaddrs",
                hosts.len(),
                hostaddrs.len()
            )));
        }
        let count = hosts.len().max(hostaddrs.len());
        if count == 0 {
            return Err(Error::new("the connection string names no host"));
        }
        if ports.len() > 1 && ports.len() != count {
            return Err(Error::new(format!(
                "{} ports for {count} hosts",
                ports.len()
            )));
        }
        let mut out = Vec::with_capacity(count);
        for i in 0..count {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            if let Some(addr) = hostaddrs.get(i) {
                out.push(Destination::Tcp {
                    host: addr.to_string(),
                    port,
                });
                continue;
            }
            match hosts.get(i) {
                Some(Host::Tcp(host)) => out.push(Destination::Tcp {
                    host: host.clone(),
                    port,
                }),
                #[cfg(unix)]
                Some(Host::Unix(path)) => out.push(Destination::Unix {
                    path: path.clone(),
                    port,
                }),
                None => {}
            }
        }
        out.dedup();
        Ok(out)
    }
}

/// Why [`ConnectionString::connect`] failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The TLS settings could not be put to use (an unreadable `sslrootcert`, no roots).
    Setup(Error),
    Postgres(tokio_postgres::Error),
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setup(e) => e.fmt(f),
            Self::Postgres(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for ConnectError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Setup(_) => None,
            // Displayed above already: go on with what it wraps.
            Self::Postgres(e) => e.source(),
        }
    }
}

/// The TLS options taken out of a connection string (the last of each wins, as in libpq).
#[derive(Debug, Default, PartialEq, Eq)]
struct TlsOptions {
    ssl_mode: Option<String>,
    root_cert: Option<String>,
}

fn is_tls_option(key: &str) -> bool {
    key == "sslmode" || key == "sslrootcert"
}

impl TlsOptions {
    fn take(&mut self, key: &str, value: String) {
        match key {
            "sslmode" => self.ssl_mode = Some(value),
            _ => self.root_cert = Some(value),
        }
    }
}

/// Removes `sslmode` and `sslrootcert` from `s`, in either form tokio-postgres reads (URL or
/// `key=value` words), finding them exactly where its own parser would. What is left goes to
/// tokio-postgres unchanged, so it alone decides what the rest means.
fn split_tls_options(s: &str) -> Result<(String, TlsOptions), Error> {
    let mut tls = TlsOptions::default();
    let url_body = ["postgres://", "postgresql://"]
        .iter()
        .find_map(|prefix| s.strip_prefix(prefix));
    let Some(body) = url_body else {
        let mut kept = Vec::new();
        for (key, value) in key_value_words(s)? {
            if is_tls_option(key) {
                tls.take(key, value);
            } else {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{quoted}'"));
            }
        }
        return Ok((kept.join(" "), tls));
    };
    // tokio-postgres: credentials up to the first `@` anywhere, then the hosts up to `/` or
    // `?`, then the database up to `?`, then the parameters.
    let after_credentials = body.find('@').map_or(0, |at| at + 1);
    let after_hosts = after_credentials
        + body[after_credentials..]
            .find(['/', '?'])
            .unwrap_or(body.len() - after_credentials);
    let params_at = match body[after_hosts..].find('?') {
        Some(q) => after_hosts + q,
        None => return Ok((s.to_owned(), tls)),
    };
    let mut kept = Vec::new();
    let mut params = &body[params_at + 1..];
    while !params.is_empty() {
        let Some((raw_key, rest)) = params.split_once('=') else {
            // tokio-postgres refuses this; leave it for it to say so.
            kept.push(params);
            break;
        };
        let (raw_value, rest) = rest.split_once('&').unwrap_or((rest, ""));
        let key = percent_decode(raw_key)?;
        if is_tls_option(&key) {
            tls.take(&key, percent_decode(raw_value)?);
        } else {
            let end = raw_key.len() + 1 + raw_value.len();
            kept.push(&params[..end]);
        }
        params = rest;
    }
    let prefix_len = s.len() - body.len();
    let mut out = s[..prefix_len + params_at].to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    Ok((out, tls))
}

/// `%XX` decoding as tokio-postgres does it (a `%` not followed by two hex digits stays).
fn percent_decode(s: &str) -> Result<String, Error> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap() * 16 + hex(l).unwrap()) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| Error::new("invalid connection string: not UTF-8"))
}

/// The `key = value` words of libpq's other form, with tokio-postgres's quoting rules.
fn key_value_words(s: &str) -> Result<Vec<(&str, String)>, Error> {
    let invalid = |why: &str| Error::new(format!("invalid connection string: {why}"));
    let mut words = Vec::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return Ok(words);
        }
        let key_end = rest
            .find(|c: char| c.is_whitespace() || c == '=')
            .unwrap_or(rest.len());
        if key_end == 0 {
            return Err(invalid("a parameter has no name"));
        }
        let key = &rest[..key_end];
        rest = rest[key_end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| invalid(&format!("expected `=` after `{key}`")))?
            .trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, next)) = chars.next() {
                        value.push(next);
                    }
                }
                '\'' if quoted => {
                    end = Some(i + 1);
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => return Err(invalid("unterminated quoted value")),
            None => rest.len(),
        };
        if !quoted && value.is_empty() {
            return Err(invalid(&format!("`{key}` has no value")));
        }
        words.push((key, value));
        rest = &rest[end..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> ConnectionString {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn tcp(host: &str, port: u16) -> Destination {
        Destination::Tcp {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn tls_options_are_taken_out_of_urls_and_the_rest_kept_verbatim() {
        let (rest, tls) = split_tls_options(
            "postgres://u:p%40ss@h:5433/db?application_name=a%20b&sslmode=verify-full&sslrootcert=%2Fetc%2Fdetailing%2Fca.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(
            rest,
            "postgres://u:p%40ss@h:5433/db?application_name=a%20b&connect_timeout=3"
        );
        assert_eq!(tls.ssl_mode.as_deref(), Some("verify-full"));
        assert_eq!(tls.root_cert.as_deref(), Some("/etc/detailing/ca.pem"));
        let (rest, tls) = split_tls_options("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(rest, "postgresql://h/db");
        assert_eq!(tls.ssl_mode.as_deref(), Some("require"));
        // A `?` in the password is not the start of the parameters.
        let (rest, tls) =
            split_tls_options("postgres://u:a?b@h/db?sslmode=disable&sslmode=prefer").unwrap();
        assert_eq!(rest, "postgres://u:a?b@h/db");
        assert_eq!(tls.ssl_mode.as_deref(), Some("prefer"), "the last one wins");
        let (rest, _) = split_tls_options("postgres://h?host=x").unwrap();
        assert_eq!(rest, "postgres://h?host=x");
    }

    #[test]
    fn tls_options_are_taken_out_of_key_value_strings() {
        let (rest, tls) = split_tls_options(
            "host=h  port = 5433 sslmode=verify-ca sslrootcert='/a b/c\\'s.pem' password='x y'",
        )
        .unwrap();
        assert_eq!(rest, "host='h' port='5433' password='x y'");
        assert_eq!(tls.ssl_mode.as_deref(), Some("verify-ca"));
        assert_eq!(tls.root_cert.as_deref(), Some("/a b/c's.pem"));
        let config: tokio_postgres::Config = rest.parse().unwrap();
        assert_eq!(config.get_password(), Some(&b"x y"[..]));
        assert!(split_tls_options("host='unterminated").is_err());
        assert!(split_tls_options("host").is_err());
    }

    #[test]
    fn sslmode_follows_libpq() {
        assert_eq!(parse("postgres://h/db").ssl_mode(), SslMode::Prefer);
        assert_eq!(
            parse("postgres://h/db?sslmode=verify-full").ssl_mode(),
            SslMode::VerifyFull
        );
        assert_eq!(
            parse("host=h sslmode=verify-ca").config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Require
        );
        assert_eq!(
            parse("postgres://h/db?sslmode=disable")
                .config()
                .get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
        // sslrootcert=system alone means verify-full; anything weaker with it is refused.
        assert_eq!(
            parse("postgres://h/db?sslrootcert=system").ssl_mode(),
            SslMode::VerifyFull
        );
        for bad in [
            "postgres://h/db?sslrootcert=system&sslmode=require",
            "postgres://h/db?sslmode=allow",
            "postgres://h/db?sslmode=bogus",
            "postgres://h/db?sslrootcert=",
            "postgres://h/db?sslcert=/x.pem",
            "postgres://?hostaddr=10.0.0.1&sslmode=verify-full",
        ] {
            assert!(bad.parse::<ConnectionString>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_unix_socket_never_asks_for_tls() {
        let cs = parse("postgres://%2Fvar%2Frun%2Fpostgresql/db?sslmode=require");
        assert_eq!(
            cs.config().get_ssl_mode(),
            tokio_postgres::config::SslMode::Disable
        );
    }

    #[test]
    fn destinations_cover_hosts_hostaddrs_ports_and_sockets() {
        assert_eq!(
            parse("postgres://u@a:1,b:2/db").destinations().unwrap(),
            [tcp("a", 1), tcp("b", 2)]
        );
        assert_eq!(
            parse("postgres://u@a:5432/db?host=evil")
                .destinations()
                .unwrap(),
            [tcp("a", 5432), tcp("evil", 5432)]
        );
        assert_eq!(
            parse("postgres://u@a:5432/db?hostaddr=10.1.2.3")
                .destinations()
                .unwrap(),
            [tcp("10.1.2.3", 5432)]
        );
        // hostaddr alone: the address is also the name TLS would check.
        assert_eq!(
            parse("postgres://u@/db?hostaddr=10.1.2.3,10.1.2.4&port=1,2")
                .destinations()
                .unwrap(),
            [tcp("10.1.2.3", 1), tcp("10.1.2.4", 2)]
        );
        assert_eq!(
            parse("host=a,b port=7 dbname=x").destinations().unwrap(),
            [tcp("a", 7), tcp("b", 7)]
        );
        assert_eq!(
            parse("postgres://u@/db?host=/run/pg")
                .destinations()
                .unwrap(),
            [Destination::Unix {
                path: "/run/pg".into(),
                port: 5432
            }]
        );
        for bad in [
            "postgres:///db",
            "postgres://u@/db?port=5432",
            "dbname=x",
            "host=a,b hostaddr=10.0.0.1",
            "host=a,b,c port=1,2",
        ] {
            assert!(parse(bad).destinations().is_err(), "{bad}");
        }
    }
}
