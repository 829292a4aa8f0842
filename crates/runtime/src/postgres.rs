//! `spin:postgres/postgres@3.0.0` for guests, over one connection pool per database URL.
//!
//! Spin's API has no transaction call: a guest sends `BEGIN` ... `COMMIT` on one opened
//! connection, so a guest connection holds one pooled client for its whole life. A client
//! that may still be inside a transaction, or had a query cut off, is rolled back or discarded
//! before anyone else gets it. Values are converted as Spin 4.0.2 converts them (see
//! `types`), refusals included, so a component behaves the same under real Spin.

mod types;

use crate::allowed_hosts::AllowedHosts;
use crate::bindings::spin::postgres::postgres::{self as pg, ParameterValue, RowSet};
use crate::limits::POSTGRES_CONNECT_TIMEOUT;
use crate::state::InstanceState;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use types::Param;
use wasmtime::component::Resource;

/// Pool settings shared by every database URL a guest opens.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub max_connections_per_url: usize,
    /// How long a guest waits for a pooled connection while all are in use (then
    /// `connection-failed`). Opening a new one is bounded by
    /// [`POSTGRES_CONNECT_TIMEOUT`](crate::limits::POSTGRES_CONNECT_TIMEOUT).
    pub wait_timeout: Duration,
}

impl Default for PostgresConfig {
    fn default() -> Self {
        Self {
            max_connections_per_url: 16,
            wait_timeout: Duration::from_secs(5),
        }
    }
}

/// The host side: pools keyed by connection string, created on first use.
#[derive(Clone, Default)]
pub struct Postgres {
    config: PostgresConfig,
    pools: Arc<Mutex<HashMap<String, LabelledPool>>>,
}

#[derive(Clone)]
struct LabelledPool {
    pool: Pool,
    /// `host:port/database`, for metrics: the URL itself may hold a password.
    label: String,
}

/// One pool's connections, for metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolUsage {
    pub label: String,
    pub in_use: usize,
    pub idle: usize,
    pub max: usize,
}

impl Postgres {
    pub fn new(config: PostgresConfig) -> Self {
        Self {
            config,
            pools: Default::default(),
        }
    }

    fn pool(&self, url: &str) -> Result<Pool, pg::Error> {
        let mut pools = self.pools.lock().expect("pool map poisoned");
        if let Some(pooled) = pools.get(url) {
            return Ok(pooled.pool.clone());
        }
        let parsed = pgconnect::ConnectionString::from_str(url)
            .map_err(|e| pg::Error::ConnectionFailed(e.to_string()))?;
        let tls = parsed
            .tls()
            .map_err(|e| pg::Error::ConnectionFailed(e.to_string()))?;
        let label = pool_label(parsed.config());
        let manager = Manager::from_config(
            parsed.config().clone(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.config.max_connections_per_url)
            .wait_timeout(Some(self.config.wait_timeout))
            .create_timeout(Some(POSTGRES_CONNECT_TIMEOUT))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|e| pg::Error::ConnectionFailed(e.to_string()))?;
        pools.insert(
            url.to_string(),
            LabelledPool {
                pool: pool.clone(),
                label,
            },
        );
        Ok(pool)
    }

    /// Every pool's connections, one entry per label (pools of URLs that differ only in
    /// user or options are added together), sorted by label.
    pub fn usage(&self) -> Vec<PoolUsage> {
        let pools = self.pools.lock().expect("pool map poisoned");
        let mut usage: Vec<PoolUsage> = Vec::with_capacity(pools.len());
        for pooled in pools.values() {
            let status = pooled.pool.status();
            let in_use = status.size.saturating_sub(status.available);
            match usage.iter_mut().find(|u| u.label == pooled.label) {
                Some(u) => {
                    u.in_use += in_use;
                    u.idle += status.available;
                    u.max += status.max_size;
                }
                None => usage.push(PoolUsage {
                    label: pooled.label.clone(),
                    in_use,
                    idle: status.available,
                    max: status.max_size,
                }),
            }
        }
        usage.sort_by(|a, b| a.label.cmp(&b.label));
        usage
    }
}

/// `host:port/database` of a connection string (the first host; the password never).
fn pool_label(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let database = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("{host}:{port}/{database}")
}

/// The `connection` resource: one pooled client, lent to the guest until it drops it.
pub struct PgConnection {
    client: Option<Object>,
    /// The guest may have an open transaction (it sent BEGIN without COMMIT/ROLLBACK yet).
    in_transaction: bool,
    /// A query was sent and its future dropped before the answer (instance killed mid-query).
    in_flight: bool,
}

impl PgConnection {
    fn track_transaction(&mut self, statement: &str) {
        let head: String = statement
            .trim_start()
            .chars()
            .take(24)
            .collect::<String>()
            .to_ascii_uppercase();
        let word: String = head.chars().take_while(char::is_ascii_alphabetic).collect();
        match word.as_str() {
            "BEGIN" | "START" => self.in_transaction = true,
            "COMMIT" | "END" | "ABORT" => self.in_transaction = false,
            "ROLLBACK" if !head.contains(" TO ") => self.in_transaction = false,
            _ => {}
        }
    }

    async fn query(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<RowSet, pg::Error> {
        let params = types::params(params).map_err(pg::Error::BadParameter)?;
        let client = self.client.as_ref().ok_or_else(closed)?;
        self.in_flight = true;
        let result = async {
            let stmt = client.prepare_cached(statement).await?;
            let rows = client.query(&stmt, &refs(&params)).await?;
            Ok((stmt, rows))
        }
        .await;
        self.finished(statement, result.is_ok());
        let (stmt, rows) = result.map_err(query_error)?;
        if rows.is_empty() {
            // Spin 4.0.2 never answers a pg3 query that returns no rows (it waits for a first
            // row to learn the columns from): the request hangs there until it times out.
            tracing::warn!(
                statement,
                "a query returned no rows: under Spin 4.0.2 it would never return; \
                 shape it to return at least one row"
            );
        }
        types::row_set(stmt.columns(), &rows)
    }

    async fn execute(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<u64, pg::Error> {
        let params = types::params(params).map_err(pg::Error::ValueConversionFailed)?;
        let client = self.client.as_ref().ok_or_else(closed)?;
        self.in_flight = true;
        let result = async {
            let stmt = client.prepare_cached(statement).await?;
            client.execute(&stmt, &refs(&params)).await
        }
        .await;
        self.finished(statement, result.is_ok());
        result.map_err(query_error)
    }

    /// The statement came back: the client is idle again. Only a statement that succeeded
    /// moves the transaction state: a failed BEGIN opened nothing, and after a failed
    /// ROLLBACK or COMMIT the state is unknown, so `release` rolls back (again) to be sure.
    fn finished(&mut self, statement: &str, succeeded: bool) {
        self.in_flight = false;
        if succeeded {
            self.track_transaction(statement);
        }
    }

    /// Give the client back to the pool when it is clean, or throw it away.
    async fn release(mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        // A query cut off mid-flight leaves the protocol state unknown; a failed ROLLBACK
        // leaves the transaction open. Either way the client is closed, not reused.
        let dirty = self.in_flight
            || (self.in_transaction && client.batch_execute("ROLLBACK").await.is_err());
        if dirty {
            drop(Object::take(client));
        }
    }
}

impl Drop for PgConnection {
    fn drop(&mut self) {
        // Dropped without `release` (the store died): no await is possible here, so a client
        // that is not known to be clean is closed instead of being returned to the pool.
        if let Some(client) = self.client.take() {
            if self.in_flight || self.in_transaction {
                drop(Object::take(client));
            }
        }
    }
}

fn closed() -> pg::Error {
    pg::Error::Other("connection already closed".into())
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

/// A failed statement as the guest sees it. A statement that failed because the connection
/// went away under it (the server shutting down or restarting, the socket reset) is
/// `connection-failed`, like a connection that cannot be opened: components answer both
/// 503 `database_unavailable` ("retry"), not 500. Spin 4.0.2 reports every failed statement
/// as `query-failed`.
fn query_error(e: tokio_postgres::Error) -> pg::Error {
    let text = match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => types::with_causes(&e),
    };
    if connection_lost(&e) {
        pg::Error::ConnectionFailed(text)
    } else {
        pg::Error::QueryFailed(text)
    }
}

/// The connection is gone: closed, an I/O error on its socket, or the server ending the
/// session (SQLSTATE class 08, or 57P01-57P03: shutting down, crashed, starting up).
fn connection_lost(e: &tokio_postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03")
        }
        None => std::error::Error::source(e).is_some_and(|cause| cause.is::<std::io::Error>()),
    }
}

/// Checks that every address `url` may connect to is in the component's
/// `allowed_outbound_hosts` as `postgres://host:port`: each `hostaddr` (what is dialled when
/// given: the `host` beside it then only names the server for TLS), else each `host` (a
/// comma list, or given again as a `host=` parameter), with its port. A string that names no address, names a Unix socket (a local
/// socket is no outbound host, and the server may trust its peer's OS user), or does not
/// parse is refused.
fn check_allowed(allowed: &AllowedHosts, url: &str) -> Result<(), pg::Error> {
    let refuse = |why: String| {
        tracing::error!("a component's PostgreSQL connection was refused: {why}");
        Err(pg::Error::ConnectionFailed(why))
    };
    let destinations =
        match pgconnect::ConnectionString::from_str(url).and_then(|parsed| parsed.destinations()) {
            Ok(destinations) => destinations,
            Err(e) => return refuse(e.to_string()),
        };
    for destination in destinations {
        match destination {
            pgconnect::Destination::Tcp { host, port } => {
                // An IPv6 address is written in brackets in allowed_outbound_hosts.
                let bracketed = format!("[{host}]");
                let allowed = allowed.allows("postgres", &host, port)
                    || (host.contains(':') && allowed.allows("postgres", &bracketed, port));
                if !allowed {
                    let shown = if host.contains(':') {
                        &bracketed
                    } else {
                        &host
                    };
                    return refuse(format!(
                        "destination postgres://{shown}:{port} is not in allowed_outbound_hosts \
                         (add \"postgres://{shown}:{port}\" to the component's allowed_outbound_hosts)"
                    ));
                }
            }
            pgconnect::Destination::Unix { path, .. } => {
                return refuse(format!(
                    "the Unix socket {} is not reachable from a component; connect over TCP \
                     (postgres://host:port)",
                    path.display()
                ));
            }
        }
    }
    Ok(())
}

impl pg::Host for InstanceState {}

impl pg::HostConnection for InstanceState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<PgConnection>, pg::Error>> {
        if let Err(e) = check_allowed(&self.component.allowed_hosts, &address) {
            return Ok(Err(e));
        }
        let pool = match self.postgres.pool(&address) {
            Ok(pool) => pool,
            Err(e) => return Ok(Err(e)),
        };
        let client = match pool.get().await {
            Ok(client) => client,
            Err(e) => return Ok(Err(pg::Error::ConnectionFailed(e.to_string()))),
        };
        let conn = PgConnection {
            client: Some(client),
            in_transaction: false,
            in_flight: false,
        };
        Ok(Ok(self.table.push(conn)?))
    }

    async fn query(
        &mut self,
        conn: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<RowSet, pg::Error>> {
        let conn = self.table.get_mut(&conn)?;
        Ok(conn.query(&statement, params).await)
    }

    async fn execute(
        &mut self,
        conn: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> wasmtime::Result<Result<u64, pg::Error>> {
        let conn = self.table.get_mut(&conn)?;
        Ok(conn.execute(&statement, params).await)
    }

    async fn drop(&mut self, conn: Resource<PgConnection>) -> wasmtime::Result<()> {
        let conn = self.table.delete(conn)?;
        conn.release().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> PgConnection {
        PgConnection {
            client: None,
            in_transaction: false,
            in_flight: false,
        }
    }

    #[test]
    fn transaction_state_follows_the_statements() {
        let mut c = conn();
        c.track_transaction("  begin;");
        assert!(c.in_transaction);
        c.track_transaction("SAVEPOINT a");
        c.track_transaction("rollback to savepoint a");
        assert!(c.in_transaction);
        c.track_transaction("COMMIT;");
        assert!(!c.in_transaction);
        c.track_transaction("START TRANSACTION ISOLATION LEVEL SERIALIZABLE");
        assert!(c.in_transaction);
        c.track_transaction("rollback");
        assert!(!c.in_transaction);
    }

    #[test]
    fn a_failed_rollback_or_commit_leaves_the_transaction_open_for_release() {
        let mut c = conn();
        c.finished("BEGIN", true);
        c.finished("ROLLBACK", false);
        assert!(c.in_transaction, "release must still roll back");
        c.finished("COMMIT", false);
        assert!(c.in_transaction);
        c.finished("COMMIT", true);
        assert!(!c.in_transaction);
        c.finished("BEGIN", false);
        assert!(!c.in_transaction, "a failed BEGIN opened nothing");
    }

    #[test]
    fn pools_are_labelled_by_host_port_and_database_never_the_password() {
        let label = |url: &str| pool_label(&tokio_postgres::Config::from_str(url).unwrap());
        assert_eq!(
            label("postgres://app:s3cret@db.local:6432/detailing?sslmode=disable"),
            "db.local:6432/detailing"
        );
        assert_eq!(label("postgres://postgres@127.0.0.1/x"), "127.0.0.1:5432/x");
        // Postgres's own default: the database is named after the user.
        assert_eq!(label("postgres://me@h"), "h:5432/me");
    }

    fn refused(allowed: &[&str], url: &str) -> bool {
        check_allowed(&AllowedHosts::parse(allowed).unwrap(), url).is_err()
    }

    #[test]
    fn an_allowed_host_and_port_is_allowed_in_either_form() {
        let allowed = ["postgres://db.local:5432"];
        for url in [
            "postgres://app@db.local/x",
            "postgres://app@db.local:5432/x?sslmode=verify-full&sslrootcert=/ca.pem",
            "postgresql://app@DB.local/x",
            "host=db.local dbname=x sslmode=require",
            "postgres://app@db.local,db.local:5432/x",
        ] {
            assert!(!refused(&allowed, url), "{url}");
        }
        // With hostaddr, the address is what is dialled and what must be allowed.
        let by_address = ["postgres://10.0.0.9:5432"];
        assert!(!refused(
            &by_address,
            "postgres://app@db.local/x?hostaddr=10.0.0.9"
        ));
        assert!(!refused(&by_address, "postgres://app@/x?hostaddr=10.0.0.9"));
        assert!(refused(
            &by_address,
            "postgres://app@10.0.0.9/x?hostaddr=10.0.0.8"
        ));
        assert!(!refused(
            &["postgres://[::1]:5432"],
            "postgres://u@[::1]:5432/x"
        ));
    }

    #[test]
    fn every_address_a_connection_string_names_is_checked() {
        let allowed = ["postgres://db.local:5432"];
        for url in [
            // hostaddr is what is dialled: an allowed name beside it proves nothing.
            "postgres://app@db.local:5432/x?hostaddr=10.0.0.9",
            "postgres://app@db.local:5432/x?hostaddr=127.0.0.1",
            "host=db.local hostaddr=10.0.0.9 dbname=x",
            // hostaddr alone, with no host at all.
            "postgres://app@/x?hostaddr=10.0.0.9",
            "hostaddr=10.0.0.9 dbname=x",
            // A second host in the list, in the URL or as a parameter.
            "postgres://app@db.local:5432,evil.example:5432/x",
            "postgres://app@db.local:5432/x?host=evil.example",
            "host=db.local,evil.example dbname=x",
            // The allowed host on another port, given in the port list or as a parameter.
            "postgres://app@db.local:6543/x",
            "postgres://app@db.local/x?port=6543",
            "host=db.local,db.local port=5432,6543",
            // A Unix socket, even "on" the allowed host's port.
            "postgres://app@%2Fvar%2Frun%2Fpostgresql:5432/x",
            "postgres://app@/x?host=/var/run/postgresql",
            "host=/tmp port=5432",
            // Names no address at all, or cannot be parsed.
            "postgres:///x",
            "dbname=x",
            "postgres://app@db.local/x?hostaddr=not-an-ip",
            "postgres://app@db.local/x?sslmode=bogus",
            "postgres://app@db.local/x?unknown_option=1",
            "host=db.local,db.local port=1,2,3",
            "host='unterminated",
        ] {
            assert!(refused(&allowed, url), "{url} must be refused");
        }
    }

    #[test]
    fn a_wildcard_host_still_refuses_unix_sockets() {
        let allowed = ["postgres://*:*"];
        assert!(!refused(
            &allowed,
            "postgres://u@anything:1/x?hostaddr=10.0.0.9"
        ));
        assert!(refused(
            &allowed,
            "postgres://u@/x?host=/var/run/postgresql"
        ));
    }
}
