//! bonus-service: bonus balances, as a Spin HTTP component routed at `/api/bonuses/...`.
//! Payment events arrive from the relay (payment-service's outbox → RabbitMQ → here) or,
//! with the Redis transport, from the Redis trigger; only events payment-service signed are
//! accrued, once per event. Users check, spend and top up with promocodes. This file only
//! maps HTTP and Redis to the domain (`domain`), the relay's credential (`relay`), the
//! signature check (`signed`) and the tables.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

pub mod domain;
mod error;
mod relay;
mod signed;
mod store;

use api::http::{json_response, read_json_object};
use api::query::{Cursor, Page, Query};
use api::routes::Routes;
use api::{ApiError, FieldErrors};
use spin_sdk::http::{Params, Request, Response, Router};
use spin_sdk::pg3::Connection;

use crate::domain::{
    AccrualRate, Accrued, Applied, Balance, Credited, DebitAction, DebitState, EntryKind,
    EventKind, LedgerAmount, NewEntry, PaymentBonuses, PaymentDebit, PaymentEvent, PromocodeCode,
    RefundEvent, Refunded, Reversal, Spend, Spent,
};
use crate::error::BonusError;

const SERVICE: &str = "bonus-service";

api::export_router!(router);

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn routes() -> Routes {
    Routes::service("/api/bonuses", SERVICE)
        .post("/api/bonuses/events", accrue)
        .public()
        .post("/api/bonuses/payment-debits", payment_debit)
        .public()
        .get("/api/bonuses/balance", balance)
        .get("/api/bonuses/history", history)
        .post("/api/bonuses/spend", spend)
        .post("/api/bonuses/promocodes/apply", apply_promocode)
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    // The event inside a signed envelope is documented too, though no route takes it bare.
    #[openapi(
        paths(accrue, payment_debit, balance, history, spend, apply_promocode),
        components(schemas(
            domain::PaymentEventRequest,
            domain::PaymentRefundedRequest,
            domain::PaymentDebitRequest
        ))
    )]
    struct Doc;
    let mut doc = <Doc as utoipa::OpenApi>::openapi();
    doc.merge(api::openapi::health_paths("/api/bonuses", "bonuses"));
    doc
}

/// What the component needs from Spin variables, read per request.
struct Config;

impl Config {
    fn db() -> Result<Connection, ApiError> {
        api::db::open(&api::config::variable("postgres_url")?)
    }

    /// `bonus_accrual_rate`: the share of a payment credited (default 0.01 in spin.toml).
    fn accrual_rate() -> Result<AccrualRate, ApiError> {
        AccrualRate::parse(&api::config::variable("bonus_accrual_rate")?).ok_or_else(|| {
            ApiError::configuration(format!(
                "bonus_accrual_rate must be a decimal from 0 to 1 with at most {} places, like 0.01",
                AccrualRate::MAX_DECIMALS
            ))
        })
    }

    /// `bonus_fail_events`: a test switch that only test manifests declare (the shipped
    /// spin.toml does not, so it is off). When true, every event delivery answers 500 and
    /// records nothing, so fault tests can watch the relay retry and dead-letter, then
    /// recover once it is switched off.
    fn fail_events() -> Result<bool, ApiError> {
        const SWITCH: &str = "bonus_fail_events";
        if let Err(spin_sdk::variables::Error::Undefined(_)) = spin_sdk::variables::get(SWITCH) {
            return Ok(false);
        }
        domain::parse_switch(&api::config::variable(SWITCH)?)
            .ok_or_else(|| ApiError::configuration(format!("{SWITCH} must be true or false")))
    }

    /// `payment_events_transport`: the Redis trigger's messages count only when it is `redis`.
    #[cfg(target_arch = "wasm32")]
    fn transport() -> Result<String, ApiError> {
        Ok(api::config::variable("payment_events_transport")?
            .trim()
            .to_owned())
    }
}

/// A signed payment event from the relay: accrues `amount * rate` once per event. The ledger
/// row and the balance change share one transaction, and the row goes in first: when its
/// event is already there, nothing else happens and the first accrual is answered again with
/// `duplicate: true`. The relay acks only a 2xx, so a redelivery after a lost answer, or a
/// concurrent one, must be harmless; it dead-letters a 403 or 422 at once.
#[utoipa::path(post, path = "/api/bonuses/events", tag = "bonuses",
    summary = "Apply a signed payment event, once per event (the relay's route)",
    description = "Only the relay calls this, with its own token in `x-relay-token`; a user's \
        bearer token does not count. The body is the envelope payment-service signed: \
        `event` is the event's JSON as a string, `signature` is `hmac-sha256=` and the hex \
        HMAC-SHA256 of exactly those bytes under the `event_signing_key` variable. The same \
        envelope arrives on the Redis channel. A `PaymentEventRequest` (no `type`) accrues \
        the rate on its amount; a `PaymentRefundedRequest` (`type: payment_refunded`) \
        reverses the accrual of the event it names: it takes at most the balance and records \
        the rest as owed, and when it arrives before that accrual, the accrual is recorded \
        as 0 and never credits.",
    security(()),
    params(
        ("x-relay-token" = String, Header, description = "The relay's token (the `relay_token` variable)"),
    ),
    request_body = domain::SignedEventRequest,
    responses(
        (status = 200, description = "Accrued (`Accrued`) or reversed (`Refunded`), or \
            `duplicate: true` with the first application's figures", body = domain::Applied),
        (status = 401, description = "invalid_relay_token: no or another x-relay-token \
            (with `WWW-Authenticate: X-Relay-Token realm=\"bonus-events\"`)", body = api::openapi::ErrorBody),
        (status = 403, description = "invalid_event_signature: not a signed envelope, or a \
            signature that does not match the event under `event_signing_key`; nothing is \
            recorded", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: the signed event lacks or mangles a \
            field, or has an unknown `type`", body = api::openapi::ErrorBody),
        (status = 500, description = "failing_on_purpose: the bonus_fail_events switch of a \
            test manifest is on; nothing is recorded", body = api::openapi::ErrorBody),
    ))]
fn accrue(request: Request, _params: Params) -> Result<Response, BonusError> {
    relay::check(&request)?;
    let event = signed::open(request.body()).inspect_err(|error| {
        if let BonusError::InvalidSignature(refused) = error {
            eprintln!("refused a payment event from the relay: {refused}");
        }
    })?;
    let answer = accrue_event(&event)?;
    Ok(json_response(200, &answer))
}

/// The Spin-native alternative to the relay: payment-service publishes the same signed
/// envelope to a Redis channel and `[[trigger.redis]]` runs this once per message. Spin
/// subscribes whatever the transport, so a message counts only while
/// `payment_events_transport` is `redis`, and only with a valid signature; every refusal is
/// logged with its reason and reported to the host as a failed message. Redis pub/sub
/// delivers at most once, so a message that fails here is gone (the HTTP path retries).
#[cfg(target_arch = "wasm32")]
#[spin_sdk::redis_component]
fn on_payment_event(message: Vec<u8>) -> Result<(), String> {
    // spin-sdk prints an error returned here: that is each refusal's log line.
    let transport = Config::transport().map_err(|error| error.to_string())?;
    if transport != "redis" {
        return Err(format!(
            "refused a payment event from Redis: payment_events_transport is `{transport}`, \
             so events come through the relay only"
        ));
    }
    let body = signed::open(&message).map_err(|error| match error {
        BonusError::InvalidSignature(refused) => {
            format!("refused a payment event from Redis: {refused}")
        }
        other => ApiError::from(other).to_string(),
    })?;
    accrue_event(&body)
        .map(drop)
        .map_err(|error| ApiError::from(error).to_string())
}

/// Applies a signed event whichever transport brought it: a payment's accrual or a refund's
/// reversal of one.
fn accrue_event(body: &api::json::Object) -> Result<Applied, BonusError> {
    if Config::fail_events()? {
        return Err(BonusError::FailingOnPurpose);
    }
    match EventKind::of(body).map_err(FieldErrors::from)? {
        EventKind::Succeeded => accrue_payment(body).map(Applied::Accrued),
        EventKind::Refunded => reverse_accrual(&RefundEvent::parse(body)?).map(Applied::Refunded),
    }
}

/// Accrues `amount * rate` once per event. The ledger row and the balance change share one
/// transaction, and the row goes in first: when its event is already there, nothing else
/// happens and the first accrual is answered again with `duplicate: true`. Redeliveries,
/// concurrent or late, are therefore harmless.
fn accrue_payment(body: &api::json::Object) -> Result<Accrued, BonusError> {
    let event = PaymentEvent::parse(body)?;
    let accrued = Config::accrual_rate()?.accrual(event.amount);
    let db = Config::db()?;
    let answer = api::db::transaction(&db, |db| {
        if store::append(db, &NewEntry::accrual(&event, accrued))? {
            let balance = store::credit(db, event.user_id, accrued)?;
            return Ok::<_, BonusError>(Accrued {
                event_id: event.event_id,
                user_id: event.user_id,
                accrued,
                balance,
                duplicate: false,
            });
        }
        let first = store::accrual_of(db, event.event_id)?.ok_or_else(|| {
            ApiError::internal("a duplicate event has no ledger entry")
                .with_detail(format!("event {}", event.event_id))
        })?;
        Ok(Accrued {
            event_id: event.event_id,
            user_id: first.user_id,
            accrued: first.accrued,
            balance: first.balance,
            duplicate: true,
        })
    })?;
    if !answer.duplicate {
        // The seed's log line, word for word, once per event and only after the commit.
        println!(
            "Accrued {} bonuses to user {}",
            answer.accrued, answer.user_id
        );
    }
    Ok(answer)
}

/// Reverses, once per refund event, the accrual of the refunded payment's event. In one
/// transaction: the accrual is read, or, when the refund overtook it, recorded now as 0 on
/// the accrual's event id, so that the accrual, arriving later, is a duplicate and credits
/// nothing; the user's account is locked; the refund entry goes in (a redelivery finds
/// it and answers the first figures with `duplicate: true`); the balance gives back what it
/// holds of the accrual, never going below zero, and the rest is recorded as owed.
fn reverse_accrual(event: &RefundEvent) -> Result<Refunded, BonusError> {
    let db = Config::db()?;
    let answer = api::db::transaction(&db, |db| {
        let accrued = match store::accrued_by(db, event.reverses_event_id)? {
            Some(accrued) => accrued,
            None => {
                let never = NewEntry {
                    user_id: event.user_id,
                    kind: EntryKind::Accrual,
                    amount: LedgerAmount::new(EntryKind::Accrual, api::money::Money::ZERO),
                    event_id: Some(event.reverses_event_id),
                    order_id: Some(event.order_id),
                    promocode: None,
                    payment_id: None,
                };
                if store::append(db, &never)? {
                    api::money::Money::ZERO
                } else {
                    // The accrual went in meanwhile: this insert waited for its commit, and
                    // the next statement sees it.
                    store::accrued_by(db, event.reverses_event_id)?.ok_or_else(|| {
                        ApiError::internal("a refunded payment's event id is taken")
                            .with_detail(format!("event {}", event.reverses_event_id))
                    })?
                }
            }
        };
        // After the accrual's row, as an accrual takes them: never the other way round.
        let balance = store::lock_account(db, event.user_id)?;
        let reversal = Reversal::of(accrued, balance);
        if store::append_refund(db, event, reversal)? {
            let balance = store::take_back(db, event.user_id, reversal)?;
            return Ok::<_, BonusError>(Refunded {
                event_id: event.event_id,
                user_id: event.user_id,
                reversed: accrued,
                taken: reversal.taken,
                owed: reversal.owed,
                balance,
                duplicate: false,
            });
        }
        let first = store::refund_of(db, event.event_id)?.ok_or_else(|| {
            ApiError::internal("a refund's accrual was reversed by another event")
                .with_detail(format!("event {}", event.event_id))
        })?;
        Ok(Refunded {
            event_id: event.event_id,
            user_id: first.user_id,
            reversed: first
                .reversal
                .taken
                .checked_add(first.reversal.owed)
                .unwrap_or(accrued),
            taken: first.reversal.taken,
            owed: first.reversal.owed,
            balance: first.balance,
            duplicate: true,
        })
    })?;
    if !answer.duplicate {
        println!(
            "Reversed {} bonuses of user {} for refunded payment {} ({} owed)",
            answer.reversed, answer.user_id, event.payment_id, answer.owed
        );
    }
    Ok(answer)
}

/// payment-service's signed command to take a payment's bonuses before it charges the rest,
/// or to give them back when the charge is declined or the payment is given up. Keyed by the
/// payment's id, so a repeat changes nothing and answers `duplicate: true`: a debit is made
/// at most once and reversed at most once, and a reversal that arrives first (its debit's
/// answer was lost, the debit still on its way) leaves the payment unable to take any. The
/// row, the balance and the ledger entry share one transaction. payment-service's `pay` has
/// the ordering that makes a payment and its bonuses go through together or not at all.
#[utoipa::path(post, path = "/api/bonuses/payment-debits", tag = "bonuses",
    summary = "Take or give back a payment's bonuses, once per payment (payment-service's route)",
    description = "Only payment-service calls this. The body is an envelope like the events': \
        `event` is a `PaymentDebitRequest` as JSON text and `signature` is `hmac-sha256=` and \
        the hex HMAC-SHA256 of exactly those bytes under the `event_signing_key` variable, \
        which only payment-service and bonus-service hold; no bearer token counts. \
        `debit` takes `amount` off `user_id`'s balance, never below zero; `reverse` gives it \
        back, or, before any debit, makes sure the payment never takes any.",
    security(()),
    request_body = domain::SignedEventRequest,
    responses(
        (status = 200, description = "Done, or `duplicate: true` when it was done before", body = domain::PaymentBonuses),
        (status = 403, description = "invalid_event_signature: not a signed envelope, or a \
            signature that does not match under `event_signing_key`; nothing is recorded", body = api::openapi::ErrorBody),
        (status = 409, description = "insufficient_bonuses: the balance is smaller than the \
            debit; bonus_debit_reversed: the payment's bonuses were given back, it takes none \
            again; bonus_debit_taken_over: a reversal from an attempt older than the one \
            holding the debit; bonus_debit_mismatch: the payment's debit names another user, \
            order or amount", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed: the signed command lacks or mangles a \
            field", body = api::openapi::ErrorBody),
    ))]
fn payment_debit(request: Request, _params: Params) -> Result<Response, BonusError> {
    let body = signed::open(request.body()).inspect_err(|error| {
        if let BonusError::InvalidSignature(refused) = error {
            eprintln!("refused a payment's bonus command: {refused}");
        }
    })?;
    let command = PaymentDebit::parse(&body)?;
    let db = Config::db()?;
    let answer = api::db::transaction(&db, |db| match command.action {
        DebitAction::Debit => debit_for_payment(db, &command),
        DebitAction::Reverse => reverse_for_payment(db, &command),
    })?;
    Ok(json_response(200, &answer))
}

/// Takes a payment's bonuses once. The row goes in first: a second debit of the payment (a
/// retry, a newer attempt) waits for the first's transaction and then finds it, and only
/// passes the debit to a newer attempt; a reversed row refuses.
fn debit_for_payment(
    db: &Connection,
    command: &PaymentDebit,
) -> Result<PaymentBonuses, BonusError> {
    let answer = |balance, duplicate| PaymentBonuses {
        payment_id: command.payment_id,
        user_id: command.user_id,
        amount: command.amount,
        state: DebitState::Debited,
        balance,
        duplicate,
    };
    if store::insert_debit(db, command, false)? {
        // Rolled back with the row when the balance is short.
        let balance = store::debit(db, command.user_id, command.amount)?
            .ok_or(BonusError::InsufficientBonuses)?;
        store::append(db, &NewEntry::for_payment(EntryKind::Payment, command))?;
        return Ok(answer(balance, false));
    }
    let stored = stored_debit(db, command)?;
    if stored.reversed {
        return Err(BonusError::DebitReversed(command.payment_id));
    }
    Ok(answer(store::balance(db, command.user_id)?, true))
}

/// Gives a payment's bonuses back once, or, when none were taken, records the payment as
/// reversed so that a debit arriving late is refused. A reversal from an attempt older than
/// the one holding the debit is refused: that attempt lost the payment to a newer one.
fn reverse_for_payment(
    db: &Connection,
    command: &PaymentDebit,
) -> Result<PaymentBonuses, BonusError> {
    let answer = |balance, duplicate| PaymentBonuses {
        payment_id: command.payment_id,
        user_id: command.user_id,
        amount: command.amount,
        state: DebitState::Reversed,
        balance,
        duplicate,
    };
    if store::insert_debit(db, command, true)? {
        return Ok(answer(store::balance(db, command.user_id)?, false));
    }
    let stored = stored_debit(db, command)?;
    if stored.reversed {
        return Ok(answer(store::balance(db, command.user_id)?, true));
    }
    if !store::reverse_debit(db, command.payment_id, command.attempt)? {
        return Err(BonusError::DebitTakenOver(command.payment_id));
    }
    let balance = store::credit(db, command.user_id, command.amount)?;
    store::append(db, &NewEntry::for_payment(EntryKind::Reversal, command))?;
    Ok(answer(balance, false))
}

/// The payment's debit row, locked, which must be the one `command` describes.
fn stored_debit(
    db: &Connection,
    command: &PaymentDebit,
) -> Result<domain::StoredDebit, BonusError> {
    let stored = store::own_debit(db, command.payment_id, command.attempt)?.ok_or_else(|| {
        ApiError::internal("a payment's debit row vanished")
            .with_detail(format!("payment {}", command.payment_id))
    })?;
    if !stored.matches(command) {
        return Err(BonusError::DebitMismatch(command.payment_id));
    }
    Ok(stored)
}

/// The caller's balance; staff may look at anyone's with `?user_id=`.
#[utoipa::path(get, path = "/api/bonuses/balance", tag = "bonuses",
    summary = "The caller's bonus balance",
    params(
        ("user_id" = Option<uuid::Uuid>, Query, description = "Staff only: whose balance (a customer's is ignored)"),
    ),
    responses(
        (status = 200, description = "The balance (0 before the first credit)", body = domain::Balance),
        (status = 422, description = "validation_failed: staff sent a bad user_id", body = api::openapi::ErrorBody),
    ))]
fn balance(request: Request, _params: Params) -> Result<Response, BonusError> {
    let caller = api::auth::caller(&request)?;
    let user_id = subject(&caller, &Query::parse(request.query())?)?;
    let (balance, owed) = store::account(&Config::db()?, user_id)?;
    Ok(json_response(
        200,
        &Balance {
            user_id,
            balance,
            owed,
        },
    ))
}

/// The caller's ledger newest first (`?limit=&cursor=`); staff may read anyone's with
/// `?user_id=`. Amounts are signed: spends are negative.
#[utoipa::path(get, path = "/api/bonuses/history", tag = "bonuses",
    summary = "The caller's bonus ledger, newest first",
    params(
        api::openapi::PageParams,
        ("user_id" = Option<uuid::Uuid>, Query, description = "Staff only: whose ledger (a customer's is ignored)"),
    ),
    responses(
        (status = 200, description = "One page; spends are negative", body = api::query::PageOf<domain::Entry>),
        (status = 422, description = "validation_failed: bad limit, cursor or (staff) user_id", body = api::openapi::ErrorBody),
    ))]
fn history(request: Request, _params: Params) -> Result<Response, BonusError> {
    let caller = api::auth::caller(&request)?;
    let query = Query::parse(request.query())?;
    let page = Page::parse(&query)?;
    let user_id = subject(&caller, &query)?;
    let entries = store::history(&Config::db()?, user_id, &page)?;
    let page = page.finish(entries, |entry| Cursor {
        created_at: entry.created_at,
        id: entry.id,
    });
    Ok(json_response(200, &page))
}

/// `{amount, order_id?}`: takes bonuses off the caller's balance, never below zero. The
/// guarded debit decides, not a read before it, so concurrent spends cannot overdraw.
#[utoipa::path(post, path = "/api/bonuses/spend", tag = "bonuses",
    summary = "Spend bonuses; a balance never goes below zero",
    request_body = domain::SpendRequest,
    responses(
        (status = 200, description = "Spent", body = domain::Spent),
        (status = 409, description = "insufficient_bonuses: the balance is smaller (also after a concurrent spend)", body = api::openapi::ErrorBody),
    ))]
fn spend(request: Request, _params: Params) -> Result<Response, BonusError> {
    let caller = api::auth::caller(&request)?;
    let spend = Spend::parse(&read_json_object(&request)?)?;
    let db = Config::db()?;
    let balance = api::db::transaction(&db, |db| {
        let balance = store::debit(db, caller.user_id, spend.amount)?
            .ok_or(BonusError::InsufficientBonuses)?;
        store::append(db, &NewEntry::spend(caller.user_id, &spend))?;
        Ok::<_, BonusError>(balance)
    })?;
    Ok(json_response(
        200,
        &Spent {
            balance,
            spent: spend.amount,
        },
    ))
}

/// `{code}`: credits a promocode's amount, once per code and user. The redemption, the
/// credit and the ledger entry commit together or not at all.
#[utoipa::path(post, path = "/api/bonuses/promocodes/apply", tag = "bonuses",
    summary = "Apply a promocode, once per code and user",
    request_body = domain::PromocodeRequest,
    responses(
        (status = 200, description = "Credited", body = domain::Credited),
        (status = 404, description = "promocode_not_found", body = api::openapi::ErrorBody),
        (status = 409, description = "promocode_already_used: this user applied it before", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed (`fields` lists every invalid field); \
            promocode_expired: the code's time is over", body = api::openapi::ErrorBody),
    ))]
fn apply_promocode(request: Request, _params: Params) -> Result<Response, BonusError> {
    let caller = api::auth::caller(&request)?;
    let code = PromocodeCode::from_body(&read_json_object(&request)?)?;
    let db = Config::db()?;
    let credited = api::db::transaction(&db, |db| {
        let promocode = store::find_promocode(db, &code)?
            .ok_or_else(|| BonusError::PromocodeNotFound(code.clone()))?;
        let amount = promocode
            .credit_at(chrono::Utc::now())
            .map_err(|expired| BonusError::expired(code.clone(), expired))?;
        if !store::redeem(db, &code, caller.user_id)? {
            return Err(BonusError::PromocodeAlreadyUsed(code.clone()));
        }
        let balance = store::credit(db, caller.user_id, amount)?;
        store::append(db, &NewEntry::promocode(caller.user_id, &code, amount))?;
        Ok(Credited {
            code: code.clone(),
            credited: amount,
            balance,
        })
    })?;
    Ok(json_response(200, &credited))
}

/// Whose bonuses a read is about: the caller's own, or for staff the `?user_id=` one.
/// A customer's `user_id` is ignored, as in GET /api/orders: they only ever see their own.
fn subject(caller: &api::Caller, query: &Query) -> Result<uuid::Uuid, BonusError> {
    Ok(caller
        .list_scope(query, "user_id")
        .map_err(FieldErrors::from)?
        .unwrap_or(caller.user_id))
}

#[cfg(test)]
mod tests {
    //! Routing and input rejection, natively: these paths answer before touching a Spin
    //! import (variables, HTTP, Postgres), so no host is needed. End-to-end tests live in
    //! crates/detailing/tests/bonuses.rs.

    use super::*;
    use serde_json::Value;
    use spin_sdk::http::Method;

    fn send(
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, Option<String>, Option<String>, Value) {
        // A body that would be a 422 if it were read before the caller is known.
        let mut request = api::testing::request(method, path, r#"{"amount": -1}"#);
        for (name, value) in headers {
            request.set_header(*name, *value);
        }
        let response = api::testing::respond(&router(), request);
        let header = |name| api::testing::header(&response, name);
        let (allow, challenge) = (header("allow"), header("www-authenticate"));
        let body = serde_json::from_slice(response.body()).unwrap();
        (*response.status(), allow, challenge, body)
    }

    #[test]
    fn documented_request_bodies_are_the_ones_parsed() {
        api::testing::assert_documents_request::<domain::PaymentEventRequest>(|body| {
            PaymentEvent::parse(body).map(drop)
        });
        // The envelope's example carries a documented event as its signed text.
        let envelope = api::openapi::example_of::<domain::SignedEventRequest>();
        let inner = api::json::parse_json_object(envelope["event"].as_str().unwrap().as_bytes());
        PaymentEvent::parse(&inner.unwrap()).unwrap();
        assert!(envelope["signature"]
            .as_str()
            .unwrap()
            .starts_with("hmac-sha256="));
        api::testing::assert_documents_request::<domain::SpendRequest>(|body| {
            Spend::parse(body).map(drop)
        });
        api::testing::assert_documents_request::<domain::PromocodeRequest>(|body| {
            PromocodeCode::from_body(body).map(drop)
        });
    }

    #[test]
    fn openapi_documents_every_route_with_its_errors() {
        let doc = serde_json::to_value(openapi()).unwrap();
        let operation = |path: &str, method: &str| doc["paths"][path][method].clone();
        let success = |path: &str, method: &str| {
            operation(path, method)["responses"]["200"]["content"]["application/json"]["schema"]
                ["$ref"]
                .clone()
        };
        let schemas = "#/components/schemas/";
        for (path, method, schema) in [
            ("/api/bonuses/events", "post", "Applied"),
            ("/api/bonuses/balance", "get", "Balance"),
            ("/api/bonuses/history", "get", "PageOf_Entry"),
            ("/api/bonuses/spend", "post", "Spent"),
            ("/api/bonuses/promocodes/apply", "post", "Credited"),
        ] {
            assert_eq!(
                success(path, method),
                format!("{schemas}{schema}"),
                "{path}"
            );
        }
        // The relay's route takes its own token, not the bearer one.
        let events = operation("/api/bonuses/events", "post");
        assert_eq!(events["security"], serde_json::json!([{}]));
        assert_eq!(events["parameters"][0]["name"], "x-relay-token");
        assert_eq!(events["parameters"][0]["in"], "header");
        assert_eq!(events["parameters"][0]["required"], true);
        assert!(events["responses"]["401"].is_object());
        assert!(events["responses"]["403"].is_object());
        assert_eq!(
            events["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            format!("{schemas}SignedEventRequest")
        );
        assert!(operation("/api/bonuses/spend", "post")["security"].is_null());
        assert!(doc["paths"]["/api/bonuses/health/live"]["get"].is_object());
        assert!(doc["components"]["schemas"]["SpendRequest"].is_object());
        assert!(doc["components"]["schemas"]["PaymentEventRequest"].is_object());
        assert!(doc["components"]["schemas"]["PaymentRefundedRequest"].is_object());
    }

    #[test]
    fn events_without_the_relay_token_are_401_even_with_a_bearer_token() {
        for headers in [&[][..], &[("authorization", "Bearer a-user-token")][..]] {
            let (status, _, challenge, body) = send(Method::Post, "/api/bonuses/events", headers);
            assert_eq!(status, 401, "{headers:?}");
            assert_eq!(body["error"]["code"], "invalid_relay_token");
            assert_eq!(
                challenge.as_deref(),
                Some("X-Relay-Token realm=\"bonus-events\"")
            );
        }
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
