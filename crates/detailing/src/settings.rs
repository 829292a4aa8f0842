//! Where `detailing` takes its settings from: the Spin variables a Spin user would set
//! (`SPIN_VARIABLE_*`), else development defaults that make a fresh checkout run as is.

use anyhow::{Context, Result};
use runtime::manifest::LoadedManifest;
use runtime::{AppVariables, VariableSources};
use std::path::Path;

pub const DEFAULT_POSTGRES_URL: &str =
    "postgres://postgres@127.0.0.1:5432/detailing?sslmode=disable";

/// Secrets a fresh checkout generates for itself, each used only while its variable is unset.
const DEV_SECRETS: [DevSecret; 3] = [
    DevSecret {
        variable: "jwt_secret",
        file: ".detailing/dev-jwt-secret",
        what: "JWT secret",
    },
    DevSecret {
        variable: "relay_token",
        file: ".detailing/dev-relay-token",
        what: "relay token",
    },
    DevSecret {
        variable: "event_signing_key",
        file: ".detailing/dev-event-signing-key",
        what: "payment event signing key",
    },
];

pub struct Settings {
    pub postgres_url: String,
    pub variables: VariableSources,
}

impl Settings {
    /// Resolve the settings for the app in `app_dir`, development secrets included.
    pub fn load(app_dir: &Path) -> Result<Self> {
        let mut settings = Self::database();
        for secret in &DEV_SECRETS {
            if std::env::var(secret.env_name()).is_err() {
                settings
                    .variables
                    .fallbacks
                    .insert(secret.variable.into(), secret.load(app_dir)?);
            }
        }
        Ok(settings)
    }

    /// Only what reaching the database takes: no secret is read or generated, so
    /// `detailing migrate` runs in a read-only container with nothing but the database URL.
    pub fn database() -> Self {
        let mut variables = VariableSources::env();
        let postgres_url = std::env::var("SPIN_VARIABLE_POSTGRES_URL")
            .unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string());
        variables
            .fallbacks
            .insert("postgres_url".into(), postgres_url.clone());
        if let Some(host) = host_port(&postgres_url) {
            variables.fallbacks.insert("postgres_host".into(), host);
        }
        // Likewise `redis_host` follows a `redis_url` that is set (with a password, say).
        if let Some(host) = std::env::var("SPIN_VARIABLE_REDIS_URL")
            .ok()
            .and_then(|url| redis_host_port(&url))
        {
            variables.fallbacks.insert("redis_host".into(), host);
        }
        Self {
            postgres_url,
            variables,
        }
    }

    /// One secret: its `SPIN_VARIABLE_*` value, else the development one in `.detailing/`
    /// (generated the first time), for commands that need that secret and no other.
    pub fn secret(app_dir: &Path, variable: &str) -> Result<String> {
        let secret = DEV_SECRETS
            .iter()
            .find(|secret| secret.variable == variable)
            .with_context(|| format!("`{variable}` is not a secret detailing knows"))?;
        match std::env::var(secret.env_name()) {
            Ok(value) if !value.is_empty() => Ok(value),
            _ => secret.load(app_dir),
        }
    }
}

impl Settings {
    /// The manifest's variables with these settings applied, refusing a `jwt_secret` or an
    /// `event_signing_key` too short to sign with: the app must not start with a guessable key.
    pub fn resolve(&self, manifest: &LoadedManifest) -> Result<AppVariables> {
        let variables = AppVariables::resolve(&manifest.manifest.variables, &self.variables)?;
        let too_short =
            |variable| format!("{} is too short", runtime::variables::env_name(variable));
        if let Some(secret) = variables.get("jwt_secret") {
            auth::Secret::new(secret.as_bytes()).with_context(|| too_short("jwt_secret"))?;
        }
        if let Some(key) = variables.get("event_signing_key") {
            events::SigningKey::new(key.as_bytes())
                .with_context(|| too_short("event_signing_key"))?;
        }
        Ok(variables)
    }
}

/// The bcrypt cost the app hashes with (`bcrypt_cost`, default 12).
pub fn bcrypt_cost(variables: &AppVariables) -> Result<auth::Cost> {
    match variables.get("bcrypt_cost") {
        Some(raw) => Ok(auth::Cost::parse(raw)?),
        None => Ok(auth::Cost::DEFAULT),
    }
}

/// `host:port` a `postgres://` URL connects to first (its `hostaddr` when it has one), as
/// `allowed_outbound_hosts` wants it.
pub fn host_port(url: &str) -> Option<String> {
    let parsed: pgconnect::ConnectionString = url.parse().ok()?;
    match parsed.destinations().ok()?.into_iter().next()? {
        pgconnect::Destination::Tcp { host, port } => Some(format!("{host}:{port}")),
        pgconnect::Destination::Unix { .. } => None,
    }
}

/// `host:port` of a `redis://` URL (port 6379 when it has none), password left out.
pub fn redis_host_port(url: &str) -> Option<String> {
    let rest = url.strip_prefix("redis://")?;
    let authority = rest.split(['/', '?']).next()?;
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host_port.is_empty() {
        return None;
    }
    let has_port = host_port
        .rsplit_once(':')
        .is_some_and(|(_, port)| port.parse::<u16>().is_ok() && !host_port.ends_with(']'));
    Some(if has_port {
        host_port.to_owned()
    } else {
        format!("{host_port}:6379")
    })
}

/// A secret variable's development value, kept beside the app (git-ignored, mode 0600) so
/// that restarts keep it: tokens signed before a restart still verify, and a relay started
/// on its own sends the token the components expect.
struct DevSecret {
    variable: &'static str,
    file: &'static str,
    what: &'static str,
}

impl DevSecret {
    /// Long enough for any secret: `jwt_secret` needs 32 bytes.
    const MIN_LEN: usize = 32;

    fn env_name(&self) -> String {
        runtime::variables::env_name(self.variable)
    }

    /// The value in the file, or a new random one (64 hex digits) written there first.
    fn load(&self, app_dir: &Path) -> Result<String> {
        let path = app_dir.join(self.file);
        let advice = format!("set {} in production", self.env_name());
        if let Ok(secret) = std::fs::read_to_string(&path) {
            let secret = secret.trim().to_string();
            if secret.len() >= Self::MIN_LEN {
                tracing::warn!(
                    "using the development {} in {}; {advice}",
                    self.what,
                    path.display()
                );
                return Ok(secret);
            }
        }
        let secret = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_private(&path, &secret)
            .with_context(|| format!("cannot write {}", path.display()))?;
        tracing::warn!(
            "generated a development {} in {}; {advice}",
            self.what,
            path.display()
        );
        Ok(secret)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_defaults_the_port() {
        assert_eq!(
            host_port("postgres://u@db.local/x").as_deref(),
            Some("db.local:5432")
        );
        assert_eq!(
            host_port(DEFAULT_POSTGRES_URL).as_deref(),
            Some("127.0.0.1:5432")
        );
        assert_eq!(
            host_port("postgres://u@h:6000/x?sslmode=disable").as_deref(),
            Some("h:6000")
        );
    }

    #[test]
    fn redis_host_port_drops_the_password_and_defaults_the_port() {
        assert_eq!(
            redis_host_port("redis://:s3cret@redis:6380/0").as_deref(),
            Some("redis:6380")
        );
        assert_eq!(
            redis_host_port("redis://default:p@ss@cache.local").as_deref(),
            Some("cache.local:6379")
        );
        assert_eq!(
            redis_host_port("redis://127.0.0.1:6379").as_deref(),
            Some("127.0.0.1:6379")
        );
        assert_eq!(redis_host_port("rediss://h:1"), None);
        assert_eq!(redis_host_port("redis://"), None);
    }

    #[test]
    fn dev_secrets_are_generated_once_each_long_enough_and_distinct() {
        let dir = std::env::temp_dir().join(format!("secret-{}", uuid::Uuid::new_v4()));
        let [jwt, relay, events] = &DEV_SECRETS;
        let first = jwt.load(&dir).unwrap();
        assert_eq!(jwt.load(&dir).unwrap(), first);
        assert!(first.len() >= 32);
        let token = relay.load(&dir).unwrap();
        assert_eq!(relay.load(&dir).unwrap(), token);
        assert_ne!(token, first);
        let key = events.load(&dir).unwrap();
        assert!(key.len() >= events::MIN_KEY_BYTES);
        assert!(key != first && key != token);
        assert!(dir.join(".detailing/dev-relay-token").exists());
        assert!(dir.join(".detailing/dev-event-signing-key").exists());
        assert_eq!(relay.env_name(), "SPIN_VARIABLE_RELAY_TOKEN");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for file in [jwt.file, relay.file, events.file] {
                let mode = std::fs::metadata(dir.join(file))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600, "{file}");
            }
        }
        std::fs::remove_dir_all(dir).unwrap();
    }
}
