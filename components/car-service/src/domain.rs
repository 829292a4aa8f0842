//! Cars as the business sees them: a request body becomes a `NewCar` only when every field
//! is valid, so code past this point never re-checks. No spin-sdk here: `cargo test` runs
//! these rules natively.

use api::json::{self, Object};
use api::{Caller, FieldError, FieldErrors};
use chrono::{DateTime, Datelike, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A vehicle identification number (ISO 3779): 17 letters or digits, never I, O or Q
/// (they read like 1 and 0). Stored upper-case, so `vin` uniqueness is case-blind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vin(String);

impl Vin {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let valid = s.len() == 17
            && s.chars().all(|c| {
                c.is_ascii_alphanumeric() && !matches!(c.to_ascii_uppercase(), 'I' | 'O' | 'Q')
            });
        if valid {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(FieldError::new(
                "vin",
                "must be 17 letters or digits, without I, O or Q",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registration plate as printed: Latin or Cyrillic letters, digits, spaces and dashes,
/// 1 to 12 characters after trimming, upper-cased (`а123бв799` is stored `А123БВ799`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensePlate(String);

impl LicensePlate {
    pub const MAX_CHARS: usize = 12;

    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let plate = s.trim().to_uppercase();
        let length = plate.chars().count();
        let allowed = plate
            .chars()
            .all(|c| is_plate_letter(c) || c.is_ascii_digit() || c == ' ' || c == '-');
        let has_sign = plate
            .chars()
            .any(|c| is_plate_letter(c) || c.is_ascii_digit());
        if (1..=Self::MAX_CHARS).contains(&length) && allowed && has_sign {
            Ok(Self(plate))
        } else {
            Err(FieldError::new(
                "license_plate",
                "must be 1 to 12 Latin or Cyrillic letters, digits, spaces or dashes",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Letters of the scripts plates are printed in: Latin (with the accented letters some
/// countries use) and Cyrillic. Other scripts and symbols are rejected.
fn is_plate_letter(c: char) -> bool {
    let latin = c.is_ascii_alphabetic() || ('\u{00C0}'..='\u{024F}').contains(&c);
    let cyrillic = ('\u{0400}'..='\u{04FF}').contains(&c);
    c.is_alphabetic() && (latin || cyrillic)
}

/// A model year: from 1886 (the first automobile) to next year (makers sell next year's
/// models early), with "now" from the system clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelYear(i32);

impl ModelYear {
    pub const FIRST: i32 = 1886;

    pub fn parse(year: i64) -> Result<Self, FieldError> {
        Self::parse_in(year, Utc::now().year())
    }

    /// `parse` with the current year given, for tests.
    pub fn parse_in(year: i64, current_year: i32) -> Result<Self, FieldError> {
        let last = current_year + 1;
        match i32::try_from(year) {
            Ok(year) if (Self::FIRST..=last).contains(&year) => Ok(Self(year)),
            _ => Err(FieldError::new(
                "year",
                format!("must be between {} and {last}", Self::FIRST),
            )),
        }
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// A maker or model name: trimmed, 1 to 64 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        let s = s.trim();
        let length = s.chars().count();
        if length == 0 {
            Err(FieldError::new(field, "must not be empty"))
        } else if length > Self::MAX_CHARS {
            Err(FieldError::new(
                field,
                format!("must be at most {} characters", Self::MAX_CHARS),
            ))
        } else if s.chars().any(char::is_control) {
            Err(FieldError::new(
                field,
                "must not contain control characters",
            ))
        } else {
            Ok(Self(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A UUID field (any form `uuid` accepts; stored and returned hyphenated, lower-case).
pub fn parse_uuid(field: &str, s: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(s.trim()).map_err(|_| FieldError::new(field, "must be a UUID"))
}

/// `POST /api/cars`'s body as documented; [`NewCar::parse`] reads it.
#[derive(utoipa::ToSchema)]
#[schema(example = json!({
    "owner_id": "550e8400-e29b-41d4-a716-446655440000",
    "license_plate": "А123БВ799",
    "vin": "XTA210930V0123456",
    "make": "Lada",
    "model": "Vesta",
    "year": 2020
}))]
#[allow(dead_code)]
pub struct CarRequest {
    /// Whose car: left out, the caller's; a customer may only name themselves (else 403).
    owner_id: Option<Uuid>,
    /// Latin or Cyrillic letters, digits, spaces, dashes; stored upper-case.
    #[schema(min_length = 1, max_length = 12)]
    license_plate: String,
    /// ISO 3779: 17 letters or digits without I, O, Q; unique.
    #[schema(min_length = 17, max_length = 17)]
    vin: String,
    #[schema(min_length = 1, max_length = 64)]
    make: String,
    #[schema(min_length = 1, max_length = 64)]
    model: String,
    /// From 1886 to next year.
    #[schema(minimum = 1886)]
    year: i32,
}

/// A car to register, every field valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCar {
    /// As given; [`NewCar::owner`] decides whose car it becomes.
    pub owner_id: Option<Uuid>,
    pub license_plate: LicensePlate,
    pub vin: Vin,
    pub make: Name,
    pub model: Name,
    pub year: ModelYear,
}

impl NewCar {
    /// Reads `{owner_id?, license_plate, vin, make, model, year}`, reporting every invalid
    /// field. Unknown fields are ignored, as the reference design's API did.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let owner_id = errors.check(
            json::optional_str(body, "owner_id")
                .and_then(|s| s.map(|s| parse_uuid("owner_id", s)).transpose()),
        );
        let license_plate =
            errors.check(json::required_str(body, "license_plate").and_then(LicensePlate::parse));
        let vin = errors.check(json::required_str(body, "vin").and_then(Vin::parse));
        let make =
            errors.check(json::required_str(body, "make").and_then(|s| Name::parse("make", s)));
        let model =
            errors.check(json::required_str(body, "model").and_then(|s| Name::parse("model", s)));
        let year = errors.check(json::required_i64(body, "year").and_then(ModelYear::parse));

        match (owner_id, license_plate, vin, make, model, year) {
            (
                Some(owner_id),
                Some(license_plate),
                Some(vin),
                Some(make),
                Some(model),
                Some(year),
            ) => Ok(Self {
                owner_id,
                license_plate,
                vin,
                make,
                model,
                year,
            }),
            _ => Err(errors),
        }
    }

    /// Whose car this becomes: the caller's, unless staff registers it for someone else.
    /// The reference design's body names the owner; a customer naming anyone but themselves is refused.
    pub fn owner(&self, caller: &Caller) -> Result<Uuid, ForeignOwner> {
        match self.owner_id {
            None => Ok(caller.user_id),
            Some(owner) if caller.may_access(owner) => Ok(owner),
            Some(owner) => Err(ForeignOwner(owner)),
        }
    }
}

/// A customer tried to register a car for another user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForeignOwner(pub Uuid);

/// A registered car, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Car {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub license_plate: String,
    pub vin: String,
    pub make: String,
    pub model: String,
    pub year: i32,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::auth::Role;
    use serde_json::{json, Value};

    fn object(value: Value) -> Object {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    fn example_car() -> Value {
        // The reference design's example request.
        json!({
            "owner_id": "550e8400-e29b-41d4-a716-446655440000",
            "license_plate": "А123БВ799",
            "vin": "XTA210930V0123456",
            "make": "Lada",
            "model": "Vesta",
            "year": 2021
        })
    }

    #[test]
    fn vin_accepts_17_alphanumerics_and_upper_cases_them() {
        assert_eq!(
            Vin::parse("wvwzzz1jzxw000001").unwrap().as_str(),
            "WVWZZZ1JZXW000001"
        );
        assert_eq!(
            Vin::parse(" 1HGCM82633A004352 ").unwrap().as_str(),
            "1HGCM82633A004352"
        );
    }

    #[test]
    fn vin_rejects_wrong_length_letters_i_o_q_and_symbols() {
        for bad in [
            "",
            "WVWZZZ1JZXW00000",
            "WVWZZZ1JZXW0000012",
            "WVWZZZ1JZXW00000I",
            "WVWZZZ1JZXW00000o",
            "WVWZZZ1JZXW00000q",
            "WVWZZZ1JZXW0000-1",
            "WVWZZZ1JZXW0000Ж1",
        ] {
            let error = Vin::parse(bad).unwrap_err();
            assert_eq!(error.field, "vin", "{bad}");
        }
    }

    #[test]
    fn plate_accepts_a_cyrillic_plate() {
        assert_eq!(
            LicensePlate::parse("А123БВ799").unwrap().as_str(),
            "А123БВ799"
        );
    }

    #[test]
    fn plate_is_trimmed_and_upper_cased_in_both_scripts() {
        assert_eq!(
            LicensePlate::parse("  а123бв 799 ").unwrap().as_str(),
            "А123БВ 799"
        );
        assert_eq!(
            LicensePlate::parse("b-ab-1234").unwrap().as_str(),
            "B-AB-1234"
        );
        assert_eq!(LicensePlate::parse("M-Ü 42").unwrap().as_str(), "M-Ü 42");
        assert_eq!(LicensePlate::parse("7").unwrap().as_str(), "7");
    }

    #[test]
    fn plate_rejects_empty_long_symbol_and_foreign_script_input() {
        for bad in [
            "",
            "   ",
            "--",
            "ABCDEFGHIJKLM",
            "A123_BC",
            "A123.BC",
            "粤B12345",
            "A\u{0}1",
        ] {
            let error = LicensePlate::parse(bad).unwrap_err();
            assert_eq!(error.field, "license_plate", "{bad:?}");
        }
        assert!(LicensePlate::parse("ABCDEFGHIJKL").is_ok());
    }

    #[test]
    fn model_year_runs_from_1886_to_next_year() {
        assert_eq!(ModelYear::parse_in(1886, 2025).unwrap().get(), 1886);
        assert_eq!(ModelYear::parse_in(2026, 2025).unwrap().get(), 2026);
        for bad in [1885, 2027, -1, i64::MAX] {
            let error = ModelYear::parse_in(bad, 2025).unwrap_err();
            assert_eq!(error.message, "must be between 1886 and 2026");
        }
    }

    #[test]
    fn model_year_uses_the_clock() {
        let next = Utc::now().year() + 1;
        assert!(ModelYear::parse(i64::from(next)).is_ok());
        assert!(ModelYear::parse(i64::from(next) + 1).is_err());
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(Name::parse("make", "  Лада ").unwrap().as_str(), "Лада");
        assert_eq!(
            Name::parse("make", " ").unwrap_err().message,
            "must not be empty"
        );
        assert!(Name::parse("model", &"я".repeat(64)).is_ok());
        assert_eq!(
            Name::parse("model", &"я".repeat(65)).unwrap_err().message,
            "must be at most 64 characters"
        );
        assert!(Name::parse("model", "Golf\u{0}").is_err());
    }

    #[test]
    fn new_car_parses_the_example() {
        let car = NewCar::parse(&object(example_car())).unwrap();
        assert_eq!(
            car.owner_id.unwrap().to_string(),
            "550e8400-e29b-41d4-a716-446655440000"
        );
        assert_eq!(car.license_plate.as_str(), "А123БВ799");
        assert_eq!(car.vin.as_str(), "XTA210930V0123456");
        assert_eq!((car.make.as_str(), car.model.as_str()), ("Lada", "Vesta"));
        assert_eq!(car.year.get(), 2021);
    }

    #[test]
    fn new_car_reports_every_invalid_field_at_once() {
        let body = object(json!({
            "owner_id": "not-a-uuid",
            "license_plate": "",
            "vin": "SHORT",
            "make": 42,
            "year": "2020"
        }));
        let errors = NewCar::parse(&body).unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["owner_id", "license_plate", "vin", "make", "model", "year"]
        );
        assert_eq!(errors.get("owner_id").unwrap().message, "must be a UUID");
        assert_eq!(
            errors.get("make").unwrap().message,
            "must be a string, not a number"
        );
        assert_eq!(errors.get("model").unwrap().message, "is required");
        assert_eq!(
            errors.get("year").unwrap().message,
            "must be an integer, not a string"
        );
    }

    #[test]
    fn owner_id_may_be_left_out() {
        let mut body = example_car();
        body.as_object_mut().unwrap().remove("owner_id");
        assert_eq!(NewCar::parse(&object(body)).unwrap().owner_id, None);
    }

    #[test]
    fn a_customer_owns_what_they_register_and_nothing_else() {
        let me = Caller {
            user_id: Uuid::from_u128(1),
            role: Role::Customer,
        };
        let staff = Caller {
            user_id: Uuid::from_u128(9),
            role: Role::Staff,
        };
        let mut car = NewCar::parse(&object(example_car())).unwrap();
        car.owner_id = None;
        assert_eq!(car.owner(&me), Ok(me.user_id));
        car.owner_id = Some(me.user_id);
        assert_eq!(car.owner(&me), Ok(me.user_id));
        car.owner_id = Some(Uuid::from_u128(2));
        assert_eq!(car.owner(&me), Err(ForeignOwner(Uuid::from_u128(2))));
        assert_eq!(car.owner(&staff), Ok(Uuid::from_u128(2)));
    }

    #[test]
    fn car_serializes_with_rfc3339_utc_created_at() {
        let car = Car {
            id: Uuid::nil(),
            owner_id: Uuid::nil(),
            license_plate: "А123БВ799".into(),
            vin: "WVWZZZ1JZXW000001".into(),
            make: "Volkswagen".into(),
            model: "Golf".into(),
            year: 2020,
            created_at: DateTime::parse_from_rfc3339("2025-03-01T10:20:30.123456Z")
                .unwrap()
                .with_timezone(&Utc),
        };
        assert_eq!(
            serde_json::to_value(&car).unwrap(),
            json!({
                "id": "00000000-0000-0000-0000-000000000000",
                "owner_id": "00000000-0000-0000-0000-000000000000",
                "license_plate": "А123БВ799",
                "vin": "WVWZZZ1JZXW000001",
                "make": "Volkswagen",
                "model": "Golf",
                "year": 2020,
                "created_at": "2025-03-01T10:20:30.123456Z"
            })
        );
    }
}
