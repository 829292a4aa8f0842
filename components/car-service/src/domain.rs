//! Cars as the business sees them: a request body becomes a `NewCar` only when every field
//! is valid, so code past this point never re-checks. No spin-sdk here: `cargo test` runs
//! these rules natively.

use api::json::Object;
use api::{Caller, FieldErrors};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A vehicle identification number (ISO 3779): 17 letters or digits, never I, O or Q
/// (they read like 1 and 0). Stored upper-case, so `vin` uniqueness is case-blind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vin(String);

impl Vin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A registration plate as printed: Latin or Cyrillic letters, digits, spaces and dashes
/// (the pattern of [`CarRequest::license_plate`]), stored trimmed and upper-cased
/// (`а123бв799` is stored `А123БВ799`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensePlate(String);

impl LicensePlate {
    /// A plate the schema accepted, trimmed and upper-cased letter by letter (a letter whose
    /// capital is two letters, like `ß`, stays as it is: the plate keeps its length).
    pub fn normalise(s: &str) -> Self {
        Self(
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
        )
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A model year: from 1886 (the first automobile) to 2100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelYear(i32);

impl ModelYear {
    pub fn get(self) -> i32 {
        self.0
    }
}

/// A maker or model name, stored trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Name(String);

impl Name {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `POST /api/cars`'s body: documented and read as this type (see `api::body`). Unknown
/// properties are ignored.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "owner_id": "550e8400-e29b-41d4-a716-446655440000",
    "license_plate": "А123БВ799",
    "vin": "XTA210930V0123456",
    "make": "Lada",
    "model": "Vesta",
    "year": 2020
}))]
pub struct CarRequest {
    /// Whose car: left out, the caller's; a customer may only name themselves (else 403).
    pub owner_id: Option<Uuid>,
    /// Latin (also accented) or Cyrillic letters, digits, spaces and dashes, at least one
    /// letter or digit; stored trimmed and upper-cased.
    #[schema(
        min_length = 1,
        max_length = 12,
        pattern = r"^[ -]*[0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0400-\u0481\u048A-\u04FF][0-9A-Za-z\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u024F\u0400-\u0481\u048A-\u04FF -]*$"
    )]
    pub license_plate: String,
    /// ISO 3779: 17 letters or digits without I, O, Q; stored upper-case; unique.
    #[schema(
        min_length = 17,
        max_length = 17,
        pattern = r"^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$"
    )]
    pub vin: String,
    /// Stored trimmed; no control characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub make: String,
    /// Stored trimmed; no control characters, not blank.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]*$"
    )]
    pub model: String,
    /// From 1886 (the first automobile) to 2100.
    #[schema(minimum = 1886, maximum = 2100)]
    pub year: i32,
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
    /// Reads [`CarRequest`], reporting every invalid field.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: CarRequest = api::body::parse(body)?;
        Ok(Self {
            owner_id: request.owner_id,
            license_plate: LicensePlate::normalise(&request.license_plate),
            vin: Vin(request.vin.to_ascii_uppercase()),
            make: Name(request.make.trim().to_owned()),
            model: Name(request.model.trim().to_owned()),
            year: ModelYear(request.year),
        })
    }

    /// Whose car this becomes: the caller's, unless staff registers it for someone else.
    /// The body may name the owner; a customer naming anyone but themselves is refused.
    pub fn owner(&self, caller: &Caller) -> Result<Uuid, ForeignOwner> {
        match self.owner_id {
            None => Ok(caller.user_id),
            Some(owner) if caller.may_access(owner) => Ok(owner),
            Some(owner) => Err(ForeignOwner(owner)),
        }
    }
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![
        api::body::Documented::new::<CarRequest, _>(NewCar::parse),
        api::body::Documented::new::<crate::documents::DocumentRequest, _>(
            crate::documents::NewDocument::parse,
        ),
    ]
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

    /// The example car with `field` set to `value`.
    fn car_with(field: &str, value: Value) -> Result<NewCar, FieldErrors> {
        let mut body = example_car();
        body[field] = value;
        NewCar::parse(&object(body))
    }

    fn refused(field: &str, value: Value) {
        let errors = car_with(field, value.clone()).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, field, "{value}");
    }

    #[test]
    fn vin_accepts_17_alphanumerics_and_upper_cases_them() {
        let car = car_with("vin", json!("wvwzzz1jzxw000001")).unwrap();
        assert_eq!(car.vin.as_str(), "WVWZZZ1JZXW000001");
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
            " WVWZZZ1JZXW00001 ",
        ] {
            refused("vin", json!(bad));
        }
    }

    #[test]
    fn plate_is_trimmed_and_upper_cased_in_both_scripts() {
        for (given, stored) in [
            ("А123БВ799", "А123БВ799"),
            (" а123бв 799 ", "А123БВ 799"),
            ("b-ab-1234", "B-AB-1234"),
            ("M-Ü 42", "M-Ü 42"),
            ("7", "7"),
            ("ABCDEFGHIJKL", "ABCDEFGHIJKL"),
            ("straße", "STRAßE"),
        ] {
            let car = car_with("license_plate", json!(given)).unwrap();
            assert_eq!(car.license_plate.as_str(), stored);
        }
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
            "A×1",
        ] {
            refused("license_plate", json!(bad));
        }
    }

    #[test]
    fn model_year_runs_from_1886_to_2100() {
        assert_eq!(car_with("year", json!(1886)).unwrap().year.get(), 1886);
        assert_eq!(car_with("year", json!(2100)).unwrap().year.get(), 2100);
        for bad in [
            json!(1885),
            json!(2101),
            json!(-1),
            json!(2147483646),
            json!(2020.5),
        ] {
            refused("year", bad);
        }
        let errors = car_with("year", json!(2101)).unwrap_err();
        assert_eq!(
            errors.as_slice()[0].message,
            "must be a whole number from 1886 to 2100"
        );
    }

    #[test]
    fn names_are_trimmed_bounded_and_printable() {
        assert_eq!(
            car_with("make", json!("  Лада ")).unwrap().make.as_str(),
            "Лада"
        );
        assert!(car_with("model", json!("я".repeat(64))).is_ok());
        for bad in [json!(" "), json!("я".repeat(65)), json!("Golf\u{0}")] {
            refused("model", bad);
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
            ["license_plate", "make", "owner_id", "vin", "year", "model"]
        );
        assert!(errors
            .get("owner_id")
            .unwrap()
            .message
            .starts_with("must be a UUID"));
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
