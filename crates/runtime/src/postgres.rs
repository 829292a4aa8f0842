//! `spin:postgres/postgres@3.0.0` for guests, over one connection pool per database URL.
//!
//! Spin's API has no transaction call: a guest sends `BEGIN` ... `COMMIT` on one opened
//! connection, so a guest connection holds one pooled client for its whole life. A client
//! that may still be inside a transaction, or had a query cut off, is rolled back or discarded
//! before anyone else gets it. Column types follow what Spin 3.x converts; others are
//! `unsupported` (cast them to text in SQL), so a component behaves the same under real Spin.

use crate::bindings::spin::postgres::postgres::{
    self as pg, Column, DbDataType, DbValue, ParameterValue, RowSet,
};
use crate::outbound::AllowedHosts;
use crate::state::InstanceState;
use bytes::BytesMut;
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::{IsNull, ToSql, Type};
use wasmtime::component::Resource;

/// Pool settings shared by every database URL a guest opens.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    pub max_connections_per_url: usize,
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
            .create_timeout(Some(self.config.wait_timeout))
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
        let params = bind(params);
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
        row_set(stmt.columns(), &rows)
    }

    async fn execute(
        &mut self,
        statement: &str,
        params: Vec<ParameterValue>,
    ) -> Result<u64, pg::Error> {
        let params = bind(params);
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

fn bind(params: Vec<ParameterValue>) -> Vec<Param> {
    params.into_iter().map(Param::from).collect()
}

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn query_error(e: tokio_postgres::Error) -> pg::Error {
    match e.as_db_error() {
        Some(db) => pg::Error::QueryFailed(format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        )),
        None => pg::Error::QueryFailed(e.to_string()),
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
        let pool = match self.app.postgres.pool(&address) {
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

fn data_type(ty: &Type) -> DbDataType {
    match *ty {
        Type::BOOL => DbDataType::Boolean,
        Type::CHAR => DbDataType::Int8,
        Type::INT2 => DbDataType::Int16,
        Type::INT4 => DbDataType::Int32,
        Type::INT8 => DbDataType::Int64,
        Type::FLOAT4 => DbDataType::Floating32,
        Type::FLOAT8 => DbDataType::Floating64,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DbDataType::Str,
        Type::BYTEA => DbDataType::Binary,
        Type::DATE => DbDataType::Date,
        Type::TIME => DbDataType::Time,
        Type::TIMESTAMP | Type::TIMESTAMPTZ => DbDataType::Datetime,
        _ => DbDataType::Other,
    }
}

fn row_set(
    columns: &[tokio_postgres::Column],
    rows: &[tokio_postgres::Row],
) -> Result<RowSet, pg::Error> {
    let columns_out = columns
        .iter()
        .map(|c| Column {
            name: c.name().to_string(),
            data_type: data_type(c.type_()),
        })
        .collect();
    let mut rows_out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut values = Vec::with_capacity(columns.len());
        for (i, column) in columns.iter().enumerate() {
            values.push(db_value(row, i, column.type_()).map_err(|e| {
                pg::Error::ValueConversionFailed(format!("column `{}`: {e}", column.name()))
            })?);
        }
        rows_out.push(values);
    }
    Ok(RowSet {
        columns: columns_out,
        rows: rows_out,
    })
}

fn db_value(
    row: &tokio_postgres::Row,
    i: usize,
    ty: &Type,
) -> Result<DbValue, tokio_postgres::Error> {
    fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
        row: &'a tokio_postgres::Row,
        i: usize,
        f: impl FnOnce(T) -> DbValue,
    ) -> Result<DbValue, tokio_postgres::Error> {
        Ok(row.try_get::<_, Option<T>>(i)?.map_or(DbValue::DbNull, f))
    }
    match *ty {
        Type::BOOL => get(row, i, DbValue::Boolean),
        Type::CHAR => get(row, i, DbValue::Int8),
        Type::INT2 => get(row, i, DbValue::Int16),
        Type::INT4 => get(row, i, DbValue::Int32),
        Type::INT8 => get(row, i, DbValue::Int64),
        Type::FLOAT4 => get(row, i, DbValue::Floating32),
        Type::FLOAT8 => get(row, i, DbValue::Floating64),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => get(row, i, DbValue::Str),
        Type::BYTEA => get(row, i, DbValue::Binary),
        Type::DATE => get(row, i, |d: NaiveDate| {
            DbValue::Date((d.year(), d.month() as u8, d.day() as u8))
        }),
        Type::TIME => get(row, i, |t: NaiveTime| {
            DbValue::Time((
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond(),
            ))
        }),
        Type::TIMESTAMP => get(row, i, datetime),
        Type::TIMESTAMPTZ => get(row, i, |t: chrono::DateTime<chrono::Utc>| {
            datetime(t.naive_utc())
        }),
        _ => Ok(DbValue::Unsupported),
    }
}

fn datetime(t: NaiveDateTime) -> DbValue {
    DbValue::Datetime((
        t.year(),
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond(),
    ))
}

/// A guest parameter, bound with the Postgres type the statement expects where it is compatible.
#[derive(Debug)]
enum Param {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Str(String),
    Binary(Vec<u8>),
    Date(Option<NaiveDate>),
    Time(Option<NaiveTime>),
    DateTime(Option<NaiveDateTime>),
    Null,
}

impl From<ParameterValue> for Param {
    fn from(v: ParameterValue) -> Self {
        match v {
            ParameterValue::Boolean(b) => Param::Bool(b),
            ParameterValue::Int8(n) => Param::I8(n),
            ParameterValue::Int16(n) => Param::I16(n),
            ParameterValue::Int32(n) => Param::I32(n),
            ParameterValue::Int64(n) => Param::I64(n),
            ParameterValue::Floating32(n) => Param::F32(n),
            ParameterValue::Floating64(n) => Param::F64(n),
            ParameterValue::Str(s) => Param::Str(s),
            ParameterValue::Binary(b) => Param::Binary(b),
            ParameterValue::Date((y, m, d)) => {
                Param::Date(NaiveDate::from_ymd_opt(y, m.into(), d.into()))
            }
            ParameterValue::Time((h, m, s, ns)) => Param::Time(NaiveTime::from_hms_nano_opt(
                h.into(),
                m.into(),
                s.into(),
                ns,
            )),
            ParameterValue::Datetime((y, mo, d, h, mi, s, ns)) => Param::DateTime(
                NaiveDate::from_ymd_opt(y, mo.into(), d.into())
                    .and_then(|date| date.and_hms_nano_opt(h.into(), mi.into(), s.into(), ns)),
            ),
            ParameterValue::Timestamp(secs) => {
                Param::DateTime(chrono::DateTime::from_timestamp(secs, 0).map(|t| t.naive_utc()))
            }
            ParameterValue::DbNull => Param::Null,
        }
    }
}

fn invalid(what: &str) -> Box<dyn std::error::Error + Sync + Send> {
    format!("invalid {what} parameter").into()
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Param::Bool(v) => v.to_sql(ty, out),
            Param::I8(v) => v.to_sql(ty, out),
            Param::I16(v) => v.to_sql(ty, out),
            Param::I32(v) => v.to_sql(ty, out),
            Param::I64(v) => v.to_sql(ty, out),
            Param::F32(v) => v.to_sql(ty, out),
            Param::F64(v) => v.to_sql(ty, out),
            Param::Str(v) => v.to_sql(ty, out),
            Param::Binary(v) => v.to_sql(ty, out),
            Param::Date(v) => v.ok_or_else(|| invalid("date"))?.to_sql(ty, out),
            Param::Time(v) => v.ok_or_else(|| invalid("time"))?.to_sql(ty, out),
            Param::DateTime(v) => {
                let v = v.ok_or_else(|| invalid("datetime"))?;
                if *ty == Type::TIMESTAMPTZ {
                    v.and_utc().to_sql(ty, out)
                } else {
                    v.to_sql(ty, out)
                }
            }
            Param::Null => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        // Checked per value in `to_sql_checked` below, since the variant decides.
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        let accepted = match self {
            Param::Bool(_) => <bool as ToSql>::accepts(ty),
            Param::I8(_) => <i8 as ToSql>::accepts(ty),
            Param::I16(_) => <i16 as ToSql>::accepts(ty),
            Param::I32(_) => <i32 as ToSql>::accepts(ty),
            Param::I64(_) => <i64 as ToSql>::accepts(ty),
            Param::F32(_) => <f32 as ToSql>::accepts(ty),
            Param::F64(_) => <f64 as ToSql>::accepts(ty),
            Param::Str(_) => <String as ToSql>::accepts(ty),
            Param::Binary(_) => <Vec<u8> as ToSql>::accepts(ty),
            Param::Date(_) => <NaiveDate as ToSql>::accepts(ty),
            Param::Time(_) => <NaiveTime as ToSql>::accepts(ty),
            Param::DateTime(_) => matches!(*ty, Type::TIMESTAMP | Type::TIMESTAMPTZ),
            Param::Null => true,
        };
        if !accepted {
            return Err(format!("cannot bind {self:?} to a parameter of type {ty}").into());
        }
        self.to_sql(ty, out)
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

    #[test]
    fn datetime_binds_to_timestamp_and_timestamptz_but_not_text() {
        let p = Param::from(ParameterValue::Datetime((2026, 11, 25, 10, 30, 0, 0)));
        let mut buf = BytesMut::new();
        assert!(p.to_sql_checked(&Type::TIMESTAMPTZ, &mut buf).is_ok());
        assert!(p.to_sql_checked(&Type::TIMESTAMP, &mut buf).is_ok());
        assert!(p.to_sql_checked(&Type::TEXT, &mut buf).is_err());
        let s = Param::from(ParameterValue::Str("x".into()));
        assert!(s.to_sql_checked(&Type::UUID, &mut buf).is_err());
    }
}
