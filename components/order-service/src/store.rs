//! `orders.orders` in PostgreSQL (migrations/0002_orders.sql, 0017_capacity.sql), one
//! statement per intent.
//!
//! Every statement returns at least one row, because Spin 4.0.2 hangs when a `pg3` query
//! returns none (docs/spin-compatibility.md): lookups run through [`db::lookup`], and lists
//! LEFT JOIN onto `(SELECT 1)` and drop the all-NULL row. UUIDs and timestamps travel as
//! text (`$1::text::uuid`, `id::text`, `$3::text::timestamptz`, RFC 3339 in UTC formatted by
//! Postgres): Spin's client rejects a string bound to `$1::uuid`, and pg3's datetime value
//! carries no zone.

use api::db::{self, Row};
use api::money::Money;
use api::query::Page;
use api::ApiError;
use chrono::{NaiveDate, SecondsFormat};
use serde::{Deserialize, Serialize};
use spin_sdk::pg3::{Connection, ParameterValue};
use uuid::Uuid;

use crate::car_client::CarRef;
use crate::domain::{DesiredTime, NewOrder, NewReview, Order, OrderLine, OrderStatus, Review};
use crate::schedule::{
    BayDay, Board, BoardOrder, CarSummary, DayHours, OrderChange, OutsideHours, ShopSettings, Slot,
    Slots, WeekHours, WeekdayHours,
};

/// The columns of an order, read from the relation aliased `o`.
macro_rules! order_columns {
    () => {
        concat!(
            "o.id::text AS id, o.car_id::text AS car_id, o.user_id::text AS user_id, ",
            api::rfc3339!("o.desired_time"),
            " AS desired_time, ",
            api::rfc3339!("o.ends_at"),
            " AS ends_at, o.bay, o.assigned_to::text AS assigned_to, o.description, o.status, \
             o.total_kopecks, ",
            api::rfc3339!("o.created_at"),
            " AS created_at"
        )
    };
}

/// An order's lines as JSON text (pg3 has no json value), in the [`StoredLine`] shape.
macro_rules! lines_of_o {
    () => {
        "(SELECT coalesce(json_agg(json_build_object(\
            'line_no', l.line_no, 'catalog_id', l.catalog_id, 'name', l.name, 'kind', l.kind, \
            'unit_price_kopecks', l.unit_price_kopecks, 'quantity', l.quantity) \
            ORDER BY l.line_no), '[]'::json)::text \
          FROM orders.order_lines AS l WHERE l.order_id = o.id) AS lines"
    };
}

/// What a change stamps in `updated_at`: now, but always later than the stamp it replaces,
/// so every change gives the order a new version (`updated_at` to the microsecond).
macro_rules! next_version {
    () => {
        "greatest(now(), updated_at + interval '1 microsecond')"
    };
}

/// Where an order of `want` (one row: `starts`, `ends`, and `moving`, the order being moved,
/// NULL for a new one) may go, as CTEs after `want`: `hours`, whether it fits that day's
/// opening hours in the shop's time zone (with what to say when it does not), and `free`,
/// the lowest bay no other live order holds at any moment of it (NULL: none). This is a read:
/// the exclusion constraint refuses the write if another booking took the bay meanwhile.
/// `free` asks once which bays are busy then, not bay by bay: that way the planner looks the
/// time up in the constraint's index (by time first), where a per-bay NOT EXISTS made it scan
/// every order of the bay.
macro_rules! placement {
    () => {
        "shop AS (SELECT bays, time_zone FROM orders.shop), \
         local AS (\
           SELECT want.starts AT TIME ZONE shop.time_zone AS starts, \
                  want.ends AT TIME ZONE shop.time_zone AS ends, shop.time_zone \
           FROM want, shop\
         ), hours AS (\
           SELECT h.opens IS NOT NULL AND local.starts::time >= h.opens \
                    AND local.ends <= local.starts::date + h.closes AS fits, \
                  to_char(local.starts, 'FMDay') AS weekday, local.time_zone, \
                  to_char(local.starts, 'HH24:MI') AS local_start, \
                  to_char(h.opens, 'HH24:MI') AS opens, to_char(h.closes, 'HH24:MI') AS closes \
           FROM local LEFT JOIN orders.opening_hours AS h \
             ON h.weekday = extract(isodow FROM local.starts)\
         ), free AS (\
           SELECT min(b) AS bay FROM generate_series(1, (SELECT bays FROM orders.shop)) AS b \
           WHERE b NOT IN (\
             SELECT x.bay FROM want, orders.orders AS x \
             WHERE x.bay IS NOT NULL AND x.status <> 'cancelled' \
               AND x.id IS DISTINCT FROM want.moving \
               AND tstzrange(x.desired_time, x.ends_at) && tstzrange(want.starts, want.ends))\
         )"
    };
}

/// What [`placement!`] decided, as columns of the answer (read by [`read_placement`]).
macro_rules! verdict {
    () => {
        "hours.fits, hours.weekday, hours.time_zone, hours.local_start, hours.opens, \
         hours.closes, free.bay AS free_bay"
    };
}

/// The order and its lines in one statement, so both are stored or neither, in the lowest
/// free bay if the work fits the opening hours; `$8` is its length in minutes. The lines
/// just written are not visible to a subquery of the same statement, so the answer echoes
/// them from the parameter they were written from. One row always: the order's columns are
/// NULL when it was not booked, and the verdict says why. A booking that took the chosen bay
/// meanwhile makes the insert do nothing (`ON CONFLICT DO NOTHING`, with the exclusion
/// constraint as arbiter): PostgreSQL's speculative insertion lets one of two such inserts
/// give way at once, where two plain inserts would wait on each other until the deadlock
/// detector ends one a second later.
const BOOK: &str = concat!(
    "WITH want AS (\
       SELECT $3::text::timestamptz AS starts, \
              $3::text::timestamptz + make_interval(mins => $8::int4) AS ends, NULL::uuid AS moving\
     ), ",
    placement!(),
    ", o AS (\
       INSERT INTO orders.orders (car_id, user_id, desired_time, ends_at, bay, description, \
         status, total_kopecks, car_plate, car_make, car_model) \
       SELECT $1::text::uuid, $2::text::uuid, want.starts, want.ends, free.bay, $4::text, \
              $5::text, $6::int8, $9::text, $10::text, $11::text \
       FROM want, free, hours WHERE hours.fits AND free.bay IS NOT NULL \
       ON CONFLICT DO NOTHING \
       RETURNING *\
     ), lines AS (\
       INSERT INTO orders.order_lines \
         (order_id, line_no, catalog_id, name, kind, unit_price_kopecks, quantity) \
       SELECT o.id, x.line_no, x.catalog_id, x.name, x.kind, x.unit_price_kopecks, x.quantity \
       FROM o, jsonb_to_recordset($7::text::jsonb) AS x(line_no int, catalog_id uuid, name text, \
            kind text, unit_price_kopecks int8, quantity int) \
       RETURNING order_id\
     ) SELECT ",
    order_columns!(),
    ", $7::text AS lines, ",
    verdict!(),
    " FROM hours CROSS JOIN free LEFT JOIN o ON true"
);

/// Changes an order: with a new start `$2`, moves a `created` or `confirmed` order there,
/// keeping its length, into the lowest bay free for it then (its own old place does not
/// count); with `$3` true, assigns it to `$4` (NULL: nobody), which an `in_progress` order
/// may be too. One row always: NULL order columns when nothing changed, and then the verdict
/// says why (NULL verdict too: the order is gone or no longer in those statuses).
const CHANGE: &str = concat!(
    "WITH current AS (\
       SELECT id, desired_time, \
              make_interval(secs => extract(epoch FROM ends_at - desired_time)) AS length \
       FROM orders.orders WHERE id = $1::text::uuid \
         AND (status IN ('created', 'confirmed') OR ($2::text IS NULL AND status = 'in_progress'))\
     ), want AS (\
       SELECT coalesce($2::text::timestamptz, current.desired_time) AS starts, \
              coalesce($2::text::timestamptz, current.desired_time) + current.length AS ends, \
              current.id AS moving \
       FROM current\
     ), ",
    placement!(),
    ", o AS (\
       UPDATE orders.orders AS o \
       SET desired_time = want.starts, ends_at = want.ends, \
           bay = CASE WHEN $2::text IS NULL THEN o.bay ELSE free.bay END, \
           assigned_to = CASE WHEN $3::bool THEN $4::text::uuid ELSE o.assigned_to END, \
           updated_at = ",
    next_version!(),
    " FROM want, free, hours \
       WHERE o.id = want.moving \
         AND (o.status IN ('created', 'confirmed') \
              OR ($2::text IS NULL AND o.status = 'in_progress')) \
         AND ($2::text IS NULL OR (hours.fits AND free.bay IS NOT NULL)) \
       RETURNING o.*\
     ) SELECT ",
    order_columns!(),
    ", ",
    lines_of_o!(),
    ", ",
    verdict!(),
    " FROM (SELECT 1) AS one LEFT JOIN hours ON true LEFT JOIN free ON true LEFT JOIN o ON true"
);

/// The order, its lines and its version.
const FIND: &str = concat!(
    "SELECT ",
    order_columns!(),
    ", ",
    lines_of_o!(),
    ", ",
    api::rfc3339!("o.updated_at"),
    " AS version FROM orders.orders AS o WHERE o.id = $1::text::uuid"
);

/// A line as stored, in the JSON the statements above read and write.
#[derive(Debug, Serialize, Deserialize)]
struct StoredLine {
    line_no: u32,
    catalog_id: Uuid,
    name: String,
    kind: String,
    unit_price_kopecks: i64,
    quantity: u32,
}

impl StoredLine {
    fn priced(self) -> Option<OrderLine> {
        let unit_price = Money::from_kopecks(self.unit_price_kopecks)?;
        Some(OrderLine {
            catalog_id: self.catalog_id,
            name: self.name,
            kind: self.kind,
            unit_price,
            quantity: self.quantity,
            line_total: unit_price.times(self.quantity)?,
        })
    }
}

/// Where a booking or a move ended.
#[derive(Debug)]
pub enum Placement {
    /// Booked or moved: the order as it now is.
    Placed(Order),
    /// The work does not fit the opening hours at that time.
    Outside(OutsideHours),
    /// Every bay is taken at some moment of it.
    Taken,
    /// (A move only) the order is gone or no longer `created`/`confirmed`.
    Unmovable,
}

/// How often a placement is tried when another booking took the chosen bay between the read
/// and the write (each try sees the bookings committed before it; see [`place`]).
const ATTEMPTS: usize = 8;

/// Runs a placement statement ([`BOOK`], [`CHANGE`]) until a concurrent booking no longer
/// takes the bay it chose, at most [`ATTEMPTS`] times; still beaten after that, the time is
/// as good as taken. Beaten means: the insert did nothing although a bay was free, or the
/// exclusion constraint refused the write (SQLSTATE 23P01), or two writes into one bay waited
/// on each other and this one was ended to break the deadlock (40P01).
fn place(
    db: &Connection,
    statement: &str,
    params: &[ParameterValue],
    minutes: u32,
) -> Result<Placement, ApiError> {
    for _ in 0..ATTEMPTS {
        if let Some(rows) = db::query_unless(db, statement, params, &["23P01", "40P01"])? {
            if let Some(placement) = read_placement(&db::one_row(rows)?, minutes)? {
                return Ok(placement);
            }
        }
    }
    Ok(Placement::Taken)
}

/// The answer of a placement statement: the order, or the verdict's reason it is not there;
/// `None` when the verdict found a bay but the write did not take it (a concurrent booking
/// did: try again).
fn read_placement(row: &Row, minutes: u32) -> Result<Option<Placement>, ApiError> {
    if !row.is_null("id")? {
        return order_from_row(row).map(|order| Some(Placement::Placed(order)));
    }
    let Some(fits) = row.get::<Option<bool>>("fits")? else {
        return Ok(Some(Placement::Unmovable));
    };
    if fits {
        return Ok(if row.is_null("free_bay")? {
            Some(Placement::Taken)
        } else {
            None
        });
    }
    let hours = day_hours(row)?;
    Ok(Some(Placement::Outside(OutsideHours {
        weekday: row.get("weekday")?,
        time_zone: row.get("time_zone")?,
        starts: row.get("local_start")?,
        minutes,
        hours,
    })))
}

/// A day's hours from a row's `opens` and `closes` (`HH:MM` text); `None` when the shop is
/// closed that day (both NULL).
fn day_hours(row: &Row) -> Result<Option<DayHours>, ApiError> {
    Ok(
        match (row.get::<Option<String>>("opens")?, row.get("closes")?) {
            (Some(opens), Some(closes)) => Some(DayHours { opens, closes }),
            _ => None,
        },
    )
}

/// Books `order` for the car's owner in status `created`, with its priced lines and total,
/// holding a bay for `minutes` from its desired time.
pub fn book(
    db: &Connection,
    order: &NewOrder,
    car: &CarRef,
    lines: &[OrderLine],
    total: Money,
    minutes: u32,
) -> Result<Placement, ApiError> {
    let stored: Vec<StoredLine> = lines
        .iter()
        .enumerate()
        .map(|(index, line)| StoredLine {
            line_no: index as u32 + 1,
            catalog_id: line.catalog_id,
            name: line.name.clone(),
            kind: line.kind.clone(),
            unit_price_kopecks: line.unit_price.kopecks(),
            quantity: line.quantity,
        })
        .collect();
    let stored = serde_json::to_string(&stored)
        .map_err(|error| ApiError::internal("the order could not be encoded").with_detail(error))?;
    let params = [
        order.car_id.to_string().into(),
        car.owner_id.to_string().into(),
        timestamp_param(order.desired_time),
        order.description.as_str().to_owned().into(),
        OrderStatus::Created.as_str().to_owned().into(),
        total.kopecks().into(),
        stored.into(),
        minutes_param(minutes),
        db::text_or_null(car.license_plate.clone()),
        db::text_or_null(car.make.clone()),
        db::text_or_null(car.model.clone()),
    ];
    place(db, BOOK, &params, minutes)
}

/// Applies `change` to the order ([`CHANGE`]); `minutes`, its length, is for the answer.
/// Without a new time only [`Placement::Placed`] and [`Placement::Unmovable`] come back.
pub fn change(
    db: &Connection,
    id: Uuid,
    change: &OrderChange,
    minutes: u32,
) -> Result<Placement, ApiError> {
    let params = [
        id.to_string().into(),
        change
            .desired_time
            .map_or(ParameterValue::DbNull, timestamp_param),
        change.assigned_to.is_some().into(),
        db::text_or_null(change.assigned_to.flatten().map(|user| user.to_string())),
    ];
    match place(db, CHANGE, &params, minutes)? {
        placed @ Placement::Placed(_) => Ok(placed),
        _ if change.desired_time.is_none() => Ok(Placement::Unmovable),
        refused => Ok(refused),
    }
}

/// A time as the statements take it: RFC 3339 text in UTC.
fn timestamp_param(time: DesiredTime) -> ParameterValue {
    time.utc()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
        .into()
}

/// Minutes as an `int4` parameter (a day's work at most fits, so the cast never saturates
/// for a time that could be booked).
fn minutes_param(minutes: u32) -> ParameterValue {
    i32::try_from(minutes).unwrap_or(i32::MAX).into()
}

/// Newest first: `user` limits to one user's orders (`None`: everyone's, for staff),
/// `page.after` starts after a cursor. The LATERAL join keeps the one-row shape when the
/// page is empty (an all-NULL row, dropped below).
const LIST: &str = concat!(
    "SELECT ",
    order_columns!(),
    ", ",
    lines_of_o!(),
    " FROM (SELECT 1) AS one LEFT JOIN LATERAL (\
       SELECT * FROM orders.orders AS inner_o \
       WHERE ($1::text IS NULL OR inner_o.user_id = $1::text::uuid) \
         AND ($2::text IS NULL \
              OR (inner_o.created_at, inner_o.id) < ($2::text::timestamptz, $3::text::uuid)) \
       ORDER BY inner_o.created_at DESC, inner_o.id DESC \
       LIMIT $4::int8\
     ) AS o ON true \
     ORDER BY o.created_at DESC, o.id DESC"
);

/// Moves the order from `from` to `to` only if it is still in `from` (compare and set), so
/// two concurrent changes cannot both apply; with a version (`$4`), only if the order has
/// not changed at all since it was read at that version.
const SET_STATUS: &str = concat!(
    "UPDATE orders.orders AS o SET status = $3::text, updated_at = ",
    next_version!(),
    " WHERE o.id = $1::text::uuid AND o.status = $2::text \
       AND ($4::text IS NULL OR o.updated_at = $4::text::timestamptz) \
     RETURNING ",
    order_columns!(),
    ", ",
    lines_of_o!()
);

/// Gives the order a new version and answers it as it now is: payment-service's check just
/// before it charges (the order is read by a write, so it is ordered against cancellations;
/// see lib.rs `change_status`).
const PAYMENT_CHECK: &str = concat!(
    "UPDATE orders.orders AS o SET updated_at = ",
    next_version!(),
    " WHERE o.id = $1::text::uuid RETURNING ",
    order_columns!(),
    ", ",
    lines_of_o!()
);

/// Records the review unless the order has one; `created` is NULL when it had.
const REVIEW: &str = concat!(
    "INSERT INTO orders.reviews AS r (order_id, user_id, rating, comment) \
     VALUES ($1::text::uuid, $2::text::uuid, $3::int4, $4::text) \
     ON CONFLICT (order_id) DO NOTHING RETURNING ",
    api::rfc3339!("r.created_at"),
    " AS created_at"
);

pub fn list(db: &Connection, user: Option<Uuid>, page: &Page) -> Result<Vec<Order>, ApiError> {
    let params = db::paged(vec![db::text_or_null(user.map(|id| id.to_string()))], page);
    db::list(db::query(db, LIST, &params)?, "id", order_from_row)
}

/// The order after the move, or `None` when it was no longer in `from` (or, with
/// `version`, no longer at that version).
pub fn set_status(
    db: &Connection,
    id: Uuid,
    from: OrderStatus,
    to: OrderStatus,
    version: Option<&Version>,
) -> Result<Option<Order>, ApiError> {
    let params = [
        id.to_string().into(),
        from.as_str().to_owned().into(),
        to.as_str().to_owned().into(),
        db::text_or_null(version.map(|version| version.0.clone())),
    ];
    db::lookup(db, SET_STATUS, &params, order_from_row)
}

pub fn find(db: &Connection, id: Uuid) -> Result<Option<Order>, ApiError> {
    Ok(find_versioned(db, id)?.map(|(order, _)| order))
}

/// An order's version: any change to the order gives it a new one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version(String);

/// The order with its version.
pub fn find_versioned(db: &Connection, id: Uuid) -> Result<Option<(Order, Version)>, ApiError> {
    db::lookup(db, FIND, &[id.to_string().into()], |row| {
        Ok((order_from_row(row)?, Version(row.get("version")?)))
    })
}

/// The order after [`PAYMENT_CHECK`] gave it a new version (`None`: no such order).
pub fn payment_check(db: &Connection, id: Uuid) -> Result<Option<Order>, ApiError> {
    db::lookup(db, PAYMENT_CHECK, &[id.to_string().into()], order_from_row)
}

/// The order in `row`.
fn order_from_row(row: &Row) -> Result<Order, ApiError> {
    let status: String = row.get("status")?;
    Ok(Order {
        id: row.uuid("id")?,
        car_id: row.uuid("car_id")?,
        user_id: row.uuid("user_id")?,
        desired_time: row.timestamp("desired_time")?,
        ends_at: row.timestamp("ends_at")?,
        assigned_to: row
            .get::<Option<String>>("assigned_to")?
            .map(|text| Uuid::parse_str(&text).map_err(|e| db::unexpected("assigned_to", e)))
            .transpose()?,
        bay: row
            .get::<Option<i32>>("bay")?
            .map(|bay| u32::try_from(bay).map_err(|error| db::unexpected("bay", error)))
            .transpose()?,
        description: row.get("description")?,
        status: OrderStatus::parse(&status)
            .ok_or_else(|| db::unexpected("status", format!("unknown status {status:?}")))?,
        items: row.parse("lines", |text| {
            serde_json::from_str::<Vec<StoredLine>>(text)
                .map_err(|error| error.to_string())?
                .into_iter()
                .map(|line| line.priced().ok_or("a line's amount is out of range"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(str::to_owned)
        })?,
        total: {
            let kopecks: i64 = row.get("total_kopecks")?;
            Money::from_kopecks(kopecks)
                .ok_or_else(|| db::unexpected("total_kopecks", "out of range"))?
        },
        created_at: row.timestamp("created_at")?,
    })
}

/// Stores `review` by `user_id`, or `None` when the order already has one.
pub fn add_review(
    db: &Connection,
    review: &NewReview,
    user_id: Uuid,
) -> Result<Option<Review>, ApiError> {
    let params = [
        review.order_id.to_string().into(),
        user_id.to_string().into(),
        review.rating.into(),
        review.comment.as_str().to_owned().into(),
    ];
    db::lookup(db, REVIEW, &params, |row| {
        Ok(Review {
            order_id: review.order_id,
            user_id,
            rating: review.rating,
            comment: review.comment.as_str().to_owned(),
            created_at: row.timestamp("created_at")?,
        })
    })
}

/// The start times on `$1` (a date, in the shop's time zone) where work of `$2` minutes fits
/// the opening hours, is still ahead, and finds a bay free throughout, with how many; each
/// row also carries the shop's time zone and that day's hours (NULL: closed). One row at
/// least: with no free time, its `starts` is NULL.
const SLOTS: &str = concat!(
    "WITH shop AS (SELECT bays, time_zone FROM orders.shop), \
     want AS (SELECT $1::text::date AS day, make_interval(mins => $2::int4) AS length), \
     day_hours AS (\
       SELECT h.opens, h.closes FROM want, orders.opening_hours AS h \
       WHERE h.weekday = extract(isodow FROM want.day)\
     ), starts AS (\
       SELECT (want.day + day_hours.opens + n * interval '30 minutes') \
                AT TIME ZONE shop.time_zone AS starts \
       FROM want, shop, day_hours, generate_series(0, 47) AS n \
       WHERE want.day + day_hours.opens + n * interval '30 minutes' + want.length \
             <= want.day + day_hours.closes\
     ), free AS (\
       SELECT s.starts, shop.bays - (\
         SELECT count(DISTINCT x.bay) FROM orders.orders AS x \
         WHERE x.bay IS NOT NULL AND x.status <> 'cancelled' AND x.bay <= shop.bays \
           AND tstzrange(x.desired_time, x.ends_at) \
               && tstzrange(s.starts, s.starts + want.length)\
       ) AS free_bays \
       FROM starts AS s, shop, want WHERE s.starts > now()\
     ) SELECT shop.time_zone, to_char(day_hours.opens, 'HH24:MI') AS opens, \
              to_char(day_hours.closes, 'HH24:MI') AS closes, ",
    api::rfc3339!("free.starts"),
    " AS starts, free.free_bays::int4 AS free_bays \
     FROM shop LEFT JOIN day_hours ON true LEFT JOIN free ON free.free_bays > 0 \
     ORDER BY free.starts"
);

/// The free start times for `minutes` of work on `date`.
pub fn slots(db: &Connection, date: NaiveDate, minutes: u32) -> Result<Slots, ApiError> {
    let params = [date.to_string().into(), minutes_param(minutes)];
    let rows = db::rows(db::query(db, SLOTS, &params)?);
    let first = rows
        .first()
        .ok_or_else(|| db::unexpected("time_zone", "no row"))?;
    let hours = day_hours(first)?;
    let mut slots = Vec::with_capacity(rows.len());
    for row in &rows {
        if row.is_null("starts")? {
            continue;
        }
        let free_bays: i32 = row.get("free_bays")?;
        slots.push(Slot {
            starts_at: row.timestamp("starts")?,
            free_bays: u32::try_from(free_bays).map_err(|e| db::unexpected("free_bays", e))?,
        });
    }
    Ok(Slots {
        date,
        time_zone: first.get("time_zone")?,
        hours,
        duration_minutes: minutes,
        slots,
    })
}

/// The shop's settings: bays, time zone and the weeks' hours as JSON text.
const SHOP: &str = "SELECT s.bays, s.time_zone, (\
       SELECT coalesce(json_agg(json_build_object('weekday', h.weekday, \
         'opens', to_char(h.opens, 'HH24:MI'), 'closes', to_char(h.closes, 'HH24:MI')) \
         ORDER BY h.weekday), '[]'::json)::text FROM orders.opening_hours AS h\
     ) AS hours FROM orders.shop AS s";

pub fn shop(db: &Connection) -> Result<ShopSettings, ApiError> {
    let row = db::one_row(db::query(db, SHOP, &[])?)?;
    let bays: i32 = row.get("bays")?;
    Ok(ShopSettings {
        bays: u32::try_from(bays).map_err(|error| db::unexpected("bays", error))?,
        time_zone: row.get("time_zone")?,
        hours: WeekHours::from_open_days(row.parse("hours", |text| {
            serde_json::from_str::<Vec<WeekdayHours>>(text)
        })?),
    })
}

/// Replaces the settings in one statement, unless PostgreSQL does not know the time zone
/// (`zone_known` false) or a live order from now on holds a bay beyond the new count
/// (`highest_bay_in_use` above `$1`): then nothing changes. A weekday not in `$3` closes.
const SET_SHOP: &str = "WITH zone AS (\
       SELECT min(name) AS name FROM pg_timezone_names WHERE name = $2::text\
     ), in_use AS (\
       SELECT max(bay) AS bay FROM orders.orders \
       WHERE bay IS NOT NULL AND status IN ('created', 'confirmed', 'in_progress') \
         AND ends_at > now()\
     ), s AS (\
       UPDATE orders.shop SET bays = $1::int4, time_zone = zone.name, updated_at = now() \
       FROM zone, in_use \
       WHERE zone.name IS NOT NULL AND coalesce(in_use.bay, 0) <= $1::int4 \
       RETURNING bays\
     ), days AS (\
       SELECT * FROM jsonb_to_recordset($3::text::jsonb) AS d(weekday int, opens time, closes time)\
     ), upserted AS (\
       INSERT INTO orders.opening_hours (weekday, opens, closes) \
       SELECT days.weekday, days.opens, days.closes FROM days WHERE EXISTS (SELECT 1 FROM s) \
       ON CONFLICT (weekday) DO UPDATE SET opens = excluded.opens, closes = excluded.closes \
       RETURNING weekday\
     ), closed AS (\
       DELETE FROM orders.opening_hours AS h \
       WHERE EXISTS (SELECT 1 FROM s) AND h.weekday NOT IN (SELECT weekday FROM days) \
       RETURNING weekday\
     ) SELECT zone.name IS NOT NULL AS zone_known, in_use.bay AS highest_bay_in_use, \
              (SELECT count(*) FROM s)::int4 AS changed \
       FROM zone, in_use";

/// Why settings were not stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShopRefused {
    UnknownTimeZone,
    /// A live order holds this bay, beyond the count asked for.
    BayInUse(u32),
}

/// Stores `settings` (see [`SET_SHOP`]) and answers them as stored.
pub fn set_shop(
    db: &Connection,
    settings: &ShopSettings,
) -> Result<Result<ShopSettings, ShopRefused>, ApiError> {
    let days = serde_json::to_string(&settings.hours.open_days())
        .map_err(|error| ApiError::internal("the hours could not be encoded").with_detail(error))?;
    let params = [
        i32::try_from(settings.bays).unwrap_or(i32::MAX).into(),
        settings.time_zone.clone().into(),
        days.into(),
    ];
    let row = db::one_row(db::query(db, SET_SHOP, &params)?)?;
    if !row.get::<bool>("zone_known")? {
        return Ok(Err(ShopRefused::UnknownTimeZone));
    }
    if row.get::<i32>("changed")? == 0 {
        let bay: i32 = row.get("highest_bay_in_use")?;
        return Ok(Err(ShopRefused::BayInUse(bay.max(0) as u32)));
    }
    shop(db).map(Ok)
}

/// The live orders holding a bay at some time of `$1` (a date in the shop's time zone), by
/// bay and start, with the car as booked; each row also carries the shop's bay count. One row
/// at least: with no orders, its `id` is NULL.
const BOARD: &str = concat!(
    "WITH shop AS (SELECT bays, time_zone FROM orders.shop), \
     day AS (\
       SELECT $1::text::date::timestamp AT TIME ZONE shop.time_zone AS starts, \
              ($1::text::date + 1)::timestamp AT TIME ZONE shop.time_zone AS ends \
       FROM shop\
     ) SELECT shop.bays AS shop_bays, shop.time_zone AS shop_time_zone, ",
    order_columns!(),
    ", ",
    lines_of_o!(),
    ", o.car_plate, o.car_make, o.car_model \
     FROM shop CROSS JOIN day LEFT JOIN orders.orders AS o \
       ON o.bay IS NOT NULL AND o.status <> 'cancelled' \
      AND tstzrange(o.desired_time, o.ends_at) && tstzrange(day.starts, day.ends) \
     ORDER BY o.bay, o.desired_time"
);

/// The day's board: every bay of the shop (and any beyond it that still holds an order that
/// day), each with its orders in time order.
pub fn board(db: &Connection, date: NaiveDate) -> Result<Board, ApiError> {
    let rows = db::rows(db::query(db, BOARD, &[date.to_string().into()])?);
    let first = rows
        .first()
        .ok_or_else(|| db::unexpected("shop_bays", "no row"))?;
    let shop_bays: i32 = first.get("shop_bays")?;
    let mut bays: Vec<BayDay> = (1..=shop_bays.max(0) as u32)
        .map(|bay| BayDay {
            bay,
            orders: Vec::new(),
        })
        .collect();
    for row in &rows {
        if row.is_null("id")? {
            continue;
        }
        let order = order_from_row(row)?;
        let bay = order.bay.unwrap_or(0);
        while bays.len() < bay as usize {
            bays.push(BayDay {
                bay: bays.len() as u32 + 1,
                orders: Vec::new(),
            });
        }
        let car = CarSummary {
            id: order.car_id,
            license_plate: row.get("car_plate")?,
            make: row.get("car_make")?,
            model: row.get("car_model")?,
        };
        if let Some(day) = (bay as usize).checked_sub(1).and_then(|i| bays.get_mut(i)) {
            day.orders.push(BoardOrder { order, car });
        }
    }
    Ok(Board {
        date,
        time_zone: first.get("shop_time_zone")?,
        bays,
    })
}
