//! A car's papers: registration certificate, insurance policy, inspection card. A document
//! is JSON metadata with an optional scan, sent base64-encoded inside the same JSON body
//! (one request, no multipart parser in the component). No spin-sdk here.

use api::json::{self, Object};
use api::{FieldError, FieldErrors};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// Which paper it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DocumentKind {
    Registration,
    Insurance,
    Inspection,
}

impl DocumentKind {
    pub const ALL: [Self; 3] = [Self::Registration, Self::Insurance, Self::Inspection];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Registration => "registration",
            Self::Insurance => "insurance",
            Self::Inspection => "inspection",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|kind| kind.as_str() == s)
    }
}

/// The largest scan accepted, decoded. Its base64 form (4/3 larger) stays under the
/// host's default 4 MiB body cap.
pub const MAX_FILE_BYTES: usize = 2 << 20;

/// Scan formats a workshop can open anywhere.
pub const FILE_TYPES: [&str; 3] = ["application/pdf", "image/jpeg", "image/png"];

/// An attached scan, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// `POST /api/cars/{car_id}/documents`'s body as documented; [`NewDocument::parse`] reads it.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "kind": "insurance",
    "number": "XXX 0123456789",
    "issued_at": "2025-03-01",
    "expires_at": "2099-02-28",
    "file": {"name": "policy.pdf", "content_type": "application/pdf", "content_base64": "JVBERi0xLjQK"}
}))]
#[allow(dead_code)]
pub struct DocumentRequest {
    kind: DocumentKind,
    #[schema(min_length = 1, max_length = 64)]
    number: String,
    /// Not in the future.
    issued_at: chrono::NaiveDate,
    /// After `issued_at`.
    expires_at: Option<chrono::NaiveDate>,
    file: Option<FileRequest>,
}

/// An optional scan, sent inline.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct FileRequest {
    #[schema(min_length = 1, max_length = 255)]
    name: String,
    /// `application/pdf`, `image/jpeg` or `image/png`.
    content_type: String,
    /// Standard base64; at most 2 MiB decoded.
    content_base64: String,
}

/// A document to attach, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    pub kind: DocumentKind,
    pub number: String,
    pub issued_at: NaiveDate,
    pub expires_at: Option<NaiveDate>,
    pub file: Option<File>,
}

impl NewDocument {
    /// Reads `{kind, number, issued_at, expires_at?, file?: {name, content_type,
    /// content_base64}}` as of `today`, reporting every invalid field.
    pub fn parse(body: &Object, today: NaiveDate) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let kind = errors.check(json::required_str(body, "kind").and_then(|s| {
            DocumentKind::parse(s.trim()).ok_or_else(|| {
                FieldError::new("kind", "must be one of registration, insurance, inspection")
            })
        }));
        let number = errors.check(json::required_str(body, "number").and_then(parse_number));
        let issued_at = errors.check(
            json::required_str(body, "issued_at")
                .and_then(|s| parse_date("issued_at", s))
                .and_then(|date| {
                    if date > today {
                        Err(FieldError::new("issued_at", "must not be in the future"))
                    } else {
                        Ok(date)
                    }
                }),
        );
        let expires_at = errors.check(
            json::optional_str(body, "expires_at")
                .and_then(|s| s.map(|s| parse_date("expires_at", s)).transpose()),
        );
        if let (Some(issued), Some(Some(expires))) = (issued_at, expires_at) {
            if expires <= issued {
                errors.push(FieldError::new("expires_at", "must be after issued_at"));
            }
        }
        let file = match body.get("file") {
            None | Some(Value::Null) => Some(None),
            Some(value) => errors.check(parse_file(value).map(Some)),
        };
        match (kind, number, issued_at, expires_at, file) {
            (Some(kind), Some(number), Some(issued_at), Some(expires_at), Some(file))
                if errors.is_empty() =>
            {
                Ok(Self {
                    kind,
                    number,
                    issued_at,
                    expires_at,
                    file,
                })
            }
            _ => Err(errors),
        }
    }
}

/// A document number as printed: trimmed, 1 to 64 characters, letters, digits, spaces,
/// dashes and slashes (`99 12 345678`, `ХХХ 0123456789`).
fn parse_number(s: &str) -> Result<String, FieldError> {
    let number = s.trim();
    let length = number.chars().count();
    let allowed = number
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '/'));
    if (1..=64).contains(&length) && allowed {
        Ok(number.to_uppercase())
    } else {
        Err(FieldError::new(
            "number",
            "must be 1 to 64 letters, digits, spaces, dashes or slashes",
        ))
    }
}

fn parse_date(field: &str, s: &str) -> Result<NaiveDate, FieldError> {
    NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
        .map_err(|_| FieldError::new(field, "must be a date like 2025-03-01"))
}

fn parse_file(value: &Value) -> Result<File, FieldError> {
    let invalid = |message: String| FieldError::new("file", message);
    let object = value
        .as_object()
        .ok_or_else(|| invalid("must be {name, content_type, content_base64}".into()))?;
    let text = |name: &str| {
        json::required_str(object, name)
            .map_err(|error| invalid(format!("{name} {}", error.message)))
    };
    let name = text("name")?.trim();
    if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
        return Err(invalid("name must be 1 to 200 printable characters".into()));
    }
    let content_type = text("content_type")?.trim().to_ascii_lowercase();
    if !FILE_TYPES.contains(&content_type.as_str()) {
        return Err(invalid(format!(
            "content_type must be one of {}",
            FILE_TYPES.join(", ")
        )));
    }
    let encoded = text("content_base64")?;
    // Checked before decoding, so an oversized upload costs no decode.
    if encoded.len() > MAX_FILE_BYTES.div_ceil(3) * 4 {
        return Err(invalid(format!(
            "must be at most {} MiB",
            MAX_FILE_BYTES >> 20
        )));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| invalid("content_base64 is not valid base64".into()))?;
    if bytes.is_empty() || bytes.len() > MAX_FILE_BYTES {
        return Err(invalid(format!(
            "must hold 1 byte to {} MiB",
            MAX_FILE_BYTES >> 20
        )));
    }
    Ok(File {
        name: name.to_owned(),
        content_type,
        bytes,
    })
}

/// What is known of a stored scan; its bytes are served by their own route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FileInfo {
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
}

/// A stored document, as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Document {
    pub id: Uuid,
    pub car_id: Uuid,
    pub kind: DocumentKind,
    pub number: String,
    pub issued_at: NaiveDate,
    pub expires_at: Option<NaiveDate>,
    pub file: Option<FileInfo>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 25).unwrap()
    }

    fn object(value: Value) -> Object {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn a_document_without_a_scan_parses() {
        let body = object(json!({"kind": "insurance", "number": "xxx 0123456789",
                                 "issued_at": "2026-01-10", "expires_at": "2027-01-09"}));
        let document = NewDocument::parse(&body, today()).unwrap();
        assert_eq!(document.kind, DocumentKind::Insurance);
        assert_eq!(document.number, "XXX 0123456789");
        assert_eq!(document.expires_at, NaiveDate::from_ymd_opt(2027, 1, 9));
        assert_eq!(document.file, None);
    }

    #[test]
    fn a_scan_is_decoded_and_typed() {
        let body = object(
            json!({"kind": "registration", "number": "99 12 345678", "issued_at": "2021-05-01",
                                 "file": {"name": "sts.pdf", "content_type": "Application/PDF",
                                          "content_base64": "JVBERi0xLjQ="}}),
        );
        let file = NewDocument::parse(&body, today()).unwrap().file.unwrap();
        assert_eq!(file.bytes, b"%PDF-1.4");
        assert_eq!(file.content_type, "application/pdf");
    }

    #[test]
    fn every_bad_field_is_reported() {
        let body = object(
            json!({"kind": "passport", "number": "", "issued_at": "2030-01-01",
                                 "expires_at": "yesterday", "file": {"name": "x.exe",
                                 "content_type": "application/x-msdownload", "content_base64": "AA=="}}),
        );
        let errors = NewDocument::parse(&body, today()).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["kind", "number", "issued_at", "expires_at", "file"]
        );
    }

    #[test]
    fn expiry_must_follow_issue() {
        let body = object(
            json!({"kind": "inspection", "number": "1", "issued_at": "2026-01-10",
                                 "expires_at": "2026-01-10"}),
        );
        let errors = NewDocument::parse(&body, today()).unwrap_err();
        assert_eq!(
            errors.get("expires_at").unwrap().message,
            "must be after issued_at"
        );
    }

    #[test]
    fn scans_are_capped_and_must_be_base64() {
        let file = |content: String| {
            object(
                json!({"kind": "inspection", "number": "1", "issued_at": "2026-01-10",
                          "file": {"name": "a.png", "content_type": "image/png", "content_base64": content}}),
            )
        };
        let too_big =
            base64::engine::general_purpose::STANDARD.encode(vec![0u8; MAX_FILE_BYTES + 1]);
        for bad in [too_big, "***".to_owned(), String::new()] {
            assert!(NewDocument::parse(&file(bad), today()).is_err());
        }
        let just_fits = base64::engine::general_purpose::STANDARD.encode(vec![7u8; MAX_FILE_BYTES]);
        assert_eq!(
            NewDocument::parse(&file(just_fits), today())
                .unwrap()
                .file
                .unwrap()
                .bytes
                .len(),
            MAX_FILE_BYTES
        );
    }
}
