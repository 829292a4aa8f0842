//! PostgreSQL through Spin's `spin:postgres/postgres@3.0.0` interface (spin-sdk's `pg3`),
//! the version every Spin 3.x host and SpinKube's shim serve. Failures become API errors:
//! an unreachable database is 503 `database_unavailable`, a failed query 500.
//!
//! Spin 4.0.2 hangs when a `pg3` query returns no rows (docs/spin-compatibility.md), so a
//! statement that may find nothing runs through [`lookup`], and one that always answers one
//! row is read with [`one_row`].

use std::fmt::Display;
use std::rc::Rc;

use chrono::{DateTime, Utc};
use spin_sdk::pg3::{self, Connection, Decode, ParameterValue, RowSet};
use uuid::Uuid;

use crate::error::ApiError;
use crate::query::{Cursor, Page};

pub use spin_sdk::pg3::DbValue;

/// SQL for a `timestamptz` column as RFC 3339 text in UTC (`2030-05-01T10:30:00.000000Z`).
/// pg3's datetime value carries no zone, so timestamps travel as text every host passes
/// through unchanged; read them back with [`Row::timestamp`].
#[macro_export]
macro_rules! rfc3339 {
    ($column:literal) => {
        concat!(
            "to_char(",
            $column,
            " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        )
    };
}

const UNAVAILABLE: &str = "database_unavailable";

/// Opens a connection (pooled or not, as the host decides) to `url`.
pub fn open(url: &str) -> Result<Connection, ApiError> {
    Connection::open(url).map_err(|error| {
        ApiError::unavailable(UNAVAILABLE, "the database is unavailable").with_detail(error)
    })
}

/// A text parameter, or SQL NULL for `None` (e.g. an optional filter: `$1::text IS NULL OR ...`).
pub fn text_or_null(value: Option<String>) -> ParameterValue {
    value.map_or(ParameterValue::DbNull, ParameterValue::Str)
}

/// `filters` followed by a keyset page's three parameters: the cursor's `created_at` and
/// `id` as text (NULL on the first page), then how many rows to fetch.
pub fn paged(mut filters: Vec<ParameterValue>, page: &Page) -> Vec<ParameterValue> {
    let after = page.after.as_ref();
    filters.extend([
        text_or_null(after.map(Cursor::created_at_sql)),
        text_or_null(after.map(|cursor| cursor.id.to_string())),
        page.fetch().into(),
    ]);
    filters
}

/// Runs a statement that returns rows.
pub fn query(db: &Connection, sql: &str, params: &[ParameterValue]) -> Result<RowSet, ApiError> {
    db.query(sql, params).map_err(from_pg_error)
}

/// Runs a statement the database may refuse for a reason worth another try: `Ok(None)` when
/// it failed with one of `sqlstates` (e.g. `23P01`, an exclusion constraint, or `40P01`, a
/// deadlock it was chosen to break), so the caller can answer or retry. Hosts word a failed
/// statement differently: ours ends it with `(SQLSTATE 23P01)`, Spin 4.0.2 gives
/// tokio-postgres's debug form with `code: SqlState(E23P01)`; both are read.
pub fn query_unless(
    db: &Connection,
    sql: &str,
    params: &[ParameterValue],
    sqlstates: &[&str],
) -> Result<Option<RowSet>, ApiError> {
    match db.query(sql, params) {
        Ok(rows) => Ok(Some(rows)),
        Err(pg3::PgError::QueryFailed(detail))
            if sqlstates.iter().any(|state| failed_with(&detail, state)) =>
        {
            Ok(None)
        }
        Err(error) => Err(from_pg_error(error)),
    }
}

/// Whether a failed statement's text names `sqlstate`, in either host's wording.
fn failed_with(detail: &str, sqlstate: &str) -> bool {
    detail.contains(&format!("(SQLSTATE {sqlstate})"))
        || detail.contains(&format!("SqlState(E{sqlstate})"))
}

/// Runs a statement and returns the number of rows it changed.
pub fn execute(db: &Connection, sql: &str, params: &[ParameterValue]) -> Result<u64, ApiError> {
    db.execute(sql, params).map_err(from_pg_error)
}

/// The column [`lookup`] adds: `true`, or NULL when the statement found nothing.
const FOUND: &str = "lookup_found";

/// Runs `statement`, which yields at most one row (a SELECT, or an INSERT, UPDATE or DELETE
/// with RETURNING), and reads that row with `read`: `None` when it yielded none.
///
/// Why not run it as it is: Spin 4.0.2's Postgres interface (`spin:postgres@3.0.0`,
/// spin-sdk's `pg3`) was observed to hang on some paths when a query returns zero rows
/// (docs/spin-compatibility.md). So the statement runs as a CTE LEFT JOINed onto
/// `(SELECT 1)`, a shape that always returns exactly one row; a found row carries a marker
/// column, and the all-NULL row of "nothing found" becomes `None`. A statement that
/// starts with its own data-modifying `WITH` cannot be nested this way: write it as one
/// INSERT, UPDATE or DELETE ... RETURNING instead.
pub fn lookup<T>(
    db: &Connection,
    statement: &str,
    params: &[ParameterValue],
    read: impl FnOnce(&Row) -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    let row = one_row(query(db, &one_row_of(statement), params)?)?;
    if row.is_null(FOUND)? {
        return Ok(None);
    }
    read(&row).map(Some)
}

/// `statement` in the shape that always returns exactly one row (see [`lookup`]).
fn one_row_of(statement: &str) -> String {
    format!(
        "WITH found AS ({statement}) \
         SELECT hit.* FROM (SELECT 1) AS one \
         LEFT JOIN (SELECT true AS {FOUND}, found.* FROM found) AS hit ON true"
    )
}

/// Runs `work` inside BEGIN ... COMMIT on `db`, or rolls back when it fails. If the
/// ROLLBACK itself fails (or the instance dies first), the host rolls the connection back
/// before anyone else uses it (runtime's postgres module), so the first error is the one to
/// report.
pub fn transaction<T, E: From<ApiError>>(
    db: &Connection,
    work: impl FnOnce(&Connection) -> Result<T, E>,
) -> Result<T, E> {
    execute(db, "BEGIN", &[])?;
    match work(db) {
        Ok(value) => {
            execute(db, "COMMIT", &[])?;
            Ok(value)
        }
        Err(error) => {
            if let Err(rollback) = execute(db, "ROLLBACK", &[]) {
                eprintln!("ROLLBACK failed; the host cleans the connection up: {rollback}");
            }
            Err(error)
        }
    }
}

/// `SELECT 1`: the database answers queries.
pub fn ping(db: &Connection) -> Result<(), ApiError> {
    let row = one_row(query(db, "SELECT 1 AS ok", &[])?)?;
    row.get::<i32>("ok").map(drop)
}

fn from_pg_error(error: pg3::PgError) -> ApiError {
    match error {
        pg3::PgError::ConnectionFailed(detail) => {
            ApiError::unavailable(UNAVAILABLE, "the database is unavailable").with_detail(detail)
        }
        pg3::PgError::QueryFailed(detail) if connection_lost(&detail) => {
            ApiError::unavailable(UNAVAILABLE, "the database is unavailable").with_detail(detail)
        }
        other => ApiError::internal("a database query failed").with_detail(other),
    }
}

/// Whether a failed query's text says the connection was lost rather than the statement
/// refused. Our host reports a lost connection as `connection-failed`; Spin 4.0.2 reports it as
/// `query-failed` with tokio-postgres's error in its debug form (`Error { kind: Closed, .. }`,
/// `kind: Io`, or the server ending the session: SQLSTATE class 08, or 57P01-57P03 for
/// shutting down, crashed, starting up), so a database stopped mid-query would be a 500
/// there without this.
fn connection_lost(detail: &str) -> bool {
    const LOST: [&str; 6] = [
        "kind: Closed",
        "kind: Io",
        "SqlState(E57P01)",
        "SqlState(E57P02)",
        "SqlState(E57P03)",
        "SqlState(E08",
    ];
    LOST.iter().any(|mark| detail.contains(mark))
}

/// The only row of a result that must have exactly one.
pub fn one_row(rows: RowSet) -> Result<Row, ApiError> {
    let RowSet { columns, mut rows } = rows;
    if rows.len() != 1 {
        return Err(
            ApiError::internal("a database query returned an unexpected result")
                .with_detail(format!("expected 1 row, got {}", rows.len())),
        );
    }
    Ok(Row {
        columns: columns.into_iter().map(|column| column.name).collect(),
        values: rows.remove(0),
    })
}

/// Every row of a result, each read by column name.
pub fn rows(rows: RowSet) -> Vec<Row> {
    let RowSet { columns, rows } = rows;
    let columns: Rc<[String]> = columns.into_iter().map(|column| column.name).collect();
    rows.into_iter()
        .map(|values| Row {
            columns: Rc::clone(&columns),
            values,
        })
        .collect()
}

/// The rows of a list statement that LEFT JOINs its page onto `(SELECT 1)`, so that an empty
/// list still answers one row (see [`lookup`] for why), each read by `read`. That row is all
/// NULL: rows whose `key` column is NULL are left out.
pub fn list<T>(
    rows: RowSet,
    key: &str,
    read: impl Fn(&Row) -> Result<T, ApiError>,
) -> Result<Vec<T>, ApiError> {
    let mut items = Vec::new();
    for row in self::rows(rows) {
        if !row.is_null(key)? {
            items.push(read(&row)?);
        }
    }
    Ok(items)
}

/// One result row whose values are read by column name.
#[derive(Debug, Clone)]
pub struct Row {
    /// Shared by every row of one result.
    columns: Rc<[String]>,
    values: Vec<DbValue>,
}

impl Row {
    fn value(&self, column: &str) -> Result<&DbValue, ApiError> {
        self.columns
            .iter()
            .position(|name| name == column)
            .and_then(|index| self.values.get(index))
            .ok_or_else(|| unexpected(column, "no such column"))
    }

    /// The value of `column` as `T` (use `Option<T>` for nullable columns).
    pub fn get<T: Decode>(&self, column: &str) -> Result<T, ApiError> {
        T::decode(self.value(column)?).map_err(|error| unexpected(column, error))
    }

    /// A text column turned into `T` by `parse`; a failure names the column.
    pub fn parse<T, E: Display>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, E>,
    ) -> Result<T, ApiError> {
        let text: String = self.get(column)?;
        parse(&text).map_err(|error| unexpected(column, error))
    }

    /// A UUID column selected as text (`id::text`: Spin's pg3 has no uuid value).
    pub fn uuid(&self, column: &str) -> Result<Uuid, ApiError> {
        self.parse(column, Uuid::parse_str)
    }

    /// A timestamp column selected with [`rfc3339!`].
    pub fn timestamp(&self, column: &str) -> Result<DateTime<Utc>, ApiError> {
        self.parse(column, |text| {
            DateTime::parse_from_rfc3339(text).map(|time| time.with_timezone(&Utc))
        })
    }

    /// Whether `column` is SQL NULL (e.g. the insert of a one-row upsert hit a conflict).
    pub fn is_null(&self, column: &str) -> Result<bool, ApiError> {
        Ok(matches!(self.value(column)?, DbValue::DbNull))
    }
}

/// A row that does not hold what the statement promised: a bug or a schema drift, so 500.
pub fn unexpected(column: &str, error: impl Display) -> ApiError {
    ApiError::internal("a database query returned an unexpected result")
        .with_detail(format!("column `{column}`: {error}"))
}

#[cfg(test)]
mod tests {
    use spin_sdk::pg3::{Column, DbDataType};

    use super::*;

    #[test]
    fn a_query_cut_off_by_a_lost_connection_is_503_and_a_refused_one_500() {
        let status = |detail: &str| from_pg_error(pg3::PgError::QueryFailed(detail.into())).status;
        // As Spin 4.0.2 words them (tokio-postgres's Debug).
        for lost in [
            "Error { kind: Closed, cause: None }",
            "Error { kind: Io, cause: Some(Os { code: 104, kind: ConnectionReset }) }",
            "Error { kind: Db, cause: Some(DbError { severity: \"FATAL\", code: \
             SqlState(E57P01), message: \"terminating connection due to administrator command\" }) }",
            "Error { kind: Db, cause: Some(DbError { code: SqlState(E08006) }) }",
        ] {
            assert_eq!(status(lost), 503, "{lost}");
        }
        for refused in [
            "Error { kind: Db, cause: Some(DbError { code: SqlState(E23505), message: \
             \"duplicate key value violates unique constraint\" }) }",
            "Error { kind: ToSql(0), cause: Some(WrongType) }",
            "ERROR: relation \"cars.nothing\" does not exist (SQLSTATE 42P01)",
        ] {
            assert_eq!(status(refused), 500, "{refused}");
        }
        let lost = from_pg_error(pg3::PgError::ConnectionFailed("refused".into()));
        assert_eq!(lost.status, 503);
    }

    #[test]
    fn a_refusal_is_recognised_by_its_sqlstate_in_either_hosts_words() {
        let ours =
            "ERROR: conflicting key value violates exclusion constraint \"x\" (SQLSTATE 23P01)";
        let spins = "Error { kind: Db, cause: Some(DbError { severity: \"ERROR\", \
                     code: SqlState(E23P01), message: \"conflicting key value\" }) }";
        for detail in [ours, spins] {
            assert!(failed_with(detail, "23P01"), "{detail}");
            assert!(!failed_with(detail, "23505"), "{detail}");
        }
        assert!(!failed_with("Error { kind: Closed, cause: None }", "23P01"));
    }

    #[test]
    fn a_list_leaves_out_the_placeholder_row() {
        let column = |name: &str| Column {
            name: name.to_owned(),
            data_type: DbDataType::Str,
        };
        let rows = RowSet {
            columns: vec![column("id"), column("note")],
            rows: vec![
                vec![DbValue::Str("a".into()), DbValue::DbNull],
                vec![DbValue::DbNull, DbValue::DbNull],
            ],
        };
        let ids = list(rows, "id", |row| row.get::<String>("id")).unwrap();
        assert_eq!(ids, ["a"]);
    }

    #[test]
    fn a_lookup_always_answers_one_row_with_a_marker_first() {
        assert_eq!(
            one_row_of("SELECT c.id::text AS id FROM cars.cars AS c WHERE c.id = $1::text::uuid"),
            "WITH found AS (SELECT c.id::text AS id FROM cars.cars AS c \
             WHERE c.id = $1::text::uuid) SELECT hit.* FROM (SELECT 1) AS one \
             LEFT JOIN (SELECT true AS lookup_found, found.* FROM found) AS hit ON true"
        );
    }
}
