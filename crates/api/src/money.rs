//! Money: integer kopecks inside, a decimal number of roubles with at most two places at the
//! JSON edge (`1500`, `1499.5`, `1499.99`). No float arithmetic ever touches an amount: JSON
//! numbers are read from their text, and written from the integer.

use std::fmt;

use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::error::FieldError;

/// An amount of money in kopecks (1/100 of a rouble), never negative.
/// In the API document: the JSON number of roubles it serializes as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, utoipa::ToSchema)]
#[schema(
    value_type = f64,
    description = "Roubles, never negative, at most two decimal places",
    example = 1499.99
)]
pub struct Money(i64);

impl Money {
    pub const ZERO: Money = Money(0);
    /// Far above any bill a detailing shop writes; keeps sums far from overflow.
    pub const MAX_KOPECKS: i64 = 100_000_000_000;

    pub fn from_kopecks(kopecks: i64) -> Option<Self> {
        (0..=Self::MAX_KOPECKS)
            .contains(&kopecks)
            .then_some(Self(kopecks))
    }

    pub fn kopecks(self) -> i64 {
        self.0
    }

    /// `self * quantity`, or `None` past [`Money::MAX_KOPECKS`].
    pub fn times(self, quantity: u32) -> Option<Self> {
        self.0
            .checked_mul(i64::from(quantity))
            .and_then(Self::from_kopecks)
    }

    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.0.checked_add(other.0).and_then(Self::from_kopecks)
    }

    /// `numerator / denominator` of this amount, rounded half up to the kopeck (a bonus of
    /// 1 % of 999.99 is 10.00). `None` for a zero denominator.
    pub fn share(self, numerator: i64, denominator: i64) -> Option<Self> {
        if denominator <= 0 || numerator < 0 {
            return None;
        }
        let scaled = i128::from(self.0) * i128::from(numerator);
        let rounded = (scaled * 2 + i128::from(denominator)) / (2 * i128::from(denominator));
        i64::try_from(rounded).ok().and_then(Self::from_kopecks)
    }

    /// Parses a JSON amount in roubles: a non-negative number with at most two decimal
    /// places, or the same as a string (`"1499.99"`).
    pub fn parse_json(field: &str, value: &Value) -> Result<Self, FieldError> {
        let text = match value {
            Value::Number(number) => number.to_string(),
            Value::String(text) => text.trim().to_owned(),
            _ => return Err(FieldError::new(field, "must be an amount like 1499.99")),
        };
        Self::parse_decimal(&text).ok_or_else(|| {
            FieldError::new(
                field,
                "must be a non-negative amount with at most two decimal places, like 1499.99",
            )
        })
    }

    /// `"1499.99"` → 149999 kopecks. Exponents, signs and a third decimal are refused.
    pub fn parse_decimal(text: &str) -> Option<Self> {
        let (whole, fraction) = match text.split_once('.') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (text, ""),
        };
        let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
        if whole.is_empty()
            || whole.len() > 12
            || !digits(whole)
            || fraction.len() > 2
            || !digits(fraction)
        {
            return None;
        }
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
        whole
            .checked_mul(100)
            .and_then(|k| k.checked_add(fraction))
            .and_then(Self::from_kopecks)
    }
}

/// An amount of roubles a request gives (a price, a spend): above 0, at most 1000000000 (that
/// is [`Money::MAX_KOPECKS`]), at most two decimal places, as a JSON number or the same as a
/// string (`"17.50"`, for clients that keep money out of floats). A request type's field of
/// this type is documented and checked by `api::body` with the schema below; use it with
/// `#[schema(inline)]` and no doc comment (one would wrap the inline schema in an `allOf`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositiveAmount(pub Money);

/// A positive amount as a string: digits without leading zeros, up to two decimals.
const AMOUNT_PATTERN: &str =
    r"^(?:[1-9][0-9]{0,8}(?:\.[0-9]{1,2})?|1000000000(?:\.00?)?|0\.(?:0[1-9]|[1-9][0-9]?))$";

impl utoipa::PartialSchema for PositiveAmount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .description(Some(
                "Roubles: above 0, at most 1000000000, at most two decimal places; a number \
                 or the same as a string",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .exclusive_minimum(Some(0))
                    .maximum(Some(1_000_000_000))
                    .multiple_of(Some(0.01)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(AMOUNT_PATTERN)),
            )
            .into()
    }
}

impl utoipa::ToSchema for PositiveAmount {}

impl<'de> serde::Deserialize<'de> for PositiveAmount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = <Value as serde::Deserialize>::deserialize(deserializer)?;
        let amount =
            Money::parse_json("amount", &value).map_err(|e| D::Error::custom(e.message))?;
        if amount == Money::ZERO {
            return Err(D::Error::custom("must be more than 0"));
        }
        Ok(Self(amount))
    }
}

/// An amount of roubles a request may give as zero (bonuses to pay with, say): 0 to
/// 1000000000, at most two decimal places, as a JSON number or the same as a string, like
/// [`PositiveAmount`] otherwise. Use it with `#[schema(inline)]` (or `schema_with` for an
/// `Option`) and no doc comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NonNegativeAmount(pub Money);

/// A non-negative amount as a string: digits without leading zeros, up to two decimals.
const NON_NEGATIVE_PATTERN: &str =
    r"^(?:(?:0|[1-9][0-9]{0,8})(?:\.[0-9]{1,2})?|1000000000(?:\.00?)?)$";

impl utoipa::PartialSchema for NonNegativeAmount {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .description(Some(
                "Roubles: 0 to 1000000000, at most two decimal places; a number or the same \
                 as a string",
            ))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .maximum(Some(1_000_000_000))
                    .multiple_of(Some(0.01)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(NON_NEGATIVE_PATTERN)),
            )
            .into()
    }
}

impl utoipa::ToSchema for NonNegativeAmount {}

impl<'de> serde::Deserialize<'de> for NonNegativeAmount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = <Value as serde::Deserialize>::deserialize(deserializer)?;
        Money::parse_json("amount", &value)
            .map(Self)
            .map_err(|e| D::Error::custom(e.message))
    }
}

/// A share of an amount from 0 to 1, written as a plain decimal in a Spin variable (`0.01`,
/// `0.3`, `1`) and kept as an exact fraction, so 1 % of 999.99 is 10.00 and never 9.999999.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    numerator: i64,
    denominator: i64,
}

impl Share {
    /// Finer than any share a business sets; keeps the denominator a small power of 10.
    pub const MAX_DECIMALS: usize = 9;

    /// `"0.01"` → 1/100. Only plain decimals from 0 to 1 (`0`, `1`, `0.5`, `1.00`,
    /// `0.015`): signs, exponents, commas and a missing leading digit are refused.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim();
        let (whole, fraction) = match text.split_once('.') {
            Some((_, "")) => return None,
            Some(parts) => parts,
            None => (text, ""),
        };
        let whole: i64 = match whole {
            "0" => 0,
            "1" => 1,
            _ => return None,
        };
        if fraction.len() > Self::MAX_DECIMALS || !fraction.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let denominator = 10_i64.pow(fraction.len() as u32);
        let fraction: i64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().ok()?
        };
        let numerator = whole * denominator + fraction;
        (numerator <= denominator).then_some(Self {
            numerator,
            denominator,
        })
    }

    /// `(numerator, denominator)`: `0.015` is `(15, 1000)`.
    pub fn parts(self) -> (i64, i64) {
        (self.numerator, self.denominator)
    }

    /// This share of `amount`, rounded half up to the kopeck (what a rate earns).
    pub fn of(self, amount: Money) -> Money {
        amount
            .share(self.numerator, self.denominator)
            .expect("a share of at most 1 is never more than the amount")
    }

    /// This share of `amount`, rounded down to the kopeck (a cap that must not be exceeded).
    pub fn at_most_of(self, amount: Money) -> Money {
        let scaled = i128::from(amount.0) * i128::from(self.numerator);
        let floored = scaled / i128::from(self.denominator);
        Money(i64::try_from(floored).expect("a share of at most 1 stays in range"))
    }
}

impl fmt::Display for Share {
    /// As a percentage, exactly: `30 %`, `1.5 %`, `0.0000001 %`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // numerator / denominator * 100, with the denominator a power of 10.
        let places = self.denominator.ilog10().saturating_sub(2);
        let scale = 10_i64.pow(places);
        let hundredths =
            i128::from(self.numerator) * 100 * i128::from(scale) / i128::from(self.denominator);
        let scale = i128::from(scale);
        let (whole, fraction) = (hundredths / scale, hundredths % scale);
        if fraction == 0 {
            write!(f, "{whole} %")
        } else {
            let digits = format!("{fraction:0width$}", width = places as usize);
            write!(f, "{whole}.{} %", digits.trim_end_matches('0'))
        }
    }
}

impl fmt::Display for Money {
    /// `1499.99`, always two places.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

impl Serialize for Money {
    /// A JSON number in roubles, written from the decimal text (`1499.99`, `1500.0`).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Every amount below MAX_KOPECKS has an exact shortest decimal as f64, so the
        // number a client reads is the amount, not a neighbour.
        let roubles: f64 = self
            .to_string()
            .parse()
            .map_err(serde::ser::Error::custom)?;
        serializer.serialize_f64(roubles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decimals_parse_to_kopecks() {
        for (text, kopecks) in [
            ("0", 0),
            ("1500", 150_000),
            ("1499.9", 149_990),
            ("1499.99", 149_999),
            ("0.01", 1),
        ] {
            assert_eq!(
                Money::parse_decimal(text),
                Money::from_kopecks(kopecks),
                "{text}"
            );
        }
        for bad in [
            "",
            "-1",
            "1.999",
            "1e3",
            "+5",
            "1.",
            ".5",
            "1,5",
            "abc",
            "9999999999999",
        ] {
            assert_eq!(Money::parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_numbers_and_strings_are_read_from_their_text() {
        let amount = |value| Money::parse_json("amount", &value);
        assert_eq!(amount(json!(19.99)).unwrap().kopecks(), 1999);
        assert_eq!(amount(json!("19.99")).unwrap().kopecks(), 1999);
        assert_eq!(amount(json!(20)).unwrap().kopecks(), 2000);
        assert!(amount(json!(0.001)).is_err());
        assert!(amount(json!(-5)).is_err());
        assert!(amount(json!(null)).is_err());
        assert_eq!(amount(json!(true)).unwrap_err().field, "amount");
    }

    #[test]
    fn amounts_serialize_as_exact_numbers() {
        let money = |k| Money::from_kopecks(k).unwrap();
        assert_eq!(serde_json::to_string(&money(149_999)).unwrap(), "1499.99");
        assert_eq!(serde_json::to_string(&money(150_000)).unwrap(), "1500.0");
        assert_eq!(serde_json::to_string(&money(1)).unwrap(), "0.01");
        assert_eq!(money(105).to_string(), "1.05");
    }

    #[test]
    fn shares_round_half_up_to_the_kopeck() {
        let money = |k| Money::from_kopecks(k).unwrap();
        assert_eq!(money(99_999).share(1, 100), Some(money(1000)));
        assert_eq!(money(150_000).share(1, 100), Some(money(1500)));
        assert_eq!(money(49).share(1, 100), Some(money(0)));
        assert_eq!(money(50).share(1, 100), Some(money(1)));
        assert_eq!(money(100).share(1, 0), None);
    }

    #[test]
    fn sums_and_products_stay_in_range() {
        let money = |k| Money::from_kopecks(k).unwrap();
        assert_eq!(money(250).times(3), Some(money(750)));
        assert_eq!(money(Money::MAX_KOPECKS).times(2), None);
        assert_eq!(money(1).checked_add(money(2)), Some(money(3)));
        assert_eq!(Money::from_kopecks(-1), None);
    }

    #[test]
    fn positive_amounts_are_above_zero_as_numbers_or_strings() {
        let read = |value: Value| serde_json::from_value::<PositiveAmount>(value).map(|a| a.0);
        assert_eq!(read(json!(17.5)).unwrap().kopecks(), 1750);
        assert_eq!(read(json!("17.50")).unwrap().kopecks(), 1750);
        assert_eq!(
            read(json!(1_000_000_000)).unwrap().kopecks(),
            Money::MAX_KOPECKS
        );
        for bad in [
            json!(0),
            json!("0.00"),
            json!(-1),
            json!(0.001),
            json!(null),
        ] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn non_negative_amounts_take_zero_too() {
        let read = |value: Value| serde_json::from_value::<NonNegativeAmount>(value).map(|a| a.0);
        assert_eq!(read(json!(0)).unwrap(), Money::ZERO);
        assert_eq!(read(json!("0.00")).unwrap(), Money::ZERO);
        assert_eq!(read(json!("900.5")).unwrap().kopecks(), 90_050);
        for bad in [json!(-1), json!(0.001), json!("1e3"), json!(null)] {
            assert!(read(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn shares_parse_exactly_and_cap_or_round() {
        let money = |k| Money::from_kopecks(k).unwrap();
        for (text, parts) in [
            ("0.01", (1, 100)),
            ("0", (0, 1)),
            ("1", (1, 1)),
            ("1.00", (100, 100)),
            (" 0.3 ", (3, 10)),
            ("0.000000001", (1, 1_000_000_000)),
        ] {
            assert_eq!(Share::parse(text).map(Share::parts), Some(parts), "{text}");
        }
        for bad in [
            "",
            "-0.1",
            "1.01",
            "2",
            "01",
            ".3",
            "0.",
            "1e-2",
            "0,3",
            "0.0000000001",
        ] {
            assert_eq!(Share::parse(bad), None, "{bad}");
        }
        let third = Share::parse("0.3").unwrap();
        assert_eq!(third.at_most_of(money(300_000)), money(90_000));
        // 0.3 of 0.05 is 0.015: at most 0.01, and 0.02 as a rate's rounding.
        assert_eq!(third.at_most_of(money(5)), money(1));
        assert_eq!(third.of(money(5)), money(2));
        for (text, shown) in [
            ("0.3", "30 %"),
            ("0.015", "1.5 %"),
            ("1", "100 %"),
            ("0", "0 %"),
            ("0.000000001", "0.0000001 %"),
        ] {
            assert_eq!(Share::parse(text).unwrap().to_string(), shown, "{text}");
        }
    }
}
