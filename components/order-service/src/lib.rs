//! order-service: books cars in, as a Spin HTTP component routed at `/api/orders/...`.
//! A booking is checked against car-service first (no car, 404). This
//! file only maps HTTP to the domain (`domain`), car-service (`car_client`) and the table
//! (`store`); it must not hold business rules.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

mod car_client;
mod catalog_client;
pub mod domain;
mod error;
mod payment_client;
pub mod schedule;
mod store;

use api::http::{json_response, read_json_object};
use api::money::Money;
use api::query::{Cursor, Page, Query};
use api::routes::Routes;
use api::upstream::Upstream;
use api::{ApiError, Caller, FieldErrors};
use spin_sdk::http::{Params, Request, Response, Router};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::domain::{NewOrder, NewReview, Order, OrderStatus};
use crate::error::OrderError;
use crate::payment_client::Holding;

const SERVICE: &str = "order-service";

api::export_router!(router);

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn routes() -> Routes {
    Routes::service("/api/orders", SERVICE)
        .post_async("/api/orders", create_order)
        .post("/api/orders/review", review_order)
        .get("/api/orders", list_orders)
        .get_async("/api/orders/slots", free_slots)
        .get("/api/orders/shop", get_shop)
        .get("/api/orders/board", get_board)
        .put("/api/orders/shop", put_shop)
        .get("/api/orders/:order_id", get_order)
        .patch("/api/orders/:order_id", change_order)
        .patch_async("/api/orders/:order_id/status", change_status)
        .post("/api/orders/:order_id/payment-check", payment_check)
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(
        create_order,
        review_order,
        list_orders,
        free_slots,
        get_shop,
        put_shop,
        get_board,
        get_order,
        change_order,
        change_status,
        payment_check
    ))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/orders", "orders"));
    doc
}

/// What the component needs from Spin variables, read per request.
struct Config {
    postgres_url: String,
}

impl Config {
    fn load() -> Result<Self, ApiError> {
        Ok(Self {
            postgres_url: api::config::variable("postgres_url")?,
        })
    }

    /// Where car-service answers (`car_service_url`): `http://car-service.spin.internal`
    /// in one host, a Service URL across pods (docs/deploy.md).
    fn cars() -> Result<Upstream, ApiError> {
        Upstream::from_variable(car_client::CAR_SERVICE, "car_service_url")
    }

    /// Where payment-service answers (`payment_service_url`).
    fn payments() -> Result<Upstream, ApiError> {
        Upstream::from_variable(payment_client::PAYMENT_SERVICE, "payment_service_url")
    }

    /// Where cart-service, the catalog's owner, answers (`cart_service_url`).
    fn carts() -> Result<Upstream, ApiError> {
        Upstream::from_variable(catalog_client::CART_SERVICE, "cart_service_url")
    }
}

#[utoipa::path(post, path = "/api/orders", tag = "orders",
    summary = "Book a car in, with catalog items priced at booking time",
    request_body = domain::OrderRequest,
    responses(
        (status = 201, description = "Booked; `Location` names it", body = domain::Order),
        (status = 404, description = "car_not_found: car-service knows no such car, or not the caller's; catalog_item_not_found: an item names no catalog entry", body = api::openapi::ErrorBody),
        (status = 409, description = "desired_time_passed: the slot is not in the future; slot_taken: every bay is taken at some time during the work (`GET /api/orders/slots` lists free times); total_too_large: the items come to more than any real bill", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: `fields` lists every invalid field; catalog_item_retired: an item's entry is no longer sold (`fields` names it, e.g. `items[0].catalog_id`); outside_opening_hours: the work does not fit that day's opening hours, which the message names", body = api::openapi::ErrorBody),
        (status = 502, description = "car_service_failed or cart_service_failed (the catalog, read only when `items` is not empty): an unexpected answer", body = api::openapi::ErrorBody),
        (status = 503, description = "car_service_unavailable or cart_service_unavailable: could not be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "car_service_timeout or cart_service_timeout: no answer in time", body = api::openapi::ErrorBody),
    ))]
async fn create_order(request: Request, _params: Params) -> Result<Response, OrderError> {
    let _caller = api::auth::caller(&request)?;
    let new_order = NewOrder::parse(&read_json_object(&request)?)?;
    new_order
        .desired_time
        .check_ahead(chrono::Utc::now())
        .map_err(OrderError::TimePassed)?;
    let cars = Config::cars()?;
    let config = Config::load()?;
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    // Ask car-service before opening the database, so no pooled connection is held
    // while waiting on another component. The caller's token goes along: car-service
    // answers 404 for a car that is not theirs, and staff may book any car. The order
    // belongs to the car's owner.
    let car = car_client::fetch_car(&cars, new_order.car_id, authorization).await?;
    // Prices come from the catalog's owner, never from the client.
    let (lines, total, minutes) = if new_order.items.is_empty() {
        (Vec::new(), Money::ZERO, schedule::work_minutes(&[], &[]))
    } else {
        let catalog = current_catalog(&new_order.items, authorization).await?;
        let (lines, total) = domain::price_items(&new_order.items, &catalog)?;
        (
            lines,
            total,
            schedule::work_minutes(&new_order.items, &catalog),
        )
    };
    let db = api::db::open(&config.postgres_url)?;
    let placement = store::book(&db, &new_order, &car, &lines, total, minutes)?;
    let order = placed(placement, new_order.desired_time.utc(), None)?;
    let mut response = json_response(201, &order);
    response.set_header("location", format!("/api/orders/{}", order.id));
    Ok(response)
}

/// `{order_id, rating, comment?}`: the caller's own completed order, once.
#[utoipa::path(post, path = "/api/orders/review", tag = "orders",
    summary = "Review one of the caller's completed orders, once",
    request_body = domain::OrderReviewRequest,
    responses(
        (status = 201, description = "Reviewed", body = domain::Review),
        (status = 404, description = "order_not_found: no such order, or not the caller's own (staff included)", body = api::openapi::ErrorBody),
        (status = 409, description = "order_not_completed: the work is not done yet; already_reviewed: the order has its review", body = api::openapi::ErrorBody),
    ))]
fn review_order(request: Request, _params: Params) -> Result<Response, OrderError> {
    let caller = api::auth::caller(&request)?;
    let review = NewReview::parse(&read_json_object(&request)?)?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    // Reviews are the customer's voice: staff cannot write one for them.
    let order = match store::find(&db, review.order_id)? {
        Some(order) if order.user_id == caller.user_id => order,
        _ => return Err(OrderError::OrderNotFound(review.order_id.to_string())),
    };
    if order.status != OrderStatus::Completed {
        return Err(OrderError::NotCompleted(order.id));
    }
    match store::add_review(&db, &review, caller.user_id)? {
        Some(review) => Ok(json_response(201, &review)),
        None => Err(OrderError::AlreadyReviewed(order.id)),
    }
}

/// The caller's orders, newest first (`?limit=&cursor=`). Staff see everyone's, or one
/// user's with `?user_id=`.
#[utoipa::path(get, path = "/api/orders", tag = "orders",
    summary = "The caller's orders, newest first",
    params(
        api::openapi::PageParams,
        ("user_id" = Option<Uuid>, Query, description = "Staff only: one user's orders (a customer always sees their own)"),
    ),
    responses(
        (status = 200, description = "One page", body = api::query::PageOf<domain::Order>),
        (status = 422, description = "validation_failed: bad limit, cursor or user_id", body = api::openapi::ErrorBody),
    ))]
fn list_orders(request: Request, _params: Params) -> Result<Response, OrderError> {
    let caller = api::auth::caller(&request)?;
    let query = Query::parse(request.query())?;
    let page = Page::parse(&query)?;
    let user = caller
        .list_scope(&query, "user_id")
        .map_err(FieldErrors::from)?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    let orders = store::list(&db, user, &page)?;
    let page = page.finish(orders, |order| Cursor {
        created_at: order.created_at,
        id: order.id,
    });
    Ok(json_response(200, &page))
}

/// Where a booking or a move ended, as the order or the error to answer. `changing` is the
/// order a move was for: no longer movable, it changed status meanwhile (a new booking never
/// ends that way).
fn placed(
    placement: store::Placement,
    at: chrono::DateTime<chrono::Utc>,
    changing: Option<Uuid>,
) -> Result<Order, OrderError> {
    match placement {
        store::Placement::Placed(order) => Ok(order),
        store::Placement::Outside(outside) => Err(OrderError::OutsideHours(Box::new(outside))),
        store::Placement::Taken => Err(OrderError::SlotTaken(at)),
        store::Placement::Unmovable => Err(changing.map_or_else(
            || ApiError::internal("a new booking found no order to place").into(),
            OrderError::StatusChanged,
        )),
    }
}

/// When work can start on a day: `?date=&items=`, the catalog's durations summed.
#[utoipa::path(get, path = "/api/orders/slots", tag = "orders",
    summary = "The free start times of a day for some work",
    params(schedule::SlotsParams),
    responses(
        (status = 200, description = "The day's free start times (none when closed or full)", body = schedule::Slots),
        (status = 404, description = "catalog_item_not_found: an item names no catalog entry", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: bad date or items; catalog_item_retired: an item's entry is no longer sold", body = api::openapi::ErrorBody),
        (status = 502, description = "cart_service_failed: the catalog (read only when `items` is given) gave an unexpected answer", body = api::openapi::ErrorBody),
        (status = 503, description = "cart_service_unavailable: the catalog could not be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "cart_service_timeout: the catalog did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn free_slots(request: Request, _params: Params) -> Result<Response, OrderError> {
    let _caller = api::auth::caller(&request)?;
    let query = schedule::SlotsQuery::parse(&Query::parse(request.query())?)?;
    let config = Config::load()?;
    let minutes = if query.items.is_empty() {
        schedule::work_minutes(&[], &[])
    } else {
        let authorization = request.header("authorization").and_then(|v| v.as_str());
        let catalog = current_catalog(&query.items, authorization).await?;
        domain::price_items(&query.items, &catalog)?;
        schedule::work_minutes(&query.items, &catalog)
    };
    let db = api::db::open(&config.postgres_url)?;
    Ok(json_response(200, &store::slots(&db, query.date, minutes)?))
}

/// The catalog entries on sale, plus any of `items` it does not list (retired, so that
/// pricing can say so; unknown ones stay missing).
async fn current_catalog(
    items: &[domain::ItemRequest],
    authorization: Option<&str>,
) -> Result<Vec<domain::CatalogEntry>, OrderError> {
    let carts = Config::carts()?;
    let mut catalog = catalog_client::fetch_catalog(&carts, authorization).await?;
    // An item the list of entries on sale lacks is retired or unknown: its entry, if any,
    // says which (no call at all when every item is listed).
    for id in domain::unlisted(items, &catalog) {
        if let Some(entry) = catalog_client::fetch_entry(&carts, id, authorization).await? {
            catalog.push(entry);
        }
    }
    Ok(catalog)
}

#[utoipa::path(get, path = "/api/orders/shop", tag = "orders",
    summary = "The shop's bays, time zone and opening hours",
    responses(
        (status = 200, description = "The settings", body = schedule::ShopSettings),
    ))]
fn get_shop(request: Request, _params: Params) -> Result<Response, OrderError> {
    let _caller = api::auth::caller(&request)?;
    let db = api::db::open(&Config::load()?.postgres_url)?;
    Ok(json_response(200, &store::shop(&db)?))
}

/// Staff replace the settings; booked orders keep their times and bays.
#[utoipa::path(put, path = "/api/orders/shop", tag = "orders",
    summary = "Set the shop's bays, time zone and opening hours (staff)",
    description = "Replaces all three. A weekday left out of `hours` is closed. Orders \
        already booked keep their times, also outside new hours; a bay that holds an order \
        from now on cannot be removed.",
    request_body = schedule::ShopSettings,
    responses(
        (status = 200, description = "The settings as stored", body = schedule::ShopSettings),
        (status = 403, description = "staff_only: the caller is not staff", body = api::openapi::ErrorBody),
        (status = 409, description = "bays_in_use: a bay beyond the new count holds an order from now on", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: `fields` lists every invalid field, an unknown time zone included", body = api::openapi::ErrorBody),
    ))]
fn put_shop(request: Request, _params: Params) -> Result<Response, OrderError> {
    let caller = api::auth::caller(&request)?;
    caller.require_staff("change the shop's settings")?;
    let settings = schedule::ShopSettings::parse(&read_json_object(&request)?)?;
    let db = api::db::open(&Config::load()?.postgres_url)?;
    let stored = store::set_shop(&db, &settings)?.map_err(OrderError::Shop)?;
    Ok(json_response(200, &stored))
}

/// The floor for a day (staff): each bay's orders in time order.
#[utoipa::path(get, path = "/api/orders/board", tag = "orders",
    summary = "Each bay's orders of a day, with car, services, status and staff member (staff)",
    params(schedule::BoardParams),
    responses(
        (status = 200, description = "The day's board: every bay, its live orders in time order", body = schedule::Board),
        (status = 403, description = "staff_only: the caller is not staff", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: bad date", body = api::openapi::ErrorBody),
    ))]
fn get_board(request: Request, _params: Params) -> Result<Response, OrderError> {
    api::auth::caller(&request)?.require_staff("see the board")?;
    let date = schedule::parse_board_date(&Query::parse(request.query())?)?;
    let db = api::db::open(&Config::load()?.postgres_url)?;
    Ok(json_response(200, &store::board(&db, date)?))
}

/// `{"desired_time"?, "assigned_to"?}`: the order's owner or staff move it to another time;
/// staff assign it to a staff member.
#[utoipa::path(patch, path = "/api/orders/{order_id}", tag = "orders",
    summary = "Move an order to another time (its owner or staff), or assign it (staff)",
    params(("order_id" = Uuid, Path)),
    request_body = schedule::OrderChangeRequest,
    responses(
        (status = 200, description = "The order as changed, perhaps in another bay", body = domain::Order),
        (status = 403, description = "staff_only: a customer gave `assigned_to`", body = api::openapi::ErrorBody),
        (status = 404, description = "order_not_found: no such order, or not the caller's", body = api::openapi::ErrorBody),
        (status = 409, description = "order_not_movable: only a created or confirmed order moves; order_closed: a completed or cancelled order is not assigned; desired_time_passed: the new time is not in the future; slot_taken: every bay is taken at some time during the work; status_changed: it changed meanwhile", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: `fields` lists every invalid field; outside_opening_hours: the work does not fit that day's opening hours, which the message names", body = api::openapi::ErrorBody),
    ))]
fn change_order(request: Request, params: Params) -> Result<Response, OrderError> {
    let caller = api::auth::caller(&request)?;
    let change = schedule::OrderChange::parse(&read_json_object(&request)?)?;
    if change.assigned_to.is_some() {
        caller.require_staff("assign an order")?;
    }
    let (db, order, _) = visible_order(&caller, &params)?;
    if change.desired_time.is_none() && change.assigned_to.is_none() {
        return Ok(json_response(200, &order));
    }
    if let Some(desired_time) = change.desired_time {
        if !order.status.may_move() {
            return Err(OrderError::NotMovable(order.id, order.status));
        }
        desired_time
            .check_ahead(chrono::Utc::now())
            .map_err(OrderError::TimePassed)?;
    } else if order.status.is_final() {
        return Err(OrderError::Closed(order.id, order.status));
    }
    let minutes = u32::try_from((order.ends_at - order.desired_time).num_minutes()).unwrap_or(0);
    let placement = store::change(&db, order.id, &change, minutes)?;
    let at = change
        .desired_time
        .map_or(order.desired_time, |time| time.utc());
    Ok(json_response(200, &placed(placement, at, Some(order.id))?))
}

#[utoipa::path(get, path = "/api/orders/{order_id}", tag = "orders",
    summary = "One order",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The order", body = domain::Order),
        (status = 404, description = "order_not_found: no such order, or not the caller's", body = api::openapi::ErrorBody),
    ))]
fn get_order(request: Request, params: Params) -> Result<Response, OrderError> {
    let caller = api::auth::caller(&request)?;
    let (_db, order, _) = visible_order(&caller, &params)?;
    Ok(json_response(200, &order))
}

/// How long a cancellation waits for the order's payment to get an outcome (or for its
/// compare-and-set to stop losing to payments checking the order), polling every
/// [`PAYMENT_POLL`].
const PAYMENT_WAIT: Duration = Duration::from_secs(10);
const PAYMENT_POLL: Duration = Duration::from_millis(50);

/// `{"status": ...}`: staff move an order through its lifecycle; its owner may cancel it.
///
/// Cancelling a `created` or `confirmed` order refunds its succeeded payment first (as the
/// caller, `POST /api/payments/{id}/refund`) and waits out a pending one (up to
/// [`PAYMENT_WAIT`], then 409 `payment_pending`). No order may end both cancelled and paid
/// (a `succeeded` payment, not refunded), and this must hold when a cancellation and a
/// payment race, though the order and its payments live in two services and nothing locks
/// across them. Each side writes first and reads the other after, so at least one of them
/// sees the other:
///
/// - payment-service (P) commits its claim, a `pending` payment (Pc), then calls
///   `POST .../payment-check` (Ph), which gives the order a new version and answers its
///   status, and charges only if that status is not `cancelled`;
/// - a cancellation (C), in each round, reads the order with its version (Cr), then asks
///   payment-service for a pending or succeeded payment (Cq). If there is none, it moves the
///   order to `cancelled` only if its version is still the one read (Cx, compare and set);
///   if Cx fails, or the payment was pending (it waits) or succeeded (it is refunded, and a
///   refunded payment holds nothing), it starts another round. (Before Cx it also asks for
///   a refunded payment's refund again, which finishes one whose bonuses did not come back.)
///
/// Suppose the order ended cancelled while P's payment is succeeded. P charged, so Ph saw no
/// cancellation: Ph's update came before Cx's (both update the one row, so they are ordered).
/// Cx, in the round that succeeded, then saw Ph's version change unless that round's Cr came
/// after Ph; Cx succeeded, so Cr came after Ph. Then Pc < Ph < Cr < Cq, and Cq, which reads
/// committed rows, saw P's payment pending or succeeded, unless it was declined, released or
/// refunded by then, and did not move to Cx. Contradiction: either P's payment is not
/// succeeded, or the order is not cancelled. A refund only ever moves a payment from
/// `succeeded` to `refunded`, never back, and a claim taken over after its lease keeps its
/// row pending throughout. payment-service refunds only while the order is `created` or
/// `confirmed` (or cancelled), so work that has started is never refunded from here;
/// `in_progress` and `completed` orders are not cancelled (409 `illegal_status_change`).
/// Lost races answer 409 `status_changed` here once [`PAYMENT_WAIT`] is over, and 409
/// `order_cancelled` to the payment.
#[utoipa::path(patch, path = "/api/orders/{order_id}/status", tag = "orders",
    summary = "Move an order through its lifecycle (staff), or cancel it (its owner)",
    description = "Cancelling a `created` or `confirmed` order refunds its succeeded payment \
        (the money part through the processor, the bonuses it took back to the balance, the \
        bonuses it accrued reversed) and waits up to 10 s for a payment still being processed.",
    params(("order_id" = Uuid, Path)),
    request_body = domain::OrderStatusRequest,
    responses(
        (status = 200, description = "The order in its new status", body = domain::Order),
        (status = 403, description = "staff_only: a customer asked for a status other than `cancelled`", body = api::openapi::ErrorBody),
        (status = 404, description = "order_not_found: no such order, or not the caller's", body = api::openapi::ErrorBody),
        (status = 409, description = "illegal_status_change: the lifecycle forbids the move (an \
            order in progress or completed is not cancelled); status_changed: it changed \
            meanwhile (or payments kept checking it), read it again; payment_pending: on \
            cancelling, the order's payment was still being processed after 10 s", body = api::openapi::ErrorBody),
        (status = 502, description = "payment_service_failed: on cancelling, payment-service \
            gave an unexpected answer (a refund whose bonuses did not come back is finished \
            by cancelling again)", body = api::openapi::ErrorBody),
        (status = 503, description = "payment_service_unavailable: on cancelling, payment-service could not be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "payment_service_timeout: on cancelling, payment-service did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn change_status(request: Request, params: Params) -> Result<Response, OrderError> {
    let caller = api::auth::caller(&request)?;
    let to = domain::parse_status_change(&read_json_object(&request)?)?;
    let (db, mut order, mut version) = visible_order(&caller, &params)?;
    if !domain::may_request(to, caller.is_staff()) {
        return Err(OrderError::StaffOnly(to));
    }
    order.status.transition(to)?;
    // Only a cancellation compares the version: other moves race nothing but each other.
    if to != OrderStatus::Cancelled {
        return match store::set_status(&db, order.id, order.status, to, None)? {
            Some(changed) => Ok(json_response(200, &changed)),
            None => Err(OrderError::StatusChanged(order.id)),
        };
    }
    // No pooled connection is held while payment-service answers.
    drop(db);
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    let payments = Config::payments()?;
    let deadline = Instant::now() + PAYMENT_WAIT;
    loop {
        match payment_client::holding(&payments, order.id, authorization).await? {
            held @ (None | Some(Holding::Refunded(_))) => {
                if let Some(Holding::Refunded(payment)) = held {
                    // Refused only if it is not refunded after all: the next round sees why.
                    payment_client::refund(&payments, payment, authorization).await?;
                }
                let db = api::db::open(&Config::load()?.postgres_url)?;
                if let Some(changed) =
                    store::set_status(&db, order.id, order.status, to, Some(&version))?
                {
                    return Ok(json_response(200, &changed));
                }
                if Instant::now() > deadline {
                    return Err(OrderError::StatusChanged(order.id));
                }
            }
            // Refused: the payment or the order moved on; the next round reads both again.
            Some(Holding::Succeeded(payment)) => {
                if payment_client::refund(&payments, payment, authorization).await?
                    == payment_client::Refund::Refused
                    && Instant::now() > deadline
                {
                    return Err(OrderError::StatusChanged(order.id));
                }
            }
            Some(Holding::Pending(_)) => {
                if Instant::now() > deadline {
                    return Err(OrderError::PaymentPending(order.id));
                }
                std::thread::sleep(PAYMENT_POLL);
            }
        }
        let (db, again, again_version) = visible_order(&caller, &params)?;
        drop(db);
        again.status.transition(to)?;
        (order, version) = (again, again_version);
    }
}

/// payment-service's last look at an order before it charges, with the caller's token.
/// A write, so that the order's cancellation cannot slip between this look and the charge
/// (see [`change_status`]).
#[utoipa::path(post, path = "/api/orders/{order_id}/payment-check", tag = "orders",
    summary = "Check an order just before charging it (payment-service calls this)",
    description = "Answers the order as it is now, like `GET /api/orders/{order_id}`, and \
        gives it a new version, so a cancellation that read the order before this call \
        fails with 409 `status_changed` and, read again, sees the payment. Harmless to call \
        otherwise.",
    params(("order_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The order as it is now", body = domain::Order),
        (status = 404, description = "order_not_found: no such order, or not the caller's", body = api::openapi::ErrorBody),
    ))]
fn payment_check(request: Request, params: Params) -> Result<Response, OrderError> {
    let caller = api::auth::caller(&request)?;
    let (db, order, _) = visible_order(&caller, &params)?;
    match store::payment_check(&db, order.id)? {
        Some(order) => Ok(json_response(200, &order)),
        None => Err(OrderError::OrderNotFound(order.id.to_string())),
    }
}

/// The order named by the `order_id` route parameter, if the caller may see it (its owner
/// or staff), with its version and the connection it was read on. Another user's order
/// answers exactly like a missing one, and so does an id that is not a UUID.
fn visible_order(
    caller: &Caller,
    params: &Params,
) -> Result<(spin_sdk::pg3::Connection, Order, store::Version), OrderError> {
    let raw_id = params.get("order_id").unwrap_or_default();
    let id = Uuid::parse_str(raw_id).map_err(|_| OrderError::OrderNotFound(raw_id.to_owned()))?;
    let config = Config::load()?;
    let db = api::db::open(&config.postgres_url)?;
    match store::find_versioned(&db, id)? {
        Some((order, version)) if caller.may_access(order.user_id) => Ok((db, order, version)),
        _ => Err(OrderError::OrderNotFound(id.to_string())),
    }
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, HTTP, Postgres), so no host is needed. End-to-end tests live in tests/.

    use super::*;
    use serde_json::Value;

    #[test]
    fn documented_request_bodies_are_the_ones_parsed() {
        api::testing::assert_documents_request::<domain::OrderRequest>(|body| {
            NewOrder::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::OrderReviewRequest>(|body| {
            NewReview::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::OrderStatusRequest>(|body| {
            domain::parse_status_change(body).map(drop)
        });
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let operation = |path: &str, method: &str| doc["paths"][path][method].clone();
        let schema = |operation: &Value, status: &str| {
            operation["responses"][status]["content"]["application/json"]["schema"].clone()
        };
        let order = "#/components/schemas/Order";
        let create = operation("/api/orders", "post");
        assert_eq!(schema(&create, "201")["$ref"], order);
        for status in ["404", "502", "503", "504"] {
            assert!(create["responses"][status].is_object(), "{status}");
        }
        assert_eq!(
            schema(&operation("/api/orders/review", "post"), "201")["$ref"],
            "#/components/schemas/OrderReview"
        );
        let list = operation("/api/orders", "get");
        assert_eq!(
            schema(&list, "200")["$ref"],
            "#/components/schemas/PageOf_Order"
        );
        assert!(list["responses"]["422"].is_object());
        assert_eq!(
            schema(&operation("/api/orders/{order_id}", "get"), "200")["$ref"],
            order
        );
        let status = operation("/api/orders/{order_id}/status", "patch");
        assert_eq!(schema(&status, "200")["$ref"], order);
        for code in ["403", "404", "409", "502", "503", "504"] {
            assert!(status["responses"][code].is_object(), "{code}");
        }
        let check = operation("/api/orders/{order_id}/payment-check", "post");
        assert_eq!(schema(&check, "200")["$ref"], order);
        assert!(check["responses"]["404"].is_object());
        assert!(doc["paths"]["/api/orders/health/live"]["get"].is_object());
        let statuses = &doc["components"]["schemas"]["OrderStatus"]["enum"];
        for value in OrderStatus::ALL {
            assert!(statuses
                .as_array()
                .unwrap()
                .contains(&value.as_str().into()));
        }
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
