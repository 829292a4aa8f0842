//! SQL migrations: `migrations/NNNN_name.sql`, applied in file-name order, each once, each in
//! its own transaction, recorded in `public.schema_migrations`. A session advisory lock makes
//! concurrent runs (two hosts starting at once) wait for each other instead of racing.

use anyhow::{bail, Context, Result};
use pgconnect::{ConnectError, ConnectionString};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use tokio_postgres::Client;

/// Any fixed number shared by every runner; it names the lock, nothing else.
const MIGRATION_LOCK_KEY: i64 = 0x6465_7461_696c; // "detail"

#[derive(Debug)]
pub struct Migration {
    pub version: String,
    pub path: PathBuf,
    pub sql: String,
    pub checksum: String,
}

pub fn discover(dir: &Path) -> Result<Vec<Migration>> {
    let mut migrations = Vec::new();
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("sql") {
            continue;
        }
        let version = path
            .file_stem()
            .and_then(|s| s.to_str())
            .context("migration file name is not UTF-8")?
            .to_string();
        let sql = std::fs::read_to_string(&path)?;
        let checksum = Sha256::digest(sql.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        migrations.push(Migration {
            version,
            path,
            sql,
            checksum,
        });
    }
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(migrations)
}

/// Connects (over TLS as the URL's `sslmode` asks), creating the database first when the
/// server does not have it yet.
pub async fn connect_creating(url: &str) -> Result<Client> {
    let parsed: ConnectionString = url
        .parse()
        .with_context(|| format!("cannot connect to {}", redact(url)))?;
    match connect(&parsed).await {
        Ok(client) => Ok(client),
        Err(ConnectError::Postgres(e)) if is_missing_database(&e) => {
            create_database(&parsed).await?;
            connect(&parsed)
                .await
                .with_context(|| format!("cannot connect to {}", redact(url)))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot connect to {}", redact(url)))),
    }
}

async fn connect(parsed: &ConnectionString) -> Result<Client, ConnectError> {
    let (client, connection) = parsed.connect().await?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("migration connection closed: {e}");
        }
    });
    Ok(client)
}

fn is_missing_database(e: &tokio_postgres::Error) -> bool {
    e.as_db_error()
        .is_some_and(|db| db.code() == &tokio_postgres::error::SqlState::INVALID_CATALOG_NAME)
}

async fn create_database(parsed: &ConnectionString) -> Result<()> {
    let name = parsed
        .config()
        .get_dbname()
        .context("the connection string names no database")?
        .to_string();
    let mut admin = parsed.config().clone();
    admin.dbname("postgres");
    let (client, connection) = admin.connect(parsed.tls()?).await?;
    tokio::spawn(connection);
    let quoted = format!("\"{}\"", name.replace('"', "\"\""));
    match client
        .batch_execute(&format!("CREATE DATABASE {quoted}"))
        .await
    {
        Ok(()) => {
            tracing::info!("created database {name}");
            Ok(())
        }
        // Another process created it between our connect and this statement.
        Err(e)
            if e.as_db_error().is_some_and(|db| {
                db.code() == &tokio_postgres::error::SqlState::DUPLICATE_DATABASE
            }) =>
        {
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot create database {name}"))),
    }
}

/// Applies what is not applied yet; returns the versions applied by this call.
pub async fn run(url: &str, dir: &Path) -> Result<Vec<String>> {
    let migrations = discover(dir)?;
    let mut client = connect_creating(url).await?;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations (
                version text PRIMARY KEY,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .or_else(|e| {
            // Two first runs can race on CREATE TABLE IF NOT EXISTS; the loser sees a
            // unique violation on the catalog and the table exists afterwards.
            if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) {
                Ok(())
            } else {
                Err(e)
            }
        })?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let result = apply_all(&mut client, &migrations).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    result
}

async fn apply_all(client: &mut Client, migrations: &[Migration]) -> Result<Vec<String>> {
    let mut applied = Vec::new();
    for m in migrations {
        let row = client
            .query_opt(
                "SELECT checksum FROM public.schema_migrations WHERE version = $1",
                &[&m.version],
            )
            .await?;
        if let Some(row) = row {
            let checksum: String = row.get(0);
            if checksum != m.checksum {
                bail!(
                    "migration {} was changed after it was applied; add a new migration instead",
                    m.version
                );
            }
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(&m.sql)
            .await
            .with_context(|| format!("migration {} failed", m.path.display()))?;
        tx.execute(
            "INSERT INTO public.schema_migrations (version, checksum) VALUES ($1, $2)",
            &[&m.version, &m.checksum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!("applied migration {}", m.version);
        applied.push(m.version.clone());
    }
    Ok(applied)
}

/// A connection string without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_hides_only_the_password() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("host=x"), "host=x");
    }

    #[test]
    fn discover_orders_by_version_and_skips_other_files() {
        let dir = std::env::temp_dir().join(format!("mig-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("0002_b.sql"), "SELECT 2;").unwrap();
        std::fs::write(dir.join("0001_a.sql"), "SELECT 1;").unwrap();
        std::fs::write(dir.join("README.md"), "x").unwrap();
        let found = discover(&dir).unwrap();
        let versions: Vec<_> = found.iter().map(|m| m.version.as_str()).collect();
        assert_eq!(versions, ["0001_a", "0002_b"]);
        assert_ne!(found[0].checksum, found[1].checksum);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
