//! Fines as the business sees them: licence plates and registration certificate numbers
//! as car-service stores them, which fines a caller may see (a customer only those on a plate
//! they prove with its certificate, as official look-ups require), and the unpaid list with
//! its total. No spin-sdk here: `cargo test` runs these rules natively.

use std::collections::BTreeSet;
use std::fmt;

use api::json::Object;
use api::money::Money;
use api::{FieldError, FieldErrors};
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

/// A licence plate as car-service stores it: trimmed and upper-cased in every script, so
/// `а123бв 799` names the car registered as `А123БВ 799`. Which characters a plate may hold
/// is car-service's rule at registration; a plate asked about here only has to be one that
/// could have been registered at all: 1 to 12 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LicensePlate(String);

/// What car-service accepts as a plate at registration (the pattern its document gives
/// `license_plate`), so the `?license_plate=` of a check is documented with it too.
pub const PLATE_PATTERN: &str = r"^[ -]*[0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0400-\u0481\u048A-\u04FF][0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0400-\u0481\u048A-\u04FF -]*$";

impl LicensePlate {
    pub const MAX_CHARS: usize = 12;

    /// A plate as car-service would have stored it: 1 to 12 characters of its pattern,
    /// trimmed and upper-cased letter by letter (a letter whose capital is two letters stays).
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let length = s.chars().count();
        if !(1..=Self::MAX_CHARS).contains(&length) || !api::body::pattern_matches(PLATE_PATTERN, s)
        {
            return Err(FieldError::new(
                "license_plate",
                format!(
                    "must be 1 to {} Latin or Cyrillic letters, digits, spaces or dashes",
                    Self::MAX_CHARS
                ),
            ));
        }
        Ok(Self(
            s.trim()
                .chars()
                .map(|c| {
                    let mut upper = c.to_uppercase();
                    match (upper.next(), upper.next()) {
                        (Some(u), None) => u,
                        _ => c,
                    }
                })
                .collect(),
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LicensePlate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A registration certificate (СТС) number in the one form car-service stores it:
/// `99 АА 123456` (2 digits, 2 digits or Cyrillic capitals, 6 digits, single spaces). How
/// people may type it is car-service's rule at registration; here only the stored form is
/// read, from car-service's answers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct CertificateNumber(String);

impl CertificateNumber {
    pub fn parse(s: &str) -> Option<Self> {
        let chars: Vec<char> = s.chars().collect();
        let digits = |part: &[char]| part.iter().all(char::is_ascii_digit);
        let series = |c: &char| c.is_ascii_digit() || ('А'..='Я').contains(c) || *c == 'Ё';
        let valid = chars.len() == 12
            && digits(&chars[..2])
            && chars[2] == ' '
            && chars[3..5].iter().all(series)
            && chars[5] == ' '
            && digits(&chars[6..]);
        valid.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A plate the caller has proven is theirs: one of their cars carries it and has a
/// registration certificate with this number. A fine is theirs when both match.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProvenPlate {
    pub plate: LicensePlate,
    pub certificate: CertificateNumber,
}

/// Which fines a caller may read and pay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Staff: every fine.
    Any,
    /// Everyone else: the fines on the plates they prove, each with its certificate.
    Proven(BTreeSet<ProvenPlate>),
}

impl Visibility {
    /// Whether `fine` is one the caller may see. A fine recorded without a certificate
    /// number matches no certificate.
    pub fn allows(&self, fine: &Fine) -> bool {
        match self {
            Self::Any => true,
            Self::Proven(proven) => proven.iter().any(|p| {
                p.plate.as_str() == fine.license_plate
                    && Some(p.certificate.as_str()) == fine.certificate_number.as_deref()
            }),
        }
    }
}

/// Which plates a fines check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckScope {
    /// Staff asking about one plate: any plate is theirs to check, so car-service need
    /// not be asked whose it is.
    AnyPlate(LicensePlate),
    /// The plates the caller proves on their own cars, or only the one asked for among them.
    OwnCars(Option<LicensePlate>),
}

impl CheckScope {
    /// Without a plate, staff check their own cars like anyone else.
    pub fn new(requested: Option<LicensePlate>, staff: bool) -> Self {
        match requested {
            Some(plate) if staff => Self::AnyPlate(plate),
            requested => Self::OwnCars(requested),
        }
    }
}

/// The proven plates to check: all of them, or those of `requested`, which must be among
/// them. Another user's plate, and one of the caller's own cars without a matching
/// registration certificate, answer exactly like a plate nobody registered.
pub fn pick_own_plates(
    own: BTreeSet<ProvenPlate>,
    requested: Option<LicensePlate>,
) -> Result<BTreeSet<ProvenPlate>, PlateNotFound> {
    match requested {
        None => Ok(own),
        Some(plate) => {
            let picked: BTreeSet<ProvenPlate> =
                own.into_iter().filter(|p| p.plate == plate).collect();
            if picked.is_empty() {
                Err(PlateNotFound(plate))
            } else {
                Ok(picked)
            }
        }
    }
}

/// A plate the caller does not prove (on none of their cars with a certificate): 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlateNotFound(pub LicensePlate);

/// A fine on a licence plate, as stored and as the API returns it (with `paid` spelled out,
/// and without the certificate number, which the caller already knows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fine {
    pub id: Uuid,
    pub license_plate: String,
    /// The registration certificate it was issued against; `None` proves to no one.
    pub certificate_number: Option<String>,
    pub amount: Money,
    pub reason: String,
    pub issued_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    /// payment-service's payment, once paid through it.
    pub payment_id: Option<Uuid>,
}

impl Fine {
    pub fn is_paid(&self) -> bool {
        self.paid_at.is_some()
    }
}

/// A fine on a licence plate, as the API returns it.
// What `Fine` serializes as, and so also its schema in the API document.
#[derive(Serialize, utoipa::ToSchema)]
struct FineJson<'a> {
    id: Uuid,
    license_plate: &'a str,
    amount: Money,
    reason: &'a str,
    issued_at: DateTime<Utc>,
    /// Whether `paid_at` is set.
    paid: bool,
    paid_at: Option<DateTime<Utc>>,
    /// The payment-service payment that paid it (`GET /api/payments/{payment_id}`); null
    /// while unpaid, and for fines marked paid before payments went through payment-service.
    payment_id: Option<Uuid>,
}

impl utoipa::PartialSchema for Fine {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        <FineJson<'static> as utoipa::PartialSchema>::schema()
    }
}

impl utoipa::ToSchema for Fine {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("Fine")
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <FineJson<'static> as utoipa::ToSchema>::schemas(schemas);
    }
}

impl Serialize for Fine {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // `paid` is derived from `paid_at`, so the two can never disagree in an answer.
        FineJson {
            id: self.id,
            license_plate: &self.license_plate,
            amount: self.amount,
            reason: &self.reason,
            issued_at: self.issued_at,
            paid: self.is_paid(),
            paid_at: self.paid_at,
            payment_id: self.payment_id,
        }
        .serialize(serializer)
    }
}

/// The answer to a check: the unpaid fines and what they add up to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UnpaidFines {
    pub items: Vec<Fine>,
    pub total: Money,
}

impl UnpaidFines {
    /// `None` when the total passes [`Money::MAX_KOPECKS`].
    pub fn new(items: Vec<Fine>) -> Option<Self> {
        let total = items
            .iter()
            .try_fold(Money::ZERO, |sum, fine| sum.checked_add(fine.amount))?;
        Some(Self { items, total })
    }
}

/// How a fine is paid: what payment-service is asked to charge with. Named apart in the
/// API document, so it never stands in for payment-service's own `PaymentMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
#[schema(as = FinePaymentMethod, rename_all = "lowercase")]
pub enum PaymentMethod {
    Card,
    Cash,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Cash => "cash",
        }
    }

    /// `POST /api/fines/{fine_id}/pay`'s body: nothing at all (or `null`: a card payment,
    /// as before payments went through payment-service) or [`PayFineRequest`].
    pub fn parse_body(body: Option<&Object>) -> Result<Self, FieldErrors> {
        match body {
            None => Ok(Self::Card),
            Some(body) => {
                let request: PayFineRequest = api::body::parse(body)?;
                Ok(request.payment_method.unwrap_or(Self::Card))
            }
        }
    }
}

/// `POST /api/fines/{fine_id}/pay`'s optional body: documented and read as this type.
/// Unknown properties are ignored.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"payment_method": "card"}))]
pub struct PayFineRequest {
    /// `card` (the default) or `cash`.
    pub payment_method: Option<PaymentMethod>,
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![api::body::Documented::new::<PayFineRequest, _>(|body| {
        PaymentMethod::parse_body(Some(body))
    })]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plate(s: &str) -> LicensePlate {
        LicensePlate::parse(s).unwrap()
    }

    fn proven(all: &[(&str, &str)]) -> BTreeSet<ProvenPlate> {
        all.iter()
            .map(|(p, c)| ProvenPlate {
                plate: plate(p),
                certificate: CertificateNumber::parse(c).unwrap(),
            })
            .collect()
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fine(kopecks: i64) -> Fine {
        Fine {
            id: Uuid::nil(),
            license_plate: "А123БВ799".into(),
            certificate_number: Some("99 АА 123456".into()),
            amount: Money::from_kopecks(kopecks).unwrap(),
            reason: "Превышение скорости".into(),
            issued_at: time("2025-09-12T05:41:00Z"),
            paid_at: None,
            payment_id: None,
        }
    }

    #[test]
    fn plates_are_trimmed_and_upper_cased_like_car_service_stores_them() {
        assert_eq!(plate(" а123бв799 ").as_str(), "А123БВ799");
        assert_eq!(plate("А123БВ799"), plate("а123Бв799"));
        assert_eq!(plate("b-ab-1234").as_str(), "B-AB-1234");
        assert_eq!(plate("ж".repeat(12).as_str()).as_str(), "Ж".repeat(12));
    }

    #[test]
    fn plates_are_what_car_service_registers() {
        for bad in ["", "   ", "1234567890123", "A_1", "粤B12345"] {
            let error = LicensePlate::parse(bad).unwrap_err();
            assert_eq!(error.field, "license_plate", "{bad:?}");
            assert_eq!(
                error.message,
                "must be 1 to 12 Latin or Cyrillic letters, digits, spaces or dashes"
            );
        }
    }

    #[test]
    fn the_document_and_the_parsers_agree() {
        for documented in request_bodies() {
            let found = api::body::disagreements(&documented);
            assert!(found.is_empty(), "{}", found.join("\n"));
        }
    }

    #[test]
    fn staff_asking_about_a_plate_check_it_without_owning_it() {
        assert_eq!(
            CheckScope::new(Some(plate("О777ОО77")), true),
            CheckScope::AnyPlate(plate("О777ОО77"))
        );
        assert_eq!(
            CheckScope::new(Some(plate("О777ОО77")), false),
            CheckScope::OwnCars(Some(plate("О777ОО77")))
        );
    }

    #[test]
    fn without_a_plate_everyone_checks_their_own_cars() {
        assert_eq!(CheckScope::new(None, true), CheckScope::OwnCars(None));
        assert_eq!(CheckScope::new(None, false), CheckScope::OwnCars(None));
    }

    #[test]
    fn own_plates_are_all_checked_or_only_the_one_asked_for() {
        let own = proven(&[
            ("А123БВ799", "99 АА 123456"),
            ("К456МН178", "78 09 456178"),
            ("К456МН178", "78 09 000001"),
        ]);
        assert_eq!(pick_own_plates(own.clone(), None), Ok(own.clone()));
        assert_eq!(
            pick_own_plates(own.clone(), Some(plate("к456мн178"))),
            Ok(proven(&[
                ("К456МН178", "78 09 456178"),
                ("К456МН178", "78 09 000001")
            ]))
        );
        assert_eq!(pick_own_plates(BTreeSet::new(), None), Ok(BTreeSet::new()));
    }

    #[test]
    fn a_plate_the_caller_does_not_prove_is_not_found() {
        let own = proven(&[("А123БВ799", "99 АА 123456")]);
        assert_eq!(
            pick_own_plates(own, Some(plate("О777ОО77"))),
            Err(PlateNotFound(plate("О777ОО77")))
        );
        assert_eq!(
            pick_own_plates(BTreeSet::new(), Some(plate("А123БВ799"))),
            Err(PlateNotFound(plate("А123БВ799")))
        );
    }

    #[test]
    fn certificate_numbers_are_read_only_in_the_stored_form() {
        for good in ["99 АА 123456", "78 09 456178", "77 ЁЯ 000001"] {
            assert_eq!(CertificateNumber::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            "99АА123456",
            "99 AA 123456",
            "99 аа 123456",
            "99 АА 12345",
            "99  АА 123456",
            "9А АА 123456",
        ] {
            assert_eq!(CertificateNumber::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_fine_shows_only_to_its_plate_with_its_certificate_or_to_staff() {
        let seen = |own: &[(&str, &str)], fine: &Fine| Visibility::Proven(proven(own)).allows(fine);
        let on_plate = fine(75_000);
        assert!(seen(&[("А123БВ799", "99 АА 123456")], &on_plate));
        assert!(!seen(&[("А123БВ799", "99 АА 654321")], &on_plate));
        assert!(!seen(&[("О777ОО77", "99 АА 123456")], &on_plate));
        assert!(!seen(&[], &on_plate));
        // The certificate belongs with its plate: one car's plate and another's certificate
        // prove neither.
        assert!(!seen(
            &[("А123БВ799", "77 ОО 777777"), ("О777ОО77", "99 АА 123456")],
            &on_plate
        ));
        let without = Fine {
            certificate_number: None,
            ..fine(75_000)
        };
        assert!(!seen(&[("А123БВ799", "99 АА 123456")], &without));
        assert!(Visibility::Any.allows(&without));
    }

    #[test]
    fn paying_takes_no_body_or_a_payment_method() {
        let body = |value: serde_json::Value| value.as_object().unwrap().clone();
        assert_eq!(PaymentMethod::parse_body(None), Ok(PaymentMethod::Card));
        assert_eq!(
            PaymentMethod::parse_body(Some(&body(json!({})))),
            Ok(PaymentMethod::Card)
        );
        assert_eq!(
            PaymentMethod::parse_body(Some(&body(json!({"payment_method": "cash"})))),
            Ok(PaymentMethod::Cash)
        );
        for bad in [json!("bitcoin"), json!(1), json!("CARD")] {
            let errors =
                PaymentMethod::parse_body(Some(&body(json!({"payment_method": bad})))).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "payment_method");
        }
    }

    #[test]
    fn the_total_is_the_exact_sum_of_the_amounts() {
        let unpaid = UnpaidFines::new(vec![fine(75_000), fine(300_050), fine(1)]).unwrap();
        assert_eq!(unpaid.total, Money::from_kopecks(375_051).unwrap());
        assert_eq!(UnpaidFines::new(Vec::new()).unwrap().total, Money::ZERO);
        let huge = fine(Money::MAX_KOPECKS);
        assert_eq!(UnpaidFines::new(vec![huge, fine(1)]), None);
    }

    #[test]
    fn an_unpaid_fine_serializes_with_paid_false() {
        let unpaid = UnpaidFines::new(vec![fine(75_000)]).unwrap();
        assert_eq!(
            serde_json::to_value(&unpaid).unwrap(),
            json!({
                "items": [{
                    "id": "00000000-0000-0000-0000-000000000000",
                    "license_plate": "А123БВ799",
                    "amount": 750.0,
                    "reason": "Превышение скорости",
                    "issued_at": "2025-09-12T05:41:00Z",
                    "paid": false,
                    "paid_at": null,
                    "payment_id": null
                }],
                "total": 750.0
            })
        );
    }

    #[test]
    fn a_paid_fine_serializes_with_paid_true_and_when() {
        let paid = Fine {
            paid_at: Some(time("2025-10-01T12:00:00.5+03:00")),
            payment_id: Some(Uuid::from_u128(7)),
            ..fine(150_050)
        };
        assert!(paid.is_paid());
        let json = serde_json::to_value(&paid).unwrap();
        assert_eq!(json["paid"], true);
        assert_eq!(json["paid_at"], "2025-10-01T09:00:00.500Z");
        assert_eq!(json["amount"], 1500.5);
        assert_eq!(json["payment_id"], "00000000-0000-0000-0000-000000000007");
        assert!(json.get("certificate_number").is_none());
    }
}
