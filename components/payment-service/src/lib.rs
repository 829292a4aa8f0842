//! payment-service: pays orders, as a Spin HTTP component routed at `/api/payments/...`.
//! A payment and its `payment_succeeded` event are written in one statement (the
//! transactional outbox); the relay takes the event to RabbitMQ and on to bonus-service.
//! An `Idempotency-Key` makes a retried POST answer like the first one instead of paying
//! twice. This file only maps HTTP to the domain, order-service and the tables.

pub mod domain;
mod error;
mod order_client;
mod store;

use std::time::Duration;

use api::http::{health_routes, json_response, method_not_allowed, not_found, read_json_object};
use api::money::Money;
use api::query::{Cursor, Page, Query};
use api::upstream::Upstream;
use api::{ApiError, Caller, FieldErrors};
use spin_sdk::http::{Params, Request, Response, Router};
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::domain::{
    IdempotencyKey, NewPayment, OrderToPay, PaymentEvent, Processor, Transport, Unpayable,
};
use crate::error::PaymentError;

const SERVICE: &str = "payment-service";

// Exported only in the wasm build: a native cdylib cannot carry the WIT export's symbol
// name (`wasi:http/incoming-handler@0.2.0#handle`), and native builds exist for tests.
#[cfg(target_arch = "wasm32")]
#[spin_sdk::http_component]
async fn handle(request: Request) -> Response {
    router().handle_async(request).await
}

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn router() -> Router {
    let mut router = Router::new();
    health_routes(&mut router, "/api/payments", SERVICE);
    router.post_async("/api/payments", pay);
    router.get("/api/payments", list_payments);
    router.get("/api/payments/:payment_id", get_payment);
    // Known paths with another method: 405 in the JSON error shape, not spin-sdk's text.
    router.any("/api/payments", method_not_allowed("GET, POST"));
    router.any("/api/payments/:payment_id", method_not_allowed("GET"));
    router.any("/*", not_found);
    router
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(pay, list_payments, get_payment))]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/payments", "payments"));
    doc
}

/// What the component needs from Spin variables, read per request.
struct Config;

impl Config {
    fn db() -> Result<Connection, ApiError> {
        api::db::open(&api::config::variable("postgres_url")?)
    }

    fn orders() -> Result<Upstream, ApiError> {
        Upstream::from_variable(order_client::ORDER_SERVICE, "order_service_url")
    }

    /// How events leave: `payment_events_transport` (`rabbitmq` or `redis`), with
    /// `redis_url` and `payment_events_channel` for the latter.
    fn transport() -> Result<Transport, ApiError> {
        let name = api::config::variable("payment_events_transport")?;
        let url = api::config::variable("redis_url")?;
        let channel = api::config::variable("payment_events_channel")?;
        Transport::parse(&name, &url, &channel).ok_or_else(|| {
            ApiError::configuration(
                "payment_events_transport must be rabbitmq or redis (with payment_events_channel)",
            )
        })
    }

    /// The simulated processor (`payment_processing_delay_ms`, `payment_decline`).
    fn processor() -> Result<Processor, ApiError> {
        let delay = api::config::variable("payment_processing_delay_ms")?;
        let decline = api::config::variable("payment_decline")?;
        Processor::parse(&delay, &decline).ok_or_else(|| {
            ApiError::configuration(format!(
                "payment_processing_delay_ms must be 0 to {} and payment_decline true or false",
                Processor::MAX_DELAY_MS
            ))
        })
    }
}

/// `{order_id, payment_method}`: charges the order's total. With `Idempotency-Key`, the
/// key is taken in the payment's transaction before charging, so a retry, even one racing
/// the first attempt, gets the first answer and is never charged again.
#[utoipa::path(post, path = "/api/payments", tag = "payments", operation_id = "pay_order",
    summary = "Pay an order's total",
    description = "With an `Idempotency-Key`, a retry of the same request gets the first \
        answer (201, 402 or 409 `order_already_paid`) again without charging; refusals before \
        the charge are not kept.",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            description = "Per user: 1 to 255 visible ASCII characters, e.g. a UUID (else 422)"),
    ),
    request_body = domain::PaymentRequest,
    responses(
        (status = 201, description = "Paid", body = domain::Payment),
        (status = 402, description = "payment_declined: the processor declined; nothing was charged", body = api::openapi::ErrorBody),
        (status = 404, description = "order_not_found: no such order, or not the caller's", body = api::openapi::ErrorBody),
        (status = 409, description = "order_already_paid or order_cancelled", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed (`fields` lists every invalid field, \
            the Idempotency-Key header too); nothing_to_pay: the order books nothing; \
            idempotency_key_reused: the key came with another order or method", body = api::openapi::ErrorBody),
        (status = 502, description = "order_service_failed: order-service answered unusably", body = api::openapi::ErrorBody),
        (status = 503, description = "order_service_unavailable: order-service cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "order_service_timeout: order-service did not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn pay(request: Request, _params: Params) -> Result<Response, PaymentError> {
    let caller = api::auth::caller(&request)?;
    let payment = NewPayment::parse(&read_json_object(&request)?)?;
    let key = request
        .header("idempotency-key")
        .map(|value| {
            value
                .as_str()
                .ok_or_else(|| {
                    FieldErrors::from(api::FieldError::new("Idempotency-Key", "must be ASCII"))
                })
                .and_then(|raw| IdempotencyKey::parse(raw).map_err(FieldErrors::from))
        })
        .transpose()?;
    let processor = Config::processor()?;
    let transport = Config::transport()?;
    let relayed = transport == Transport::RabbitMq;
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    // Ask order-service before taking a connection: no pooled client waits on a component.
    let order =
        order_client::fetch_order(&Config::orders()?, payment.order_id, authorization).await?;
    let answer = match key {
        // Without a key, nothing needs holding while the processor works: the connection
        // is taken only to record the payment.
        None => match process(&order, processor)? {
            Ok(amount) => record(&Config::db()?, &payment, &order, amount, relayed)?,
            Err(declined) => declined,
        },
        // With a key, the key is held from before the charge to the stored answer, so a
        // racing retry waits instead of charging again; the transaction spans the charge.
        Some(key) => {
            let db = Config::db()?;
            let charged = api::db::transaction(&db, |db| {
                let fingerprint = payment.fingerprint();
                if !store::claim_key(db, caller.user_id, &key, &fingerprint)? {
                    return Err(Replay);
                }
                let answer = match process(&order, processor)? {
                    Ok(amount) => record(db, &payment, &order, amount, relayed)?,
                    Err(declined) => declined,
                };
                store::save_answer(db, caller.user_id, &key, answer.status, &answer.body)?;
                Ok(answer)
            });
            match charged {
                Ok(answer) => answer,
                Err(Outcome::Replay) => return replay(&db, &caller, &key, &payment),
                Err(Outcome::Failed(error)) => return Err(error),
            }
        }
    };
    // Only a committed payment's event goes out.
    if let (Transport::Redis { url, channel }, Some(event)) = (&transport, &answer.event) {
        publish(url, channel, event);
    }
    Ok(answer.into_response())
}

/// Publishes to Redis pub/sub: at most once by nature. A failure is logged and the payment
/// stands; its outbox row records the event for reconciliation.
fn publish(url: &str, channel: &str, event: &PaymentEvent) {
    let body = serde_json::to_vec(event).expect("events serialize");
    let published = spin_sdk::redis::Connection::open(url)
        .and_then(|connection| connection.publish(channel, &body));
    if let Err(error) = published {
        eprintln!(
            "event {} of payment for order {} was not published to Redis: {error}",
            event.event_id, event.order_id
        );
    }
}

/// The processor's verdict and the stored rows, as the answer to send (and to keep), and
/// the event of a payment just made.
struct Answer {
    status: u16,
    body: String,
    event: Option<PaymentEvent>,
}

impl Answer {
    fn into_response(self) -> Response {
        Response::builder()
            .status(self.status)
            .header("content-type", "application/json")
            .body(self.body.into_bytes())
            .build()
    }

    fn of(status: u16, value: &impl serde::Serialize) -> Self {
        Self {
            status,
            body: serde_json::to_string(value).expect("payments and errors serialize"),
            event: None,
        }
    }
}

/// Runs the order past the processor: the amount charged, or the answer that ends the
/// request (a decline, kept for key replays). Refusals before any money moves are errors.
fn process(
    order: &OrderToPay,
    processor: Processor,
) -> Result<Result<Money, Answer>, PaymentError> {
    let amount = order.amount().map_err(|unpayable| match unpayable {
        Unpayable::Cancelled => PaymentError::OrderCancelled(order.id),
        Unpayable::NothingToPay => PaymentError::NothingToPay(order.id),
    })?;
    if processor.delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(processor.delay_ms));
    }
    if processor.decline {
        return Ok(Err(Answer::of(
            402,
            &ApiError::from(PaymentError::Declined),
        )));
    }
    Ok(Ok(amount))
}

/// Records a charged payment with its event; a second payment of the order is a 409 answer.
fn record(
    db: &Connection,
    payment: &NewPayment,
    order: &OrderToPay,
    amount: Money,
    relayed: bool,
) -> Result<Answer, PaymentError> {
    // The payment belongs to the order's owner, also when staff takes cash at the desk.
    match store::insert(db, payment, order.user_id, amount, relayed)? {
        Some((paid, event_id)) => Ok(Answer {
            event: Some(PaymentEvent {
                order_id: paid.order_id,
                user_id: paid.user_id,
                amount: paid.amount,
                event_id,
            }),
            ..Answer::of(201, &paid)
        }),
        None => Ok(Answer::of(
            409,
            &ApiError::from(PaymentError::AlreadyPaid(order.id)),
        )),
    }
}

/// Why a keyed payment did not run to the end inside its transaction.
enum Outcome {
    /// Another request holds or held the key: answer what it answered.
    Replay,
    Failed(PaymentError),
}

use Outcome::Replay;

impl From<ApiError> for Outcome {
    fn from(error: ApiError) -> Self {
        Self::Failed(error.into())
    }
}

impl From<PaymentError> for Outcome {
    fn from(error: PaymentError) -> Self {
        Self::Failed(error)
    }
}

/// The first answer given for `key`, if this is the same request.
fn replay(
    db: &Connection,
    caller: &Caller,
    key: &IdempotencyKey,
    payment: &NewPayment,
) -> Result<Response, PaymentError> {
    match store::stored_answer(db, caller.user_id, key)? {
        Some(stored) if stored.fingerprint != payment.fingerprint() => Err(PaymentError::KeyReused),
        Some(store::StoredAnswer {
            answer: Some((status, body)),
            ..
        }) => Ok(Answer {
            status,
            body,
            event: None,
        }
        .into_response()),
        // The key's owner committed without an answer, or vanished: a bug, not a retry.
        _ => Err(ApiError::internal("the first request with this key left no answer").into()),
    }
}

#[utoipa::path(get, path = "/api/payments/{payment_id}", tag = "payments",
    summary = "One payment",
    params(("payment_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The payment", body = domain::Payment),
        (status = 404, description = "payment_not_found: no such payment, or not the caller's", body = api::openapi::ErrorBody),
    ))]
fn get_payment(request: Request, params: Params) -> Result<Response, PaymentError> {
    let caller = api::auth::caller(&request)?;
    let raw_id = params.get("payment_id").unwrap_or_default();
    let id = Uuid::parse_str(raw_id).map_err(|_| PaymentError::PaymentNotFound(raw_id.into()))?;
    match store::find(&Config::db()?, id)? {
        Some(payment) if caller.may_access(payment.user_id) => Ok(json_response(200, &payment)),
        _ => Err(PaymentError::PaymentNotFound(id.to_string())),
    }
}

/// The caller's payments, newest first (`?order_id=&limit=&cursor=`); staff see everyone's.
#[utoipa::path(get, path = "/api/payments", tag = "payments",
    summary = "The caller's payments, newest first; staff see everyone's",
    params(
        api::openapi::PageParams,
        ("order_id" = Option<Uuid>, Query, description = "Only this order's payments"),
    ),
    responses(
        (status = 200, description = "One page", body = api::query::PageOf<domain::Payment>),
        (status = 422, description = "validation_failed: bad limit, cursor or order_id", body = api::openapi::ErrorBody),
    ))]
fn list_payments(request: Request, _params: Params) -> Result<Response, PaymentError> {
    let caller = api::auth::caller(&request)?;
    let query = Query::parse(request.query())?;
    let page = Page::parse(&query)?;
    let order = query
        .get("order_id")
        .map(|raw| {
            Uuid::parse_str(raw.trim())
                .map_err(|_| FieldErrors::from(api::FieldError::new("order_id", "must be a UUID")))
        })
        .transpose()?;
    let user = (!caller.is_staff()).then_some(caller.user_id);
    let payments = store::list(
        &Config::db()?,
        user,
        order,
        page.after.as_ref(),
        page.fetch(),
    )?;
    let page = page.finish(payments, |payment| Cursor {
        created_at: payment.created_at,
        id: payment.id,
    });
    Ok(json_response(200, &page))
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, HTTP, Postgres), so no host is needed. End-to-end tests live in tests/.

    use super::*;
    use serde_json::Value;
    use spin_sdk::http::Method;

    fn send(method: Method, path: &str) -> (u16, Option<String>, Value) {
        api::testing::call(&router(), method, path, "")
    }

    #[test]
    fn every_payment_endpoint_needs_a_token() {
        for (method, path) in [
            (Method::Post, "/api/payments"),
            (Method::Get, "/api/payments"),
            (Method::Get, "/api/payments/x"),
        ] {
            let (status, _, body) = send(method, path);
            assert_eq!(status, 401, "{path}");
            assert_eq!(body["error"]["code"], "missing_token");
        }
    }

    #[test]
    fn wrong_method_is_a_json_405_with_allow() {
        for (method, path, allow) in [
            (Method::Delete, "/api/payments", "GET, POST"),
            (Method::Put, "/api/payments/x", "GET"),
            (Method::Post, "/api/payments/health", "GET"),
        ] {
            let (status, allowed, _) = send(method, path);
            assert_eq!(status, 405, "{path}");
            assert_eq!(allowed.as_deref(), Some(allow));
        }
    }

    #[test]
    fn documented_request_bodies_are_the_ones_parsed() {
        api::testing::assert_documents_request::<domain::PaymentRequest>(|body| {
            NewPayment::parse(body).map(drop)
        });
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let schema = |path: &str, method: &str, status: &str| {
            doc["paths"][path][method]["responses"][status]["content"]["application/json"]["schema"]
                .clone()
        };
        let payment = "#/components/schemas/Payment";
        assert_eq!(schema("/api/payments", "post", "201")["$ref"], payment);
        assert_eq!(
            schema("/api/payments/{payment_id}", "get", "200")["$ref"],
            payment
        );
        assert_eq!(
            schema("/api/payments", "get", "200")["$ref"],
            "#/components/schemas/PageOf_Payment"
        );
        let pay = &doc["paths"]["/api/payments"]["post"];
        for status in ["402", "404", "409", "422", "502", "503", "504"] {
            assert!(pay["responses"][status].is_object(), "{status}");
        }
        assert_eq!(pay["operationId"], "pay_order");
        assert_eq!(pay["parameters"][0]["name"], "Idempotency-Key");
        assert_eq!(pay["parameters"][0]["in"], "header");
        assert!(doc["paths"]["/api/payments/health/live"]["get"].is_object());
        assert!(doc["components"]["schemas"]["PaymentRequest"].is_object());
    }

    #[test]
    fn unknown_path_is_a_json_404() {
        let (status, _, body) = send(Method::Get, "/api/payments/x/refund");
        assert_eq!(status, 404);
        assert_eq!(body["error"]["code"], "not_found");
    }
}
