//! The shop's calendar as the business sees it: how long an order holds a bay, the question
//! "when can this work start on a day", the shop's settings (bays, time zone, weekly
//! opening hours), and an order moved to another time. Which bay is free is the database's
//! answer (store.rs), never a read before a write. No spin-sdk here: `cargo test` runs these
//! rules natively.

use std::fmt;

use api::json::Object;
use api::query::Query;
use api::{FieldError, FieldErrors};
use chrono::{NaiveDate, NaiveTime, Timelike};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::{CatalogEntry, DesiredTime, ItemRequest};

/// The step of the calendar: orders start on the hour or half hour and hold a bay for whole
/// half hours.
pub const SLOT_MINUTES: u32 = 30;

/// How long the items' work holds a bay: each service's duration times its quantity, summed
/// and rounded up to the half hour; goods take no time, and an order with no work still takes
/// one half hour. Every item must be in `catalog` (they were priced from it).
pub fn work_minutes(items: &[ItemRequest], catalog: &[CatalogEntry]) -> u32 {
    let minutes: u32 = items
        .iter()
        .filter_map(|item| {
            let entry = catalog.iter().find(|entry| entry.id == item.catalog_id)?;
            Some(
                entry
                    .duration_minutes
                    .unwrap_or(0)
                    .saturating_mul(item.quantity),
            )
        })
        .fold(0, u32::saturating_add);
    minutes
        .div_ceil(SLOT_MINUTES)
        .max(1)
        .saturating_mul(SLOT_MINUTES)
}

/// `GET /api/orders/slots`' query, read: the day (in the shop's time zone) and the work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotsQuery {
    pub date: NaiveDate,
    /// One of each catalog entry named.
    pub items: Vec<ItemRequest>,
}

/// How many catalog entries one question may name, as an order may.
const MAX_ITEMS: usize = 50;

impl SlotsQuery {
    /// `?date=YYYY-MM-DD&items=<id>,<id>`: a date from 2000 to 9999, and up to 50 distinct
    /// catalog ids (none: the half hour an order without work takes).
    pub fn parse(query: &Query) -> Result<Self, FieldErrors> {
        let mut errors = FieldErrors::new();
        let date = errors.check(parse_date(query.get("date")));
        let items = errors.check(parse_items(query.get("items").unwrap_or_default()));
        match (date, items) {
            (Some(date), Some(items)) if errors.is_empty() => Ok(Self { date, items }),
            _ => Err(errors),
        }
    }
}

fn parse_date(raw: Option<&str>) -> Result<NaiveDate, FieldError> {
    let raw = raw.ok_or_else(|| FieldError::new("date", "is required (YYYY-MM-DD)"))?;
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .ok()
        .filter(|date| (2000..=9999).contains(&chrono::Datelike::year(date)) && raw.len() == 10)
        .ok_or_else(|| FieldError::new("date", "must be a date YYYY-MM-DD from 2000 to 9999"))
}

fn parse_items(raw: &str) -> Result<Vec<ItemRequest>, FieldError> {
    let mut items: Vec<ItemRequest> = Vec::new();
    for part in raw.split(',').filter(|part| !part.is_empty()) {
        let catalog_id = Uuid::parse_str(part)
            .map_err(|_| FieldError::new("items", format!("{part:?} is not a UUID")))?;
        if items.iter().any(|item| item.catalog_id == catalog_id) {
            return Err(FieldError::new(
                "items",
                format!("{catalog_id} appears twice: name each entry once"),
            ));
        }
        items.push(ItemRequest {
            catalog_id,
            quantity: 1,
        });
    }
    if items.len() > MAX_ITEMS {
        return Err(FieldError::new(
            "items",
            format!("names {} entries; at most {MAX_ITEMS}", items.len()),
        ));
    }
    Ok(items)
}

/// The query parameters of `GET /api/orders/slots`, for the API document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SlotsParams {
    /// The day, in the shop's time zone, from 2000 to 9999.
    #[param(value_type = String, format = Date, pattern = r"^[2-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$")]
    date: String,
    /// The work to fit: catalog entry ids, comma-separated, each once (at most 50). None:
    /// the half hour an order without work takes.
    #[param(style = Form, explode = false, max_items = 50)]
    items: Option<Vec<Uuid>>,
}

/// A start time with at least one bay free for the whole work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Slot {
    pub starts_at: chrono::DateTime<chrono::Utc>,
    #[schema(minimum = 1)]
    pub free_bays: u32,
}

/// `GET /api/orders/slots`' answer: the free start times of a day for a piece of work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Slots {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    #[schema(example = "Europe/Moscow")]
    pub time_zone: String,
    /// That day's opening hours, local time; null when the shop is closed that day.
    pub hours: Option<DayHours>,
    /// How long the work holds a bay.
    pub duration_minutes: u32,
    /// In time order; only times still ahead, whose work ends by closing time.
    pub slots: Vec<Slot>,
}

/// One day's opening hours, local time `HH:MM` on the hour or half hour. Unknown properties
/// are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DayHours {
    #[schema(pattern = r"^(?:[01][0-9]|2[0-3]):(?:00|30)$", example = "09:00")]
    pub opens: String,
    /// After `opens`; `24:00` is midnight at the end of the day.
    #[schema(
        pattern = r"^(?:(?:[01][0-9]|2[0-3]):(?:00|30)|24:00)$",
        example = "21:00"
    )]
    pub closes: String,
}

/// A time the work does not fit into the opening hours: 422 naming them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutsideHours {
    /// The weekday of the start, in the shop's time zone (`Friday`).
    pub weekday: String,
    pub time_zone: String,
    /// Local `HH:MM` of the start.
    pub starts: String,
    pub minutes: u32,
    /// That weekday's hours, or `None`: closed.
    pub hours: Option<DayHours>,
}

impl fmt::Display for OutsideHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Self {
            weekday,
            time_zone,
            starts,
            minutes,
            hours,
        } = self;
        match hours {
            Some(DayHours { opens, closes }) => write!(
                f,
                "the shop is open {opens}-{closes} on {weekday} ({time_zone}); {minutes} minutes \
                 of work from {starts} do not fit"
            ),
            None => write!(f, "the shop is closed on {weekday} ({time_zone})"),
        }
    }
}

/// A week's opening hours: a day left out (or null) is closed, and answers leave closed days
/// out. A misspelt day is refused rather than read as closed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WeekHours {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monday: Option<DayHours>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tuesday: Option<DayHours>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wednesday: Option<DayHours>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thursday: Option<DayHours>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friday: Option<DayHours>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saturday: Option<DayHours>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sunday: Option<DayHours>,
}

impl WeekHours {
    const DAYS: [&'static str; 7] = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];

    fn days(&self) -> [&Option<DayHours>; 7] {
        [
            &self.monday,
            &self.tuesday,
            &self.wednesday,
            &self.thursday,
            &self.friday,
            &self.saturday,
            &self.sunday,
        ]
    }

    /// The open days as stored: ISO weekday (1 Monday) with its hours.
    pub fn open_days(&self) -> Vec<WeekdayHours> {
        (1..)
            .zip(self.days())
            .filter_map(|(weekday, day)| {
                day.as_ref().map(|hours| WeekdayHours {
                    weekday,
                    opens: hours.opens.clone(),
                    closes: hours.closes.clone(),
                })
            })
            .collect()
    }

    /// The week of the stored open days (days not among them are closed).
    pub fn from_open_days(days: Vec<WeekdayHours>) -> Self {
        let mut week = Self::default();
        for day in days {
            let hours = Some(DayHours {
                opens: day.opens,
                closes: day.closes,
            });
            match day.weekday {
                1 => week.monday = hours,
                2 => week.tuesday = hours,
                3 => week.wednesday = hours,
                4 => week.thursday = hours,
                5 => week.friday = hours,
                6 => week.saturday = hours,
                7 => week.sunday = hours,
                _ => {}
            }
        }
        week
    }

    /// Closing after opening, each day: the rule no schema states.
    fn check(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::new();
        for (name, day) in Self::DAYS.iter().zip(self.days()) {
            if let Some(hours) = day {
                if minutes_of(&hours.closes) <= minutes_of(&hours.opens) {
                    errors.push(FieldError::new(
                        format!("hours.{name}.closes"),
                        format!("must be after opens ({})", hours.opens),
                    ));
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

/// One open weekday as the store keeps it (ISO weekday, 1 Monday).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekdayHours {
    pub weekday: u8,
    pub opens: String,
    pub closes: String,
}

/// `PUT /api/orders/shop`'s body, and what `GET` answers: the whole settings. Unknown
/// properties are ignored.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[schema(example = json!({
    "bays": 3,
    "time_zone": "Europe/Moscow",
    "hours": {"monday": {"opens": "09:00", "closes": "21:00"},
              "saturday": {"opens": "10:00", "closes": "18:00"}}
}))]
pub struct ShopSettings {
    /// Bays that work on cars at the same time.
    #[schema(minimum = 1, maximum = 100)]
    pub bays: u32,
    /// An IANA time zone name, e.g. `Europe/Moscow` (else 422).
    #[schema(min_length = 1, max_length = 64, pattern = r"^[A-Za-z0-9_+\-/]+$")]
    pub time_zone: String,
    /// The week's opening hours, local time; a day left out is closed.
    pub hours: WeekHours,
}

impl ShopSettings {
    /// Reads [`ShopSettings`], then what no schema says: closing after opening. Whether
    /// PostgreSQL knows the time zone is the store's question.
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let settings: ShopSettings = api::body::parse(body)?;
        settings.hours.check()?;
        Ok(settings)
    }
}

/// Minutes since midnight of a checked `HH:MM` (`24:00` is 1440).
fn minutes_of(hhmm: &str) -> u32 {
    if hhmm == "24:00" {
        return 24 * 60;
    }
    NaiveTime::parse_from_str(hhmm, "%H:%M")
        .map(|time| time.hour() * 60 + time.minute())
        .unwrap_or(0)
}

/// `PATCH /api/orders/{order_id}`'s body: a new time, a staff member, both, or neither (`{}`
/// changes nothing). Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"desired_time": "2030-05-01T12:00:00+03:00"}))]
pub struct OrderChangeRequest {
    /// The new start, in the form and on the slots `POST /api/orders` takes; the order keeps
    /// its length and may move to another bay. Only a `created` or `confirmed` order moves.
    #[schema(
        format = DateTime,
        pattern = r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):(?:00|30):00(?:\.0+)?(?:[Zz]|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])$"
    )]
    pub desired_time: Option<String>,
    /// Staff only: the staff member (a user id) who does the work; null takes it off them.
    /// Not for a completed or cancelled order.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Uuid>, nullable)]
    pub assigned_to: Option<Option<Uuid>>,
}

/// A property that may be null: given (`Some`, perhaps `Some(None)`) or left out (`None`, by
/// `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A change to an order, read; `{}` changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderChange {
    pub desired_time: Option<DesiredTime>,
    /// `Some(None)`: unassign.
    pub assigned_to: Option<Option<Uuid>>,
}

impl OrderChange {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: OrderChangeRequest = api::body::parse(body)?;
        Ok(Self {
            desired_time: request
                .desired_time
                .as_deref()
                .map(DesiredTime::parse)
                .transpose()?,
            assigned_to: request.assigned_to,
        })
    }
}

/// `GET /api/orders/board`'s query: the day, in the shop's time zone.
pub fn parse_board_date(query: &Query) -> Result<NaiveDate, FieldErrors> {
    parse_date(query.get("date")).map_err(FieldErrors::from)
}

/// The query parameters of `GET /api/orders/board`, for the API document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct BoardParams {
    /// The day, in the shop's time zone, from 2000 to 9999.
    #[param(value_type = String, format = Date, pattern = r"^[2-9][0-9]{3}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])$")]
    date: String,
}

/// How the board names a car: as car-service described it when the order was booked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CarSummary {
    pub id: Uuid,
    pub license_plate: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
}

/// One order on the board.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BoardOrder {
    #[serde(flatten)]
    pub order: crate::domain::Order,
    pub car: CarSummary,
}

/// One bay's orders of the day, in time order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct BayDay {
    pub bay: u32,
    pub orders: Vec<BoardOrder>,
}

/// `GET /api/orders/board`'s answer: every bay, with the live orders (not cancelled) that
/// hold it at some time of the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Board {
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    #[schema(example = "Europe/Moscow")]
    pub time_zone: String,
    pub bays: Vec<BayDay>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use api::money::Money;
    use serde_json::{json, Value};

    fn entry(n: u128, minutes: Option<u32>) -> CatalogEntry {
        CatalogEntry {
            id: Uuid::from_u128(n),
            name: format!("entry {n}"),
            kind: if minutes.is_some() {
                "service"
            } else {
                "product"
            }
            .into(),
            price: Money::from_kopecks(100).unwrap(),
            active: true,
            duration_minutes: minutes,
        }
    }

    fn item(n: u128, quantity: u32) -> ItemRequest {
        ItemRequest {
            catalog_id: Uuid::from_u128(n),
            quantity,
        }
    }

    fn object(value: Value) -> Object {
        match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn work_is_the_services_times_their_quantities_rounded_up_to_the_half_hour() {
        let catalog = [entry(1, Some(45)), entry(2, Some(180)), entry(3, None)];
        assert_eq!(work_minutes(&[], &catalog), 30);
        assert_eq!(work_minutes(&[item(3, 5)], &catalog), 30);
        assert_eq!(work_minutes(&[item(1, 1)], &catalog), 60);
        assert_eq!(work_minutes(&[item(1, 2)], &catalog), 90);
        assert_eq!(
            work_minutes(&[item(1, 1), item(2, 1), item(3, 2)], &catalog),
            240
        );
        assert_eq!(work_minutes(&[item(2, 100)], &catalog), 18000);
    }

    #[test]
    fn a_slots_question_names_a_day_and_distinct_entries() {
        let ask = |raw: &str| SlotsQuery::parse(&Query::parse(raw).unwrap());
        let id = "6b1f2c1e-0001-4000-8000-000000000001";
        let asked = ask(&format!("date=2030-12-20&items={id}")).unwrap();
        assert_eq!(asked.date, NaiveDate::from_ymd_opt(2030, 12, 20).unwrap());
        assert_eq!(
            asked.items,
            [item(0x6b1f2c1e_0001_4000_8000_000000000001, 1)]
        );
        assert!(ask("date=2030-12-20").unwrap().items.is_empty());
        assert!(ask("date=2030-12-20&items=").unwrap().items.is_empty());
        for (bad, field) in [
            ("", "date"),
            ("date=2030-02-30", "date"),
            ("date=1999-12-31", "date"),
            ("date=2030-1-2", "date"),
            ("date=2030-12-20&items=x", "items"),
            (&format!("date=2030-12-20&items={id},{id}") as &str, "items"),
        ] {
            let errors = ask(bad).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, field, "{bad}");
        }
        let many: Vec<String> = (0..51).map(|n| Uuid::from_u128(n).to_string()).collect();
        let errors = ask(&format!("date=2030-12-20&items={}", many.join(","))).unwrap_err();
        assert!(errors.as_slice()[0].message.contains("at most 50"));
    }

    #[test]
    fn settings_name_days_and_close_after_opening() {
        let parse = |hours: Value| {
            ShopSettings::parse(&object(
                json!({"bays": 3, "time_zone": "Europe/Moscow", "hours": hours}),
            ))
        };
        let ok = parse(json!({"monday": {"opens": "09:00", "closes": "24:00"},
                              "sunday": {"opens": "10:30", "closes": "11:00"},
                              "friday": null}))
        .unwrap();
        let days = ok.hours.open_days();
        assert_eq!(
            days.iter().map(|day| day.weekday).collect::<Vec<_>>(),
            [1, 7]
        );
        assert_eq!(WeekHours::from_open_days(days), ok.hours);
        assert!(parse(json!({})).unwrap().hours.open_days().is_empty());
        let errors = parse(json!({"tuesday": {"opens": "12:00", "closes": "12:00"}})).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "hours.tuesday.closes");
        for bad in [
            json!({"monday": {"opens": "09:15", "closes": "21:00"}}),
            json!({"monday": {"opens": "24:00", "closes": "24:00"}}),
            json!({"monday": {"opens": "9:00", "closes": "21:00"}}),
            json!({"munday": {"opens": "09:00", "closes": "21:00"}}),
            json!([]),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
        let body = |bays: Value, zone: Value| {
            ShopSettings::parse(&object(
                json!({"bays": bays, "time_zone": zone, "hours": {}}),
            ))
        };
        assert!(body(json!(0), json!("UTC")).is_err());
        assert!(body(json!(101), json!("UTC")).is_err());
        assert!(body(json!(3), json!("")).is_err());
        assert!(body(json!(3), json!("Europe/Moscow; DROP")).is_err());
    }

    #[test]
    fn outside_hours_names_the_days_hours_or_says_closed() {
        let mut outside = OutsideHours {
            weekday: "Friday".into(),
            time_zone: "Europe/Moscow".into(),
            starts: "20:00".into(),
            minutes: 90,
            hours: Some(DayHours {
                opens: "09:00".into(),
                closes: "21:00".into(),
            }),
        };
        assert_eq!(
            outside.to_string(),
            "the shop is open 09:00-21:00 on Friday (Europe/Moscow); 90 minutes of work from \
             20:00 do not fit"
        );
        outside.hours = None;
        assert_eq!(
            outside.to_string(),
            "the shop is closed on Friday (Europe/Moscow)"
        );
    }

    #[test]
    fn a_change_moves_the_start_to_a_half_hour_or_assigns_or_both() {
        let change = |body: Value| OrderChange::parse(&object(body));
        let moved = change(json!({"desired_time": "2030-12-20T10:30:00Z"})).unwrap();
        assert_eq!(
            (moved.desired_time.is_some(), moved.assigned_to),
            (true, None)
        );
        assert!(change(json!({"desired_time": "2030-12-20T10:15:00Z"})).is_err());
        let nothing = change(json!({})).unwrap();
        assert_eq!((nothing.desired_time, nothing.assigned_to), (None, None));
        assert_eq!(change(json!({"desired_time": null})).unwrap(), nothing);
        let staff = "3fa85f64-5717-4562-b3fc-2c963f66afa6";
        let assigned = change(json!({"assigned_to": staff})).unwrap();
        assert_eq!(assigned.assigned_to, Some(Some(staff.parse().unwrap())));
        assert_eq!(assigned.desired_time, None);
        let unassigned = change(json!({"assigned_to": null})).unwrap();
        assert_eq!(unassigned.assigned_to, Some(None));
        let errors = change(json!({"assigned_to": "somebody"})).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "assigned_to");
    }
}
