//! Fines as the business sees them: licence plates normalised the way car-service stores
//! them, which plates a caller may look into, and the unpaid list with its total.
//! No spin-sdk here: `cargo test` runs these rules natively.

use std::collections::BTreeSet;
use std::fmt;

use api::money::Money;
use api::FieldError;
use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

/// A licence plate as car-service stores it: trimmed and upper-cased in every script, so
/// `а123бв 799` names the car registered as `А123БВ 799`. Which characters a plate may hold
/// is car-service's rule at registration; a plate asked about here only has to be one that
/// could have been registered at all: 1 to 12 characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LicensePlate(String);

impl LicensePlate {
    pub const MAX_CHARS: usize = 12;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let plate = s.trim().to_uppercase();
        if (1..=Self::MAX_CHARS).contains(&plate.chars().count()) {
            Ok(Self(plate))
        } else {
            Err(FieldError::new(
                "license_plate",
                format!("must be 1 to {} characters", Self::MAX_CHARS),
            ))
        }
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

/// Which plates a fines check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckScope {
    /// Staff asking about one plate: any plate is theirs to check, so car-service need
    /// not be asked whose it is.
    AnyPlate(LicensePlate),
    /// The plates of the caller's own cars, or only the one asked for among them.
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

/// The plates to check among the caller's own: all of them, or `requested`, which must be
/// one of them. Another user's plate answers exactly like a plate nobody registered.
pub fn pick_own_plates(
    own: BTreeSet<LicensePlate>,
    requested: Option<LicensePlate>,
) -> Result<BTreeSet<LicensePlate>, PlateNotFound> {
    match requested {
        None => Ok(own),
        Some(plate) if own.contains(&plate) => Ok(BTreeSet::from([plate])),
        Some(plate) => Err(PlateNotFound(plate)),
    }
}

/// A plate that is not on any of the caller's cars: 404.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlateNotFound(pub LicensePlate);

/// A fine on a licence plate, as stored and as the API returns it (with `paid` spelled out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fine {
    pub id: Uuid,
    pub license_plate: String,
    pub amount: Money,
    pub reason: String,
    pub issued_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn plate(s: &str) -> LicensePlate {
        LicensePlate::parse(s).unwrap()
    }

    fn plates(all: &[&str]) -> BTreeSet<LicensePlate> {
        all.iter().map(|s| plate(s)).collect()
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn fine(kopecks: i64) -> Fine {
        Fine {
            id: Uuid::nil(),
            license_plate: "А123БВ799".into(),
            amount: Money::from_kopecks(kopecks).unwrap(),
            reason: "Превышение скорости".into(),
            issued_at: time("2025-09-12T05:41:00Z"),
            paid_at: None,
        }
    }

    #[test]
    fn plates_are_trimmed_and_upper_cased_like_car_service_stores_them() {
        assert_eq!(plate("  а123бв799 ").as_str(), "А123БВ799");
        assert_eq!(plate("А123БВ799"), plate("а123Бв799"));
        assert_eq!(plate("b-ab-1234").as_str(), "B-AB-1234");
        assert_eq!(plate("ж".repeat(12).as_str()).as_str(), "Ж".repeat(12));
    }

    #[test]
    fn plates_are_1_to_12_characters() {
        for bad in ["", "   ", "1234567890123"] {
            let error = LicensePlate::parse(bad).unwrap_err();
            assert_eq!(error.field, "license_plate", "{bad:?}");
            assert_eq!(error.message, "must be 1 to 12 characters");
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
        let own = plates(&["А123БВ799", "К456МН178"]);
        assert_eq!(pick_own_plates(own.clone(), None), Ok(own.clone()));
        assert_eq!(
            pick_own_plates(own.clone(), Some(plate("к456мн178"))),
            Ok(plates(&["К456МН178"]))
        );
        assert_eq!(pick_own_plates(BTreeSet::new(), None), Ok(BTreeSet::new()));
    }

    #[test]
    fn a_plate_not_on_the_callers_cars_is_not_found() {
        let own = plates(&["А123БВ799"]);
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
                    "paid_at": null
                }],
                "total": 750.0
            })
        );
    }

    #[test]
    fn a_paid_fine_serializes_with_paid_true_and_when() {
        let paid = Fine {
            paid_at: Some(time("2025-10-01T12:00:00.5+03:00")),
            ..fine(150_050)
        };
        assert!(paid.is_paid());
        let json = serde_json::to_value(&paid).unwrap();
        assert_eq!(json["paid"], true);
        assert_eq!(json["paid_at"], "2025-10-01T09:00:00.500Z");
        assert_eq!(json["amount"], 1500.5);
    }
}
