//! A car's papers: registration certificate, insurance policy, inspection card. A document
//! is JSON metadata with an optional scan, sent base64-encoded inside the same JSON body
//! (one request, no multipart parser in the component). No spin-sdk here.

use api::json::Object;
use api::{FieldError, FieldErrors};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use uuid::Uuid;

/// Which paper it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, utoipa::ToSchema)]
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

/// The largest scan accepted, decoded: what the longest `content_base64` the document
/// allows (2796200 characters, under the host's default 4 MiB body cap) decodes to, just
/// under 2 MiB.
pub const MAX_FILE_BYTES: usize = 2796200 / 4 * 3;

/// An attached scan, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub name: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// A registration certificate (СТС) number as it may be typed: 2 digits, 2 digits or
/// Cyrillic letters (Latin look-alikes and lower case allowed), 6 digits, spaces anywhere.
const CERTIFICATE_PATTERN: &str = "^ *[0-9] *[0-9] *[0-9А-ЯЁа-яёABCEHKMOPTXYabcehkmoptxy] *[0-9А-ЯЁа-яёABCEHKMOPTXYabcehkmoptxy] *[0-9] *[0-9] *[0-9] *[0-9] *[0-9] *[0-9] *$";

/// Any other paper's number: Latin or Cyrillic letters, digits, spaces, dashes, slashes,
/// not blank.
const NUMBER_PATTERN: &str = "^[0-9A-Za-z\u{00C0}-\u{00D6}\u{00D8}-\u{00F6}\u{00F8}-\u{024F}\u{0400}-\u{0481}\u{048A}-\u{04FF} /-]*[0-9A-Za-z\u{00C0}-\u{00D6}\u{00D8}-\u{00F6}\u{00F8}-\u{024F}\u{0400}-\u{0481}\u{048A}-\u{04FF}/-][0-9A-Za-z\u{00C0}-\u{00D6}\u{00D8}-\u{00F6}\u{00F8}-\u{024F}\u{0400}-\u{0481}\u{048A}-\u{04FF} /-]*$";

/// `POST /api/cars/{car_id}/documents`'s body: [`DocumentFields`] and the rule that a
/// `registration`'s number is a certificate number. Documented and read as this type (see
/// `api::body`); the dates' rules are checked after, by [`NewDocument::check_dates`].
#[derive(Debug, serde::Deserialize)]
#[serde(transparent)]
pub struct DocumentRequest(DocumentFields);

impl utoipa::PartialSchema for DocumentRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let text = |pattern: &str| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(pattern))
        };
        let kinds = |kinds: &[&str]| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(kinds.iter().copied()))
        };
        let branch = |description: &str, kind: &[&str], pattern: &str| {
            ObjectBuilder::new()
                .description(Some(description))
                .property("kind", kinds(kind))
                .property("number", text(pattern))
                .required("kind")
        };
        api::body::all_of(
            <DocumentFields as utoipa::PartialSchema>::schema(),
            OneOfBuilder::new()
                .item(branch(
                    "A registration certificate's number: 2 digits, 2 digits or Cyrillic \
                     letters (Latin look-alikes read as Cyrillic), 6 digits, spaces anywhere",
                    &["registration"],
                    CERTIFICATE_PATTERN,
                ))
                .item(branch(
                    "Any other paper's number: letters, digits, spaces, dashes, slashes",
                    &["insurance", "inspection"],
                    NUMBER_PATTERN,
                ))
                .into(),
        )
    }
}

impl utoipa::ToSchema for DocumentRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "DocumentRequest".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <DocumentFields as utoipa::ToSchema>::schemas(schemas);
    }
}

/// The properties of a [`DocumentRequest`]. Unknown properties are ignored.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "kind": "insurance",
    "number": "XXX 0123456789",
    "issued_at": "2025-03-01",
    "expires_at": "2099-02-28",
    "file": {"name": "policy.pdf", "content_type": "application/pdf", "content_base64": "JVBERi0xLjQK"}
}))]
pub struct DocumentFields {
    pub kind: DocumentKind,
    /// For `registration`, the certificate (СТС) number, stored as `99 АА 123456`;
    /// otherwise stored trimmed and upper-cased.
    #[schema(min_length = 1, max_length = 64)]
    pub number: String,
    /// Not in the future (else 409 `document_dates_conflict`).
    pub issued_at: NaiveDate,
    /// After `issued_at` (else 409 `document_dates_conflict`).
    pub expires_at: Option<NaiveDate>,
    pub file: Option<FileRequest>,
}

/// An optional scan, sent inline. Unknown properties are ignored.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
pub struct FileRequest {
    /// Stored trimmed; no control characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub name: String,
    pub content_type: FileType,
    /// Standard base64 (with padding) of 1 byte to 2 MiB: at most 2796200 characters.
    #[schema(
        min_length = 4,
        max_length = 2796200,
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})$"
    )]
    pub content_base64: String,
}

/// Scan formats a workshop can open anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
pub enum FileType {
    #[serde(rename = "application/pdf")]
    #[schema(rename = "application/pdf")]
    Pdf,
    #[serde(rename = "image/jpeg")]
    #[schema(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    #[schema(rename = "image/png")]
    Png,
}

impl FileType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }
}

/// Standard base64 with padding, as the pattern of [`FileRequest::content_base64`] has it:
/// unused bits of the last character need not be zero (`AB==` reads as `AA==` does).
const SCAN_BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// A document to attach, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDocument {
    pub kind: DocumentKind,
    pub number: String,
    pub issued_at: NaiveDate,
    pub expires_at: Option<NaiveDate>,
    pub file: Option<File>,
}

/// Dates a document cannot have, as of a day: issued in the future, or expiring before it
/// was issued (409: no schema can state it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatesConflict(pub String);

impl NewDocument {
    /// Reads [`DocumentRequest`], reporting every invalid field.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let DocumentRequest(request) = api::body::parse(body)?;
        let number = match request.kind {
            DocumentKind::Registration => CertificateNumber::parse(&request.number)
                .map_err(FieldErrors::from)?
                .into_string(),
            _ => request.number.trim().to_uppercase(),
        };
        let file = match request.file {
            None => None,
            Some(file) => Some(File {
                name: file.name.trim().to_owned(),
                content_type: file.content_type.as_str().to_owned(),
                bytes: SCAN_BASE64.decode(&file.content_base64).map_err(|_| {
                    FieldErrors::from(FieldError::new(
                        "file.content_base64",
                        "is not valid base64",
                    ))
                })?,
            }),
        };
        Ok(Self {
            kind: request.kind,
            number,
            issued_at: request.issued_at,
            expires_at: request.expires_at,
            file,
        })
    }

    /// The dates' rules as of `today`: issued no later than today, expiring after issue.
    pub fn check_dates(&self, today: NaiveDate) -> Result<(), DatesConflict> {
        if self.issued_at > today {
            return Err(DatesConflict(format!(
                "issued_at {} is in the future",
                self.issued_at
            )));
        }
        match self.expires_at {
            Some(expires) if expires <= self.issued_at => Err(DatesConflict(format!(
                "expires_at {expires} is not after issued_at {}",
                self.issued_at
            ))),
            _ => Ok(()),
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
        if !api::body::pattern_matches(CERTIFICATE_PATTERN, s) {
            return Err(FieldError::new(
                "number",
                "a registration certificate number is 2 digits, 2 digits or Cyrillic letters \
                 and 6 digits, like 99 АА 123456",
            ));
        }
        let chars: Vec<char> = s
            .chars()
            .filter(|c| *c != ' ')
            .map(as_cyrillic_upper)
            .collect();
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
    use serde_json::{json, Value};

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
        let document = NewDocument::parse(&body).unwrap();
        assert_eq!(document.kind, DocumentKind::Insurance);
        assert_eq!(document.number, "XXX 0123456789");
        assert_eq!(document.expires_at, NaiveDate::from_ymd_opt(2027, 1, 9));
        assert_eq!(document.file, None);
        assert_eq!(document.check_dates(today()), Ok(()));
    }

    #[test]
    fn a_scan_is_decoded_and_typed() {
        let body = object(
            json!({"kind": "registration", "number": "99 12 345678", "issued_at": "2021-05-01",
                   "file": {"name": " sts.pdf ", "content_type": "application/pdf",
                            "content_base64": "JVBERi0xLjQ="}}),
        );
        let file = NewDocument::parse(&body).unwrap().file.unwrap();
        assert_eq!(file.bytes, b"%PDF-1.4");
        assert_eq!(
            (file.name.as_str(), file.content_type.as_str()),
            ("sts.pdf", "application/pdf")
        );
    }

    #[test]
    fn every_bad_field_is_reported() {
        let body = object(
            json!({"kind": "passport", "number": "", "issued_at": "2030-01-01",
                   "expires_at": "yesterday", "file": {"name": "x.exe",
                   "content_type": "application/x-msdownload", "content_base64": "AA=="}}),
        );
        let errors = NewDocument::parse(&body).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["expires_at", "file.content_type", "kind", "number"]
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
            "99\tАА 123456",
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
        let registration = NewDocument::parse(&body("registration", "99aa123456"));
        assert_eq!(registration.unwrap().number, "99 АА 123456");
        let errors = NewDocument::parse(&body("registration", "XXX 0123456789")).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "number");
        let policy = NewDocument::parse(&body("insurance", "XXX 0123456789"));
        assert_eq!(policy.unwrap().number, "XXX 0123456789");
        for bad in ["", "   ", "A_1", "№ 5"] {
            let errors = NewDocument::parse(&body("inspection", bad)).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "number", "{bad:?}");
        }
    }

    #[test]
    fn issue_is_not_in_the_future_and_expiry_follows_it() {
        let document = |issued: &str, expires: Option<&str>| {
            NewDocument::parse(&object(json!({"kind": "inspection", "number": "1",
                                              "issued_at": issued, "expires_at": expires})))
            .unwrap()
        };
        assert_eq!(document("2026-11-25", None).check_dates(today()), Ok(()));
        assert_eq!(
            document("2026-11-26", None).check_dates(today()),
            Err(DatesConflict(
                "issued_at 2026-11-26 is in the future".into()
            ))
        );
        assert_eq!(
            document("2026-01-10", Some("2026-01-10")).check_dates(today()),
            Err(DatesConflict(
                "expires_at 2026-01-10 is not after issued_at 2026-01-10".into()
            ))
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
        let file_of = |content: &str| {
            NewDocument::parse(&file(content.to_owned())).map(|d| d.file.unwrap().bytes)
        };
        // Unused bits of the last character are ignored, as the pattern allows them.
        assert_eq!(file_of("AB=="), Ok(vec![0]));
        assert_eq!(file_of("J0mjwPND5gujpk=="), file_of("J0mjwPND5gujpg=="));
        for bad in [too_big, "***".to_owned(), String::new(), "AAA".to_owned()] {
            let errors = NewDocument::parse(&file(bad)).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "file.content_base64");
        }
        let just_fits = base64::engine::general_purpose::STANDARD.encode(vec![7u8; MAX_FILE_BYTES]);
        assert_eq!(
            NewDocument::parse(&file(just_fits))
                .unwrap()
                .file
                .unwrap()
                .bytes
                .len(),
            MAX_FILE_BYTES
        );
    }
}
