//! Postgres values to `spin:postgres/postgres@3.0.0` and back, as Spin 4.0.2 converts them
//! (the table is docs/spin-compatibility.md): a column Spin cannot read fails the whole query
//! with `query-failed`, and a parameter it cannot build fails before the statement is sent.

use crate::bindings::spin::postgres::postgres::{self as pg, Column, DbDataType, DbValue, RowSet};
use bytes::BytesMut;
use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Timelike, Utc};
use postgres_protocol::types as protocol;
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type};
use tokio_postgres::Row;

/// Spin stops reading a result once its values pass this many bytes, counted as below.
pub const RESULT_LIMIT_BYTES: usize = 128 << 20;

/// What Spin counts for every value, whatever it holds: the size of its newest interface's
/// value enum (64 bytes on 64-bit targets), to which the bytes a value owns are added.
const VALUE_BYTES: usize = 64;

/// What Spin counts for the row set itself before the first row.
const ROW_SET_BYTES: usize = 48;

/// How Spin 4.0.2 reads a column of one Postgres type for a pg3 guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reading {
    Boolean,
    Int16,
    Int32,
    Int64,
    Floating32,
    Floating64,
    /// `text`, `varchar` and `bpchar` only (not `name`, not `"char"`).
    Str,
    Binary,
    Date,
    Time,
    /// `timestamp` and `timestamptz` alike: Spin reads both as a date and time without a
    /// zone, which a `timestamptz` value never is, so every `timestamptz` value fails,
    /// NULL included (the type is checked before the value).
    Datetime,
    // The types only Spin's newer interfaces carry. They are decoded as Spin decodes them,
    // so a value it cannot hold (a NaN numeric, a two-dimensional array) fails here too,
    // then a pg3 guest sees `unsupported` (or `db-null`).
    Uuid,
    Jsonb,
    Decimal,
    RangeInt32,
    RangeInt64,
    RangeDecimal,
    ArrayInt32,
    ArrayInt64,
    ArrayDecimal,
    ArrayStr,
    Interval,
    /// Any other type: its raw bytes, shown as `unsupported`, or `db-null` for NULL.
    Other,
}

impl Reading {
    pub fn of(ty: &Type) -> Self {
        match *ty {
            Type::BOOL => Self::Boolean,
            Type::INT2 => Self::Int16,
            Type::INT4 => Self::Int32,
            Type::INT8 => Self::Int64,
            Type::FLOAT4 => Self::Floating32,
            Type::FLOAT8 => Self::Floating64,
            Type::TEXT | Type::VARCHAR | Type::BPCHAR => Self::Str,
            Type::BYTEA => Self::Binary,
            Type::DATE => Self::Date,
            Type::TIME => Self::Time,
            Type::TIMESTAMP | Type::TIMESTAMPTZ => Self::Datetime,
            Type::UUID => Self::Uuid,
            Type::JSONB => Self::Jsonb,
            Type::NUMERIC => Self::Decimal,
            Type::INT4_RANGE => Self::RangeInt32,
            Type::INT8_RANGE => Self::RangeInt64,
            Type::NUM_RANGE => Self::RangeDecimal,
            Type::INT4_ARRAY => Self::ArrayInt32,
            Type::INT8_ARRAY => Self::ArrayInt64,
            Type::NUMERIC_ARRAY => Self::ArrayDecimal,
            Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::BPCHAR_ARRAY => Self::ArrayStr,
            Type::INTERVAL => Self::Interval,
            _ => Self::Other,
        }
    }

    /// The column's type as a pg3 guest sees it.
    pub fn data_type(self) -> DbDataType {
        match self {
            Self::Boolean => DbDataType::Boolean,
            Self::Int16 => DbDataType::Int16,
            Self::Int32 => DbDataType::Int32,
            Self::Int64 => DbDataType::Int64,
            Self::Floating32 => DbDataType::Floating32,
            Self::Floating64 => DbDataType::Floating64,
            Self::Str => DbDataType::Str,
            Self::Binary => DbDataType::Binary,
            Self::Date => DbDataType::Date,
            Self::Time => DbDataType::Time,
            Self::Datetime => DbDataType::Datetime,
            _ => DbDataType::Other,
        }
    }
}

/// A value as a pg3 guest gets it, and the bytes Spin counts for it.
type Read = (DbValue, usize);

fn value<'a, T: FromSql<'a>>(
    row: &'a Row,
    i: usize,
    to_pg3: impl FnOnce(T) -> Read,
) -> Result<Read, tokio_postgres::Error> {
    Ok(row
        .try_get::<_, Option<T>>(i)?
        .map_or((DbValue::DbNull, 0), to_pg3))
}

/// A value pg3 cannot carry, once decoded: `owned` is what Spin's newer value holds.
fn hidden<T>(owned: impl FnOnce(T) -> usize) -> impl FnOnce(T) -> Read {
    move |v| (DbValue::Unsupported, owned(v))
}

fn string_list_bytes(items: impl Iterator<Item = Option<usize>>) -> usize {
    items
        .map(|len| std::mem::size_of::<Option<String>>() + len.unwrap_or(0))
        .sum()
}

/// Column `i` of `row`, read the way `reading` says.
pub fn read(row: &Row, i: usize, reading: Reading) -> Result<Read, tokio_postgres::Error> {
    match reading {
        Reading::Boolean => value(row, i, |v| (DbValue::Boolean(v), 0)),
        Reading::Int16 => value(row, i, |v| (DbValue::Int16(v), 0)),
        Reading::Int32 => value(row, i, |v| (DbValue::Int32(v), 0)),
        Reading::Int64 => value(row, i, |v| (DbValue::Int64(v), 0)),
        Reading::Floating32 => value(row, i, |v| (DbValue::Floating32(v), 0)),
        Reading::Floating64 => value(row, i, |v| (DbValue::Floating64(v), 0)),
        Reading::Str => value(row, i, |v: String| {
            let n = v.len();
            (DbValue::Str(v), n)
        }),
        Reading::Binary => value(row, i, |v: Vec<u8>| {
            let n = v.len();
            (DbValue::Binary(v), n)
        }),
        Reading::Date => value(row, i, |d: NaiveDate| {
            (DbValue::Date((d.year(), d.month() as u8, d.day() as u8)), 0)
        }),
        Reading::Time => value(row, i, |t: NaiveTime| {
            let time = (
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond(),
            );
            (DbValue::Time(time), 0)
        }),
        Reading::Datetime => value(row, i, |t: NaiveDateTime| (datetime(t), 0)),
        Reading::Uuid => value(row, i, hidden(|u: uuid::Uuid| u.to_string().len())),
        Reading::Jsonb => value(
            row,
            i,
            hidden(|j: serde_json::Value| serde_json::to_vec(&j).map_or(0, |b| b.len())),
        ),
        Reading::Decimal => value(row, i, hidden(|d: Numeric| d.text_len)),
        Reading::RangeInt32 => value(row, i, hidden(|_: Range<i32>| 0)),
        Reading::RangeInt64 => value(row, i, hidden(|_: Range<i64>| 0)),
        Reading::RangeDecimal => value(row, i, hidden(|_: Range<Numeric>| 0)),
        Reading::ArrayInt32 => value(
            row,
            i,
            hidden(|a: Vec<Option<i32>>| a.len() * std::mem::size_of::<Option<i32>>()),
        ),
        Reading::ArrayInt64 => value(
            row,
            i,
            hidden(|a: Vec<Option<i64>>| a.len() * std::mem::size_of::<Option<i64>>()),
        ),
        Reading::ArrayDecimal => value(
            row,
            i,
            hidden(|a: Vec<Option<Numeric>>| {
                string_list_bytes(a.iter().map(|d| d.as_ref().map(|d| d.text_len)))
            }),
        ),
        Reading::ArrayStr => value(
            row,
            i,
            hidden(|a: Vec<Option<String>>| {
                string_list_bytes(a.iter().map(|s| s.as_ref().map(String::len)))
            }),
        ),
        Reading::Interval => value(row, i, hidden(|_: Interval| 0)),
        Reading::Other => value(row, i, hidden(|raw: Raw| raw.0)),
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

/// The rows of a query as a pg3 guest gets them. A column that cannot be read fails the
/// whole query with `query-failed`, as under Spin; the log names the column and its type.
pub fn row_set(columns: &[tokio_postgres::Column], rows: &[Row]) -> Result<RowSet, pg::Error> {
    let readings: Vec<Reading> = columns.iter().map(|c| Reading::of(c.type_())).collect();
    let mut counted = ROW_SET_BYTES;
    let mut rows_out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut values = Vec::with_capacity(columns.len());
        for (i, reading) in readings.iter().enumerate() {
            let (value, owned) = read(row, i, *reading).map_err(|e| unreadable(&columns[i], e))?;
            counted += VALUE_BYTES + owned;
            values.push(value);
        }
        if counted > RESULT_LIMIT_BYTES {
            return Err(pg::Error::QueryFailed(format!(
                "the result is larger than Spin's limit of {RESULT_LIMIT_BYTES} bytes"
            )));
        }
        rows_out.push(values);
    }
    Ok(RowSet {
        columns: columns
            .iter()
            .zip(&readings)
            .map(|(c, reading)| Column {
                name: c.name().to_string(),
                data_type: reading.data_type(),
            })
            .collect(),
        rows: rows_out,
    })
}

/// An error and the errors under it, e.g. "error deserializing column 6: cannot convert ...".
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

fn unreadable(column: &tokio_postgres::Column, e: tokio_postgres::Error) -> pg::Error {
    let ty = column.type_().name();
    let e = with_causes(&e);
    tracing::error!(
        column = column.name(),
        pg_type = ty,
        "a query selected a column that Spin 4.0.2 cannot hand to a pg3 guest ({e}); \
         convert it in SQL, e.g. `::text` or `AT TIME ZONE 'UTC'` for a timestamptz"
    );
    pg::Error::QueryFailed(format!("{e} (column `{}` of type {ty})", column.name()))
}

/// A `numeric` that Spin's decimal type can hold: neither NaN nor ±Infinity, and an integer
/// part that fits in 96 bits. `text_len` is the length of the decimal's text, which Spin
/// keeps (at most 28 digits after the point).
struct Numeric {
    text_len: usize,
}

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        // Binary form: digit count, weight (of the first base-10000 digit), sign, display
        // scale, then the base-10000 digits.
        let word = |i: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
            raw.get(2 * i..2 * i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a numeric value is cut short".into())
        };
        let (digits, weight, sign, scale) = (word(0)?, word(1)? as i16, word(2)?, word(3)?);
        if sign & 0xC000 == 0xC000 {
            let special = match sign {
                0xC000 => "NaN",
                0xD000 => "Infinity",
                0xF000 => "-Infinity",
                _ => "a special value",
            };
            return Err(format!("a decimal cannot hold {special}").into());
        }
        const MAX: u128 = (1 << 96) - 1;
        let mut integer: u128 = 0;
        for k in 0..i32::from(weight) + 1 {
            let digit = if k < i32::from(digits) {
                word(4 + k as usize)?
            } else {
                0
            };
            integer = integer
                .checked_mul(10_000)
                .and_then(|v| v.checked_add(digit.into()))
                .filter(|v| *v <= MAX)
                .ok_or("the numeric is larger than a decimal holds (96 bits)")?;
        }
        let fraction = match scale.min(28) {
            0 => 0,
            n => 1 + usize::from(n),
        };
        Ok(Self {
            text_len: usize::from(sign == 0x4000) + integer.to_string().len() + fraction,
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// A value Spin keeps as raw bytes: how many.
struct Raw(usize);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Self(raw.len()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// An `interval`: Spin takes exactly 16 bytes (microseconds, days, months).
struct Interval;

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if raw.len() == 16 {
            Ok(Self)
        } else {
            Err(format!("an interval is 16 bytes, not {}", raw.len()).into())
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::INTERVAL
    }
}

/// A range whose bounds are decoded as `T`, the way Spin decodes them, and then dropped.
struct Range<T>(std::marker::PhantomData<T>);

impl<'a, T: FromSql<'a>> FromSql<'a> for Range<T> {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let Kind::Range(element) = ty.kind() else {
            return Err(format!("{ty} is not a range type").into());
        };
        if let protocol::Range::Nonempty(lower, upper) = protocol::range_from_sql(raw)? {
            for bound in [lower, upper] {
                match bound {
                    protocol::RangeBound::Inclusive(v) | protocol::RangeBound::Exclusive(v) => {
                        match v {
                            Some(bytes) => drop(T::from_sql(element, bytes)?),
                            None => drop(T::from_sql_null(element)?),
                        }
                    }
                    protocol::RangeBound::Unbounded => {}
                }
            }
        }
        Ok(Self(std::marker::PhantomData))
    }

    fn accepts(ty: &Type) -> bool {
        matches!(ty.kind(), Kind::Range(element) if T::accepts(element))
    }
}

/// A guest parameter as the Rust value Spin binds for it. Each binds only to the Postgres
/// types that value's own conversion accepts: a `datetime` to `timestamp` alone, a Unix
/// `timestamp` to `timestamptz` alone, a `str` to text types (not `uuid`), `int8` to `"char"`.
#[derive(Debug)]
pub enum Param {
    Bool(bool),
    I8(i8),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    Str(String),
    Binary(Vec<u8>),
    Date(NaiveDate),
    Time(NaiveTime),
    Datetime(NaiveDateTime),
    Timestamp(DateTime<Utc>),
    Null,
}

/// Builds the parameters of one statement, or says which one is invalid (an impossible
/// date or time, a Unix time out of range). The caller picks the error variant: Spin
/// answers `bad-parameter` for a query and `value-conversion-failed` for an execute.
pub fn params(values: Vec<pg::ParameterValue>) -> Result<Vec<Param>, String> {
    values.into_iter().map(param).collect()
}

fn param(value: pg::ParameterValue) -> Result<Param, String> {
    use pg::ParameterValue as V;
    let date = |y: i32, m: u8, d: u8| {
        NaiveDate::from_ymd_opt(y, m.into(), d.into())
            .ok_or_else(|| format!("the date y={y} m={m} d={d} does not exist"))
    };
    let time = |h: u8, m: u8, s: u8, ns: u32| {
        NaiveTime::from_hms_nano_opt(h.into(), m.into(), s.into(), ns)
            .ok_or_else(|| format!("the time {h}:{m}:{s} and {ns} ns does not exist"))
    };
    Ok(match value {
        V::Boolean(v) => Param::Bool(v),
        V::Int8(v) => Param::I8(v),
        V::Int16(v) => Param::I16(v),
        V::Int32(v) => Param::I32(v),
        V::Int64(v) => Param::I64(v),
        V::Floating32(v) => Param::F32(v),
        V::Floating64(v) => Param::F64(v),
        V::Str(v) => Param::Str(v),
        V::Binary(v) => Param::Binary(v),
        V::Date((y, m, d)) => Param::Date(date(y, m, d)?),
        V::Time((h, m, s, ns)) => Param::Time(time(h, m, s, ns)?),
        V::Datetime((y, mo, d, h, mi, s, ns)) => {
            Param::Datetime(NaiveDateTime::new(date(y, mo, d)?, time(h, mi, s, ns)?))
        }
        V::Timestamp(secs) => Param::Timestamp(
            DateTime::from_timestamp(secs, 0)
                .ok_or_else(|| format!("the Unix time {secs} is out of range"))?,
        ),
        V::DbNull => Param::Null,
    })
}

impl Param {
    fn inner(&self) -> Option<&(dyn ToSql + Sync)> {
        Some(match self {
            Param::Bool(v) => v,
            Param::I8(v) => v,
            Param::I16(v) => v,
            Param::I32(v) => v,
            Param::I64(v) => v,
            Param::F32(v) => v,
            Param::F64(v) => v,
            Param::Str(v) => v,
            Param::Binary(v) => v,
            Param::Date(v) => v,
            Param::Time(v) => v,
            Param::Datetime(v) => v,
            Param::Timestamp(v) => v,
            Param::Null => return None,
        })
    }
}

impl ToSql for Param {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        self.to_sql_checked(ty, out)
    }

    fn accepts(_: &Type) -> bool {
        // The value decides (see `to_sql_checked`); NULL binds to anything.
        true
    }

    fn to_sql_checked(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.inner() {
            // The value's own check, so a refusal reads as tokio-postgres words it for Spin.
            Some(value) => value.to_sql_checked(ty, out),
            None => Ok(IsNull::Yes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pg::ParameterValue as V;

    fn binds(value: V, ty: &Type) -> bool {
        let param = param(value).expect("a valid parameter");
        param.to_sql_checked(ty, &mut BytesMut::new()).is_ok()
    }

    #[test]
    fn each_parameter_binds_only_where_spin_binds_it() {
        let datetime = || V::Datetime((2026, 11, 25, 10, 30, 0, 0));
        assert!(binds(datetime(), &Type::TIMESTAMP));
        assert!(!binds(datetime(), &Type::TIMESTAMPTZ));
        assert!(binds(V::Timestamp(1_700_000_000), &Type::TIMESTAMPTZ));
        assert!(!binds(V::Timestamp(1_700_000_000), &Type::TIMESTAMP));
        assert!(binds(V::Int8(1), &Type::CHAR));
        assert!(!binds(V::Int8(1), &Type::INT2));
        assert!(!binds(V::Int32(1), &Type::INT8));
        assert!(binds(V::Str("x".into()), &Type::NAME));
        assert!(!binds(V::Str("x".into()), &Type::UUID));
        assert!(!binds(V::Str("{}".into()), &Type::JSONB));
        assert!(!binds(V::Binary(vec![1]), &Type::TEXT));
        assert!(binds(V::DbNull, &Type::UUID));
    }

    #[test]
    fn impossible_dates_times_and_unix_times_are_refused_before_binding() {
        assert!(param(V::Date((2026, 2, 30))).is_err());
        assert!(param(V::Time((24, 0, 0, 0))).is_err());
        assert!(param(V::Datetime((2026, 13, 1, 0, 0, 0, 0))).is_err());
        assert!(param(V::Timestamp(i64::MAX)).is_err());
        assert!(param(V::Date((-4000, 1, 1))).is_ok());
    }

    #[test]
    fn pg3_sees_only_the_types_spin_maps_to_it() {
        let data_type = |ty: &Type| Reading::of(ty).data_type();
        assert!(matches!(
            data_type(&Type::TIMESTAMPTZ),
            DbDataType::Datetime
        ));
        assert!(matches!(data_type(&Type::BPCHAR), DbDataType::Str));
        for other in [
            Type::NAME,
            Type::CHAR,
            Type::JSON,
            Type::UUID,
            Type::NUMERIC,
            Type::OID,
        ] {
            assert!(matches!(data_type(&other), DbDataType::Other), "{other}");
        }
        assert_eq!(Reading::of(&Type::INT2_ARRAY), Reading::Other);
        assert_eq!(Reading::of(&Type::VARCHAR_ARRAY), Reading::ArrayStr);
    }
}
