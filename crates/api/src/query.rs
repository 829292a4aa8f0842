//! Query strings and keyset pagination, shared by every list endpoint: `?limit=20&cursor=...`
//! becomes a [`Page`], and a page of results answers `{"items":[...],"next_cursor":...}`.
//! Cursors are opaque to clients; inside they are the last item's creation time and id, so a
//! page is stable while rows are added (no OFFSET drift).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{ApiError, FieldError, FieldErrors};

/// The decoded `name=value` pairs of a query string, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Decodes `a=1&b=x%20y` (percent-escapes and `+` as space). Bad escapes or bytes that are
    /// not UTF-8 are 400 `malformed_query`.
    pub fn parse(raw: &str) -> Result<Self, ApiError> {
        let mut pairs = Vec::new();
        for part in raw.split('&').filter(|part| !part.is_empty()) {
            let (name, value) = part.split_once('=').unwrap_or((part, ""));
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(Self(pairs))
    }

    /// `name` as a UUID (hyphenated, the document's `format: uuid`), if given; anything
    /// else given, the empty string too, is refused naming it.
    pub fn uuid(&self, name: &str) -> Result<Option<Uuid>, FieldError> {
        self.get(name)
            .map(|raw| {
                if crate::body::is_uuid(raw) {
                    Uuid::parse_str(raw).map_err(|_| FieldError::new(name, "must be a UUID"))
                } else {
                    Err(FieldError::new(name, "must be a UUID"))
                }
            })
            .transpose()
    }

    /// `name` as a boolean: `true` or `false` (how OpenAPI clients write a boolean query
    /// parameter), `false` when absent; anything else given, the empty string too, is
    /// refused naming it.
    pub fn flag(&self, name: &str) -> Result<bool, FieldError> {
        match self.get(name) {
            None | Some("false") => Ok(false),
            Some("true") => Ok(true),
            Some(_) => Err(FieldError::new(name, "must be true or false")),
        }
    }

    /// The first value of `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

fn decode(s: &str) -> Result<String, ApiError> {
    let malformed = || ApiError::bad_request("malformed_query", "the query string is not valid");
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(malformed)?;
                let hex = std::str::from_utf8(hex).map_err(|_| malformed())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| malformed())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| malformed())
}

/// Where a page starts: after the item with this creation time and id (newest first).
/// Written `<microseconds since 1970>~<id>`: any text of that shape (the pattern of
/// [`crate::openapi::PageParams`]) is a position in the list, whether or not this API wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    const SEPARATOR: char = '~';
    /// At most 16 digits of microseconds: about 317 years either side of 1970.
    const MAX_DIGITS: usize = 16;

    pub fn encode(&self) -> String {
        format!(
            "{}{}{}",
            self.created_at.timestamp_micros(),
            Self::SEPARATOR,
            self.id
        )
    }

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                "cursor",
                "must be a next_cursor this API returned (microseconds~UUID)",
            )
        };
        let (micros, id) = s.split_once(Self::SEPARATOR).ok_or_else(invalid)?;
        let digits = micros.strip_prefix('-').unwrap_or(micros);
        if digits.is_empty()
            || digits.len() > Self::MAX_DIGITS
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !crate::body::is_uuid(id)
        {
            return Err(invalid());
        }
        let micros: i64 = micros.parse().map_err(|_| invalid())?;
        Ok(Self {
            created_at: DateTime::from_timestamp_micros(micros).ok_or_else(invalid)?,
            id: Uuid::parse_str(id).map_err(|_| invalid())?,
        })
    }

    /// The creation time as SQL binds it (`$n::text::timestamptz`).
    pub fn created_at_sql(&self) -> String {
        self.created_at.to_rfc3339_opts(SecondsFormat::Micros, true)
    }
}

/// Which page of a list to return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub after: Option<Cursor>,
}

impl Page {
    pub const DEFAULT_LIMIT: u32 = 20;
    pub const MAX_LIMIT: u32 = 100;

    /// Reads `limit` (1 to 100, default 20) and `cursor` from `query`.
    pub fn parse(query: &Query) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let limit = errors.check(match query.get("limit") {
            None => Ok(Self::DEFAULT_LIMIT),
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=Self::MAX_LIMIT).contains(limit))
                .ok_or_else(|| {
                    FieldError::new(
                        "limit",
                        format!("must be a whole number from 1 to {}", Self::MAX_LIMIT),
                    )
                }),
        });
        // An empty cursor is the first page, as an absent one is.
        let after = errors.check(
            query
                .get("cursor")
                .filter(|cursor| !cursor.is_empty())
                .map(Cursor::parse)
                .transpose(),
        );
        match (limit, after) {
            (Some(limit), Some(after)) => Ok(Self { limit, after }),
            _ => Err(errors),
        }
    }

    /// How many rows to fetch: one more than the page, to learn whether another follows.
    pub fn fetch(&self) -> i64 {
        i64::from(self.limit) + 1
    }

    /// Cuts `rows` (fetched with [`Page::fetch`], newest first) to the page and names the
    /// cursor of the next one, if any.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> Cursor) -> PageOf<T> {
        let more = rows.len() > self.limit as usize;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| key(last).encode())
        } else {
            None
        };
        PageOf {
            items: rows,
            next_cursor,
        }
    }
}

/// One page of a list: `{"items":[...],"next_cursor":"..." | null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PageOf<T> {
    #[schema(inline)]
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_decode_escapes_and_plus() {
        let query = Query::parse("limit=5&cursor=a%7Eb&name=x+y&flag").unwrap();
        assert_eq!(query.get("limit"), Some("5"));
        assert_eq!(query.get("cursor"), Some("a~b"));
        assert_eq!(query.get("name"), Some("x y"));
        assert_eq!(query.get("flag"), Some(""));
        assert_eq!(query.get("missing"), None);
        assert_eq!(Query::parse("").unwrap(), Query::default());
    }

    #[test]
    fn flags_are_true_or_false_and_off_when_absent() {
        let flag = |raw: &str| Query::parse(raw).unwrap().flag("all");
        assert_eq!(flag(""), Ok(false));
        assert_eq!(flag("all=false"), Ok(false));
        assert_eq!(flag("all=true"), Ok(true));
        for bad in ["all", "all=", "all=1", "all=TRUE", "all=yes"] {
            assert_eq!(flag(bad).unwrap_err().field, "all", "{bad}");
        }
    }

    #[test]
    fn bad_escapes_are_400() {
        for raw in ["a=%", "a=%4", "a=%zz", "a=%ff"] {
            let error = Query::parse(raw).unwrap_err();
            assert_eq!(
                (error.status, error.code),
                (400, "malformed_query"),
                "{raw}"
            );
        }
    }

    #[test]
    fn page_defaults_and_bounds() {
        let page = Page::parse(&Query::default()).unwrap();
        assert_eq!((page.limit, page.after), (20, None));
        assert_eq!(
            Page::parse(&Query::parse("limit=100").unwrap())
                .unwrap()
                .limit,
            100
        );
        for bad in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=ten",
            "cursor=nope",
        ] {
            assert!(Page::parse(&Query::parse(bad).unwrap()).is_err(), "{bad}");
        }
        assert_eq!(
            Page::parse(&Query::parse("cursor=").unwrap())
                .unwrap()
                .after,
            None
        );
    }

    #[test]
    fn cursors_round_trip_to_the_microsecond() {
        let cursor = Cursor {
            created_at: DateTime::parse_from_rfc3339("2026-11-25T16:01:26.430921Z")
                .unwrap()
                .with_timezone(&Utc),
            id: Uuid::from_u128(42),
        };
        let text = cursor.encode();
        assert_eq!(
            text,
            "1795622486430921~00000000-0000-0000-0000-00000000002a"
        );
        assert_eq!(Cursor::parse(&text).unwrap(), cursor);
        assert_eq!(cursor.created_at_sql(), "2026-11-25T16:01:26.430921Z");
        // Any text of the documented shape is a position; other text is refused.
        for ok in [
            "0~00000000-0000-0000-0000-000000000000",
            "-9999999999999999~ABCDEF00-0000-0000-0000-000000000000",
        ] {
            assert!(Cursor::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "~",
            "1~x",
            "12345678901234567~00000000-0000-0000-0000-000000000000",
            "1.5~00000000-0000-0000-0000-000000000000",
        ] {
            assert!(Cursor::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn finish_cuts_the_extra_row_into_a_cursor() {
        let page = Page {
            limit: 2,
            after: None,
        };
        let key = |n: &u128| Cursor {
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            id: Uuid::from_u128(*n),
        };
        let full = page.finish(vec![3, 2, 1], key);
        assert_eq!(full.items, [3, 2]);
        assert_eq!(full.next_cursor, Some(key(&2).encode()));
        let last = page.finish(vec![1, 0], key);
        assert_eq!((last.items, last.next_cursor), (vec![1, 0], None));
    }
}
