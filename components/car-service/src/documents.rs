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
    /// For `registration`, the certificate (СТС) number: 2 digits, 2 digits or Cyrillic
    /// letters, 6 digits (`99 АА 123456`; spaces optional, Latin look-alikes read as
    /// Cyrillic), stored as `99 АА 123456`. Otherwise letters, digits, spaces, dashes,
    /// slashes.
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
        let number = errors.check(json::required_str(body, "number").and_then(|s| match kind {
            Some(DocumentKind::Registration) => {
                CertificateNumber::parse(s).map(CertificateNumber::into_string)
            }
            _ => parse_number(s),
        }));
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

/// A vehicle registration certificate (СТС) number: 2 digits, then 2 digits or Cyrillic
/// letters (the series), then 6 digits. Typed forms are forgiving: spaces anywhere are
/// ignored, letters are upper-cased, and the Latin letters that look like Cyrillic ones
/// (A B C E H K M O P T X Y) count as those Cyrillic letters. Stored in one form,
/// `99 АА 123456`, so fines-service compares it with a fine's number as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateNumber(String);

impl CertificateNumber {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let chars: Vec<char> = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(as_cyrillic_upper)
            .collect();
        let digits = |part: &[char]| part.iter().all(char::is_ascii_digit);
        let valid = chars.len() == 10
            && digits(&chars[..2])
            && chars[2..4]
                .iter()
                .all(|&c| c.is_ascii_digit() || is_cyrillic_capital(c))
            && digits(&chars[4..]);
        if !valid {
            return Err(FieldError::new(
                "number",
                "a registration certificate number is 2 digits, 2 digits or Cyrillic letters \
                 and 6 digits, like 99 АА 123456",
            ));
        }
        let part = |range: std::ops::Range<usize>| chars[range].iter().collect::<String>();
        Ok(Self(format!(
            "{} {} {}",
            part(0..2),
            part(2..4),
            part(4..10)
        )))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Upper-cased, with a Latin look-alike of a Cyrillic capital replaced by it.
fn as_cyrillic_upper(c: char) -> char {
    let upper = c.to_uppercase().next().unwrap_or(c);
    match upper {
        'A' => 'А',
        'B' => 'В',
        'C' => 'С',
        'E' => 'Е',
        'H' => 'Н',
        'K' => 'К',
        'M' => 'М',
        'O' => 'О',
        'P' => 'Р',
        'T' => 'Т',
        'X' => 'Х',
        'Y' => 'У',
        other => other,
    }
}

fn is_cyrillic_capital(c: char) -> bool {
    ('А'..='Я').contains(&c) || c == 'Ё'
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

/// A registration certificate of a car, with the car's plate: the pair a fine is looked up
/// by, which fines-service reads to learn which plates a caller can prove are theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Registration {
    pub car_id: Uuid,
    pub license_plate: String,
    /// As stored: `99 АА 123456`.
    #[schema(example = "99 АА 123456")]
    pub certificate_number: String,
    /// The `registration` document it comes from.
    pub document_id: Uuid,
    pub issued_at: NaiveDate,
    /// When the document was attached (the list's order).
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
    fn registration_certificate_numbers_are_read_in_their_typed_forms() {
        for typed in [
            "99 АА 123456",
            "99АА123456",
            "  99 аа 123 456 ",
            "99 AA 123456",
            "99 aA 123456",
        ] {
            assert_eq!(
                CertificateNumber::parse(typed).unwrap().as_str(),
                "99 АА 123456",
                "{typed:?}"
            );
        }
        assert_eq!(
            CertificateNumber::parse("7809456178").unwrap().as_str(),
            "78 09 456178"
        );
        assert_eq!(
            CertificateNumber::parse("50 ЕК 001750").unwrap().as_str(),
            "50 ЕК 001750"
        );
        assert_eq!(
            CertificateNumber::parse("77 ЁЯ 000001").unwrap().as_str(),
            "77 ЁЯ 000001"
        );
    }

    #[test]
    fn registration_certificate_numbers_have_one_shape() {
        for bad in [
            "",
            "99 АА 12345",
            "99 АА 1234567",
            "9А АА 123456",
            "99 AD 123456",
            "99 АА 12345Б",
            "99-АА-123456",
            "99 ΑΑ 123456",
            "99 АА１23456",
        ] {
            let error = CertificateNumber::parse(bad).unwrap_err();
            assert_eq!(error.field, "number", "{bad:?}");
        }
    }

    #[test]
    fn a_registration_takes_a_certificate_number_other_papers_any_number() {
        let body = |kind: &str, number: &str| {
            object(json!({"kind": kind, "number": number, "issued_at": "2021-05-01"}))
        };
        let registration = NewDocument::parse(&body("registration", "99aa123456"), today());
        assert_eq!(registration.unwrap().number, "99 АА 123456");
        let errors =
            NewDocument::parse(&body("registration", "XXX 0123456789"), today()).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "number");
        let policy = NewDocument::parse(&body("insurance", "XXX 0123456789"), today());
        assert_eq!(policy.unwrap().number, "XXX 0123456789");
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
