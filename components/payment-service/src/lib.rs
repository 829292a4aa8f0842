//! payment-service: pays orders and fines, as a Spin HTTP component routed at
//! `/api/payments/...`. A payment is claimed `pending` before the processor is asked, so two
//! payments of one order never both charge; an order's payment that succeeds writes its
//! `payment_succeeded` event in the same transaction (the transactional outbox), and the
//! relay takes it to RabbitMQ and on to bonus-service. An `Idempotency-Key` makes a retried
//! POST answer like the first one instead of paying twice. Bonuses may pay part of an order:
//! bonus-service takes them per payment before the rest is charged, and gives them back if
//! the payment does not go through (see [`pay`]). This file only maps HTTP to the domain,
//! order-service, fines-service, bonus-service and the tables.

// `#[spin_sdk::http_component]` expands, on wasm32, into wit-bindgen's export glue, which is
// `unsafe` by nature. The workspace denies `unsafe_code`; the native build (tests, clippy)
// still holds this crate's own code to that.
#![cfg_attr(target_arch = "wasm32", allow(unsafe_code))]

mod bonus_client;
pub mod domain;
mod error;
mod fine_client;
mod order_client;
mod store;

use std::time::{Duration, Instant};

use api::http::{json_response, read_json_object};
use api::money::{Money, Share};
use api::query::{Cursor, Page, Query};
use api::routes::Routes;
use api::upstream::Upstream;
use api::{ApiError, Caller, FieldErrors};
use spin_sdk::http::{Params, Request, Response, Router};
use spin_sdk::pg3::Connection;
use uuid::Uuid;

use crate::bonus_client::Outcome as Bonus;
use crate::domain::{
    BonusAction, BonusCommand, Event, IdempotencyKey, NewPayment, Payment, PaymentEvent,
    PaymentStatus, Processor, Refund, RefundEvent, SignedEvent, Target, Transport, Unpayable,
};
use crate::error::PaymentError;

const SERVICE: &str = "payment-service";

api::export_router!(router);

/// The component's routes, on the full path (see car-service for why not the suffix).
pub fn routes() -> Routes {
    Routes::service("/api/payments", SERVICE)
        .post_async("/api/payments", pay)
        .get("/api/payments", list_payments)
        .get("/api/payments/:payment_id", get_payment)
        .post_async("/api/payments/:payment_id/refund", refund)
}

/// [`routes`] as spin-sdk's router, with their 405s and the JSON 404.
pub fn router() -> Router {
    routes().into_router()
}

/// This component's part of the API document (`GET /openapi.json` joins them all).
pub fn openapi() -> utoipa::openapi::OpenApi {
    #[derive(utoipa::OpenApi)]
    #[openapi(paths(pay, list_payments, get_payment, refund))]
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

    /// Where fines-service answers (`fines_service_url`).
    fn fines() -> Result<Upstream, ApiError> {
        Upstream::from_variable(fine_client::FINES_SERVICE, "fines_service_url")
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

    /// Where bonus-service answers (`bonus_service_url`).
    fn bonuses() -> Result<Upstream, ApiError> {
        Upstream::from_variable(bonus_client::BONUS_SERVICE, "bonus_service_url")
    }

    /// `max_bonus_share`: how much of an order's total bonuses may pay (default 0.3).
    fn max_bonus_share() -> Result<Share, ApiError> {
        Share::parse(&api::config::variable("max_bonus_share")?).ok_or_else(|| {
            ApiError::configuration(format!(
                "max_bonus_share must be a decimal from 0 to 1 with at most {} places, like 0.3",
                Share::MAX_DECIMALS
            ))
        })
    }

    /// `event_signing_key`: what each payment event is signed with (bonus-service holds the
    /// same key and accrues only events it signed).
    fn signing_key() -> Result<events::SigningKey, ApiError> {
        let key = api::config::variable("event_signing_key")?;
        events::SigningKey::new(key.as_bytes())
            .map_err(|short| ApiError::configuration(format!("event_signing_key: {short}")))
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

/// `{order_id | fine_id, payment_method, bonus_amount?}`: charges the order's total or the
/// fine's amount, less the bonuses that pay part of an order.
///
/// The steps, each committed before the next: (1) read the order (fine) from its service;
/// (2) claim the payment, `pending`, on the unique index of live payments per order (fine),
/// with the Idempotency-Key if one came; (3) for an order, check it again with order-service
/// (`POST /api/orders/{id}/payment-check`), which orders this payment against any
/// cancellation (the argument is at order-service's `change_status`); (4) take the bonuses,
/// if any, at bonus-service; (5) charge the rest; (6) record `succeeded` (with the order's
/// event, on the money part) or, once the bonuses are back, `declined`, and the key's answer.
/// A refusal before (5) gives the bonuses back and then the claim and the key up. A request
/// that dies after (2) leaves its claim and key to [`domain::PENDING_LEASE_SECONDS`].
///
/// Why the bonuses and the payment go through together or not at all. The payment's row
/// decides and bonus-service's debit follows it, keyed by the payment's id, so every call may
/// be repeated: a repeated debit takes nothing more, a repeated reversal gives nothing more
/// back, and a reversal that overtakes its debit (whose answer was lost) leaves the payment
/// unable to take any, for good. The payment is recorded `succeeded` only after its debit was
/// confirmed, and recorded `declined`, or released, only after its reversal was confirmed. So
/// each end pairs up: succeeded with the bonuses taken, declined or gone with them back (or
/// never taken). Whatever fails or dies in between leaves the payment `pending`, holding its
/// order and its bonuses as it holds a charge that may have been made: after the lease the
/// next payment of the order takes the claim over with its id, amount and bonuses and runs
/// (3) to (6) again. Its debit makes it the debit's owner (`attempt`), so a reversal still on
/// its way from the attempt it replaced is refused rather than giving back the bonuses of a
/// payment that then succeeds. The processor is idempotent per payment id, so every attempt
/// at one payment gets the same verdict.
#[utoipa::path(post, path = "/api/payments", tag = "payments", operation_id = "create_payment",
    summary = "Pay an order's total or a fine",
    description = "Exactly one of `order_id` and `fine_id`. A second payment of the same order \
        or fine while the first is being charged is 409 `payment_in_progress` and charges \
        nothing; after a decline the order (fine) may be paid again. `bonus_amount` pays that \
        much of an order's total from its owner's bonus balance, at most the \
        `max_bonus_share` of the total (0.3 by default) and at most the balance; the method \
        pays the rest. The bonuses are taken together with the payment or not at all: a \
        declined charge or a refusal gives them back. Bonuses accrue on paid orders only, on \
        the part paid in money: a fine's payment raises no event. With an `Idempotency-Key`, \
        a retry of the same request gets the first answer (201, 402, or 409 \
        `order_already_paid` / `fine_already_paid`) again without charging or taking \
        bonuses, and a retry racing the first waits for its answer; refusals before the \
        charge are not kept.",
    params(
        ("Idempotency-Key" = Option<String>, Header, min_length = 1, max_length = 255,
            pattern = "^[!-~]+$",
            description = "Per user: 1 to 255 visible ASCII characters, e.g. a UUID (else 422)"),
    ),
    request_body = domain::PaymentRequest,
    responses(
        (status = 201, description = "Paid: the payment, `status: succeeded`", body = domain::Payment),
        (status = 402, description = "payment_declined: the processor declined; nothing was charged (the payment is listed as `declined`)", body = api::openapi::ErrorBody),
        (status = 404, description = "order_not_found or fine_not_found: no such order (fine), or not the caller's", body = api::openapi::ErrorBody),
        (status = 409, description = "order_already_paid, fine_already_paid, order_cancelled, \
            payment_in_progress (another payment of it is being charged), or \
            insufficient_bonuses: the order owner's bonus balance is smaller than \
            bonus_amount (nothing is charged or taken)", body = api::openapi::ErrorBody),
        (status = 422, description = "validation_failed (`fields` lists every invalid field, \
            the Idempotency-Key header too; neither or both of order_id and fine_id; a \
            bonus_amount that is negative, has more than two decimals, pays a fine, or is more \
            than the `max_bonus_share` of the total, the message naming the share and the \
            cap); nothing_to_pay: the order books nothing; idempotency_key_reused: the key \
            came with another order, fine, method or bonus_amount", body = api::openapi::ErrorBody),
        (status = 502, description = "order_service_failed, fines_service_failed or \
            bonus_service_failed: it answered unusably", body = api::openapi::ErrorBody),
        (status = 503, description = "order_service_unavailable, fines_service_unavailable or \
            bonus_service_unavailable: it cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "order_service_timeout, fines_service_timeout or \
            bonus_service_timeout: it did not answer in time", body = api::openapi::ErrorBody),
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
    // Bonuses accrue on paid orders only: a fine's payment has no event to carry.
    let transport = match payment.target {
        Target::Order(_) => Some(Config::transport()?),
        Target::Fine(_) => None,
    };
    // Read before anything is claimed or charged: a missing key refuses the payment.
    let signing_key = transport
        .as_ref()
        .map(|_| Config::signing_key())
        .transpose()?;
    // An order's payment may carry bonuses: its own, or those of a claim it takes over.
    let bonuses = match &signing_key {
        Some(key) => Some(Bonuses {
            upstream: Config::bonuses()?,
            key: key.clone(),
        }),
        None => None,
    };
    let share = (payment.bonus > Money::ZERO)
        .then(Config::max_bonus_share)
        .transpose()?;
    let authorization = request.header("authorization").and_then(|v| v.as_str());
    // Ask the other service before taking a connection: no pooled client waits on a component.
    let bill = bill(payment.target, &caller, authorization).await?;
    if let Some(share) = share {
        payment.check_bonus(bill.amount, share)?;
    }
    let claimed = match claim(&caller, &payment, key.as_ref(), &bill, processor)? {
        Claim::Mine(claimed) => claimed,
        Claim::Answered(answer) => return Ok(answer.into_response()),
    };
    let before_charge = async {
        if let Target::Order(order_id) = payment.target {
            check_before_charge(order_id, authorization).await?;
        }
        take_bonuses(&claimed, bonuses.as_ref()).await
    };
    if let Err(refused) = before_charge.await {
        give_up(&caller, key.as_ref(), &claimed, bonuses.as_ref()).await;
        return Err(refused);
    }
    let charged = charge(processor, &claimed.payment);
    if !charged {
        // Recorded declined only with the bonuses back; else the claim waits for its lease.
        give_bonuses_back(&claimed, bonuses.as_ref()).await?;
    }
    let relayed = transport == Some(Transport::RabbitMq);
    let db = Config::db()?;
    let answer = api::db::transaction(&db, |db| {
        let answer = if charged {
            record(db, &claimed.payment, relayed, signing_key.as_ref())?
        } else {
            decline(db, &claimed.payment)?
        };
        if let Some(key) = &key {
            store::save_answer(db, caller.user_id, key, answer.status, &answer.body)?;
        }
        Ok::<_, PaymentError>(answer)
    })?;
    // Only a committed payment's event goes out.
    if let (Some(Transport::Redis { url, channel }), Some(event)) = (&transport, &answer.event) {
        publish(url, channel, event);
    }
    Ok(answer.into_response())
}

/// What a payment charges, and whose it is.
struct Bill {
    amount: Money,
    user_id: Uuid,
}

/// Reads the order (fine) as the caller, and refuses what cannot be paid.
async fn bill(
    target: Target,
    caller: &Caller,
    authorization: Option<&str>,
) -> Result<Bill, PaymentError> {
    match target {
        // The payment belongs to the order's owner, also when staff takes cash at the desk.
        Target::Order(id) => {
            let order = order_client::fetch_order(&Config::orders()?, id, authorization).await?;
            Ok(Bill {
                amount: order.amount().map_err(|why| refusal(target, why))?,
                user_id: order.user_id,
            })
        }
        // A fine has no owner account, only a plate: its payment is the payer's.
        Target::Fine(id) => {
            let fine = fine_client::fetch_fine(&Config::fines()?, id, authorization).await?;
            Ok(Bill {
                amount: fine.amount().map_err(|why| refusal(target, why))?,
                user_id: caller.user_id,
            })
        }
    }
}

fn refusal(target: Target, why: Unpayable) -> PaymentError {
    match (why, target) {
        (Unpayable::FinePaid, _) | (_, Target::Fine(_)) => {
            PaymentError::FineAlreadyPaid(target_id(target))
        }
        (Unpayable::Cancelled, Target::Order(id)) => PaymentError::OrderCancelled(id),
        (Unpayable::NothingToPay, Target::Order(id)) => PaymentError::NothingToPay(id),
    }
}

fn target_id(target: Target) -> Uuid {
    match target {
        Target::Order(id) | Target::Fine(id) => id,
    }
}

fn already_paid(target: Target) -> PaymentError {
    match target {
        Target::Order(id) => PaymentError::AlreadyPaid(id),
        Target::Fine(id) => PaymentError::FineAlreadyPaid(id),
    }
}

/// The order once more, after this payment's claim is committed and before anything is
/// charged: still payable, or the claim is given up.
async fn check_before_charge(
    order_id: Uuid,
    authorization: Option<&str>,
) -> Result<(), PaymentError> {
    let order =
        order_client::check_before_charge(&Config::orders()?, order_id, authorization).await?;
    order
        .amount()
        .map(drop)
        .map_err(|why| refusal(Target::Order(order_id), why))
}

/// How step (2) ended: this request charges the claimed payment, or it has its answer.
enum Claim {
    Mine(store::Claimed),
    Answered(Answer),
}

/// Why a claim's transaction was rolled back.
enum Outcome {
    /// The live payment that beat this claim was gone by the time it was read: claim again.
    Again,
    Failed(PaymentError),
}

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

/// What one claiming transaction found.
enum Step {
    Claimed(store::Claimed),
    /// The order (fine) is paid: the answer, kept for the key.
    Paid(Answer),
    /// Another request holds the Idempotency-Key.
    KeyTaken,
}

/// Step (2): takes the key (if any) and the payment's claim in one transaction, committed
/// before the charge. A request finding its key taken waits for the first request's answer,
/// polling, up to the processor's delay and 10 s; a key left unanswered past the lease
/// by a request that died is taken over. No connection is held while waiting.
fn claim(
    caller: &Caller,
    payment: &NewPayment,
    key: Option<&IdempotencyKey>,
    bill: &Bill,
    processor: Processor,
) -> Result<Claim, PaymentError> {
    let fingerprint = payment.fingerprint();
    let patience = Duration::from_millis(processor.delay_ms) + Duration::from_secs(10);
    let started = Instant::now();
    loop {
        if started.elapsed() > patience {
            return Err(PaymentError::InProgress(payment.target));
        }
        let db = Config::db()?;
        let step = api::db::transaction(&db, |db| {
            if let Some(key) = key {
                if !store::claim_key(db, caller.user_id, key, &fingerprint)? {
                    return Ok(Step::KeyTaken);
                }
            }
            if let Some(claimed) = store::claim(db, payment, bill.user_id, bill.amount)? {
                return Ok(Step::Claimed(claimed));
            }
            match store::live(db, payment.target)? {
                Some(paid) if paid.status == PaymentStatus::Succeeded => {
                    let answer = Answer::of(409, &ApiError::from(already_paid(payment.target)));
                    if let Some(key) = key {
                        store::save_answer(db, caller.user_id, key, answer.status, &answer.body)?;
                    }
                    Ok(Step::Paid(answer))
                }
                // A refusal before the charge: rolled back, so the key is not kept.
                Some(_) => Err(Outcome::Failed(PaymentError::InProgress(payment.target))),
                None => Err(Outcome::Again),
            }
        });
        let taken = match step {
            Ok(Step::Claimed(claimed)) => return Ok(Claim::Mine(claimed)),
            Ok(Step::Paid(answer)) => return Ok(Claim::Answered(answer)),
            Err(Outcome::Failed(error)) => return Err(error),
            Err(Outcome::Again) => continue,
            Ok(Step::KeyTaken) => key.expect("only a key can be taken"),
        };
        match store::stored_answer(&db, caller.user_id, taken)? {
            Some(stored) if stored.fingerprint != fingerprint => {
                return Err(PaymentError::KeyReused)
            }
            Some(store::StoredAnswer {
                answer: Some((status, body)),
                ..
            }) => {
                return Ok(Claim::Answered(Answer {
                    status,
                    body,
                    event: None,
                }))
            }
            Some(store::StoredAnswer { stale: true, .. }) => {
                store::drop_key(&db, caller.user_id, taken, true)?;
            }
            Some(_) => {
                drop(db);
                std::thread::sleep(Duration::from_millis(domain::KEY_POLL_MS));
            }
            // The first request gave the key up (refused before its charge): try afresh.
            None => {}
        }
    }
}

/// bonus-service and the key its commands are signed with.
struct Bonuses {
    upstream: Upstream,
    key: events::SigningKey,
}

/// The command about the claimed payment's bonuses, if it has any.
fn bonus_command(claimed: &store::Claimed, action: BonusAction) -> Option<BonusCommand> {
    let payment = &claimed.payment;
    let order_id = payment.order_id?;
    (payment.bonus_amount > Money::ZERO).then_some(BonusCommand {
        action,
        payment_id: payment.id,
        order_id,
        user_id: payment.user_id,
        amount: payment.bonus_amount,
        attempt: claimed.attempt,
    })
}

/// Step (4): takes the claimed payment's bonuses, if it has any. Refused when the balance
/// is short, or when the payment's bonuses were given back by an attempt before this one
/// (the claim is then given up; a new payment takes them afresh).
async fn take_bonuses(
    claimed: &store::Claimed,
    bonuses: Option<&Bonuses>,
) -> Result<(), PaymentError> {
    let Some(command) = bonus_command(claimed, BonusAction::Debit) else {
        return Ok(());
    };
    let bonuses =
        bonuses.ok_or_else(|| ApiError::internal("an order's payment without bonus-service"))?;
    match bonus_client::send(&bonuses.upstream, &bonuses.key, &command).await? {
        Bonus::Done => Ok(()),
        Bonus::Insufficient => Err(PaymentError::InsufficientBonuses(command.amount)),
        Bonus::Reversed | Bonus::TakenOver => Err(ApiError::bad_gateway(
            bonus_client::BONUS_SERVICE.failed,
            "the payment's bonuses were given back by an earlier attempt; pay again",
        )
        .with_detail(format!("payment {}", command.payment_id))
        .into()),
    }
}

/// Gives the claimed payment's bonuses back (or makes sure they are never taken), if it has
/// any. An error leaves them with the claim: the attempt that takes it over decides.
async fn give_bonuses_back(
    claimed: &store::Claimed,
    bonuses: Option<&Bonuses>,
) -> Result<(), PaymentError> {
    let Some(command) = bonus_command(claimed, BonusAction::Reverse) else {
        return Ok(());
    };
    let bonuses =
        bonuses.ok_or_else(|| ApiError::internal("an order's payment without bonus-service"))?;
    match bonus_client::send(&bonuses.upstream, &bonuses.key, &command).await? {
        Bonus::Done => Ok(()),
        // A newer attempt took this payment over and holds its bonuses: it answers for it.
        _ => Err(PaymentError::InProgress(Target::Order(command.order_id))),
    }
}

/// Gives up a claim that charged nothing, and its key: the request is refused. Its bonuses
/// go back first; if that or the release fails, the claim and the key are left to the lease.
async fn give_up(
    caller: &Caller,
    key: Option<&IdempotencyKey>,
    claimed: &store::Claimed,
    bonuses: Option<&Bonuses>,
) {
    if let Err(error) = give_bonuses_back(claimed, bonuses).await {
        eprintln!(
            "payment {} keeps its bonuses until its lease runs out: {}",
            claimed.payment.id,
            ApiError::from(error)
        );
        return;
    }
    let released = Config::db().and_then(|db| {
        api::db::transaction(&db, |db| {
            store::release(db, claimed)?;
            if let Some(key) = key {
                store::drop_key(db, caller.user_id, key, false)?;
            }
            Ok(())
        })
    });
    if let Err(error) = released {
        eprintln!(
            "payment {} was not released; it is taken over after its lease: {error}",
            claimed.payment.id
        );
    }
}

/// Step (5), the simulated processor: a delay, then its verdict (true: charged) on what the
/// bonuses leave; nothing is asked when they pay it all. A real processor gets the payment's
/// id as its idempotency key, so a claim taken over after the lease never charges twice.
fn charge(processor: Processor, payment: &Payment) -> bool {
    let amount = payment.charged();
    if amount == Money::ZERO {
        return true;
    }
    eprintln!(
        "processor: charging payment {} {} by {}",
        payment.id,
        amount,
        payment.payment_method.as_str()
    );
    if processor.delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(processor.delay_ms));
    }
    !processor.decline
}

/// Publishes the signed envelope, the outbox row's bytes, to Redis pub/sub: at most once by
/// nature. A failure is logged and the payment stands; its outbox row records the event for
/// reconciliation.
fn publish<E: Event>(url: &str, channel: &str, signed: &SignedEvent<E>) {
    let published = spin_sdk::redis::Connection::open(url)
        .and_then(|connection| connection.publish(channel, &signed.envelope()));
    if let Err(error) = published {
        eprintln!(
            "event {} of payment for order {} was not published to Redis: {error}",
            signed.event.event_id(),
            signed.event.order_id()
        );
    }
}

/// The answer to send (and to keep for the key), and the event of a payment just made.
struct Answer {
    status: u16,
    body: String,
    event: Option<SignedEvent>,
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

/// Records a charged payment as `succeeded`, with its event when it pays an order with
/// money (bonuses accrue on that part only), in the caller's transaction.
/// The event is signed here, as its outbox row is written, with the id it will keep.
fn record(
    db: &Connection,
    claimed: &Payment,
    relayed: bool,
    signing_key: Option<&events::SigningKey>,
) -> Result<Answer, PaymentError> {
    let Some(paid) = store::settle(db, claimed.id, PaymentStatus::Succeeded)? else {
        return settled_elsewhere(db, claimed.id);
    };
    let event = match (paid.order_id, signing_key) {
        // Paid in bonuses alone: nothing accrues.
        (Some(_), Some(_)) if paid.charged() == Money::ZERO => None,
        (Some(order_id), Some(key)) => {
            let event = PaymentEvent {
                order_id,
                user_id: paid.user_id,
                amount: paid.charged(),
                event_id: Uuid::new_v4(),
            };
            let signed = SignedEvent::sign(event, key);
            store::write_event(db, &paid, &signed, relayed)?;
            Some(signed)
        }
        (Some(_), None) => {
            return Err(ApiError::internal("an order's payment came without a signing key").into())
        }
        // Bonuses accrue on paid orders only.
        (None, _) => None,
    };
    Ok(Answer {
        event,
        ..Answer::of(201, &paid)
    })
}

/// Records a declined charge: the payment stays listed as `declined` and holds nothing.
fn decline(db: &Connection, claimed: &Payment) -> Result<Answer, PaymentError> {
    match store::settle(db, claimed.id, PaymentStatus::Declined)? {
        Some(_) => Ok(Answer::of(402, &ApiError::from(PaymentError::Declined))),
        None => settled_elsewhere(db, claimed.id),
    }
}

/// Another attempt at the same payment (one that took the claim over after the lease, or
/// the one it was taken from) recorded the verdict first: that verdict is the answer.
fn settled_elsewhere(db: &Connection, id: Uuid) -> Result<Answer, PaymentError> {
    match store::find(db, id)? {
        Some(paid) if paid.status == PaymentStatus::Succeeded => Ok(Answer::of(201, &paid)),
        Some(declined) if declined.status == PaymentStatus::Declined => {
            Ok(Answer::of(402, &ApiError::from(PaymentError::Declined)))
        }
        _ => Err(ApiError::internal("a charged payment's claim was lost")
            .with_detail(format!("payment {id} is no longer pending"))
            .into()),
    }
}

/// Refunds an order's succeeded payment, once: order-service calls this, as the caller, when
/// the order is cancelled before work starts (its owner or staff may call it too).
///
/// The steps: (1) the payment must be the caller's (or staff's to see) and `succeeded` (a
/// `refunded` one is answered with its refund again); (2) its order, read from order-service
/// as the caller, must be `created` or `confirmed` (or already `cancelled`); (3) the
/// simulated processor gives the money part back (it never declines a refund; it waits
/// `payment_processing_delay_ms` like a charge, and is idempotent per payment id as charges
/// are); (4) one transaction marks the payment `refunded` (only from `succeeded`, so of two
/// racing refunds one records it and the other, waiting on the row, answers the same refund),
/// writes the refund record and, when the payment accrued bonuses, the signed
/// `payment_refunded` event on the outbox, so the relay (or Redis) carries it like the
/// payment's own event and bonus-service reverses the accrual once per event; (5) the bonuses
/// the payment took go back through bonus-service's reversal, keyed by the payment id, and
/// the refund notes it. A failure at (5) leaves the refund recorded with
/// `bonuses_returned: false` and answers the error; the next call repeats (5) only.
#[utoipa::path(post, path = "/api/payments/{payment_id}/refund", tag = "payments",
    operation_id = "refund_payment",
    summary = "Refund an order's succeeded payment, once (order-service calls it on cancelling)",
    description = "The owner of the order or staff. The payment must be an order's and \
        `succeeded`, and its order `created` or `confirmed`: a refund comes before work \
        starts. The processor gives the money part back (the simulated one always does, \
        after `payment_processing_delay_ms`), the payment becomes `refunded` (it no longer \
        holds the order), the bonuses it took go back to the balance, and a signed \
        `payment_refunded` event reverses the bonuses it accrued. Asked again, it answers the \
        same refund and refunds nothing more. Cancelling the order \
        (`PATCH /api/orders/{id}/status`) calls this itself.",
    params(("payment_id" = Uuid, Path)),
    responses(
        (status = 200, description = "The refund (the first one, when asked again)", body = domain::Refund),
        (status = 404, description = "payment_not_found: no such payment, or not the caller's; order_not_found: its order is gone", body = api::openapi::ErrorBody),
        (status = 409, description = "payment_pending: the payment is still being processed; \
            payment_not_refundable: it was declined, or pays a fine; order_in_work: its order \
            is in progress or completed", body = api::openapi::ErrorBody),
        (status = 502, description = "order_service_failed or bonus_service_failed: it \
            answered unusably (after a bonus-service failure the refund is recorded and asking \
            again gives the bonuses back)", body = api::openapi::ErrorBody),
        (status = 503, description = "order_service_unavailable or bonus_service_unavailable: \
            it cannot be reached", body = api::openapi::ErrorBody),
        (status = 504, description = "order_service_timeout or bonus_service_timeout: it did \
            not answer in time", body = api::openapi::ErrorBody),
    ))]
async fn refund(request: Request, params: Params) -> Result<Response, PaymentError> {
    let caller = api::auth::caller(&request)?;
    let raw_id = params.get("payment_id").unwrap_or_default();
    let id = Uuid::parse_str(raw_id).map_err(|_| PaymentError::PaymentNotFound(raw_id.into()))?;
    let payment = match store::find(&Config::db()?, id)? {
        Some(payment) if caller.may_access(payment.user_id) => payment,
        _ => return Err(PaymentError::PaymentNotFound(id.to_string())),
    };
    let order_id = payment.order_id.ok_or(PaymentError::NotRefundable(id))?;
    let signing_key = Config::signing_key()?;
    let bonuses = Bonuses {
        upstream: Config::bonuses()?,
        key: signing_key.clone(),
    };
    let refunded = match payment.status {
        PaymentStatus::Pending => return Err(PaymentError::RefundPending(id)),
        PaymentStatus::Declined => return Err(PaymentError::NotRefundable(id)),
        PaymentStatus::Refunded => None,
        PaymentStatus::Succeeded => {
            let authorization = request.header("authorization").and_then(|v| v.as_str());
            let order =
                order_client::fetch_order(&Config::orders()?, order_id, authorization).await?;
            if !matches!(order.status.as_str(), "created" | "confirmed" | "cancelled") {
                return Err(PaymentError::OrderInWork(order_id, order.status));
            }
            let transport = Config::transport()?;
            give_back_money(Config::processor()?, &payment);
            let relayed = transport == Transport::RabbitMq;
            let db = Config::db()?;
            let (refund, event) =
                api::db::transaction(&db, |db| record_refund(db, id, relayed, &signing_key))?;
            if let (Transport::Redis { url, channel }, Some(event)) = (&transport, &event) {
                publish(url, channel, event);
            }
            Some(refund)
        }
    };
    let refund = match refunded {
        Some(refund) => refund,
        None => store::find_refund(&Config::db()?, id)?
            .ok_or_else(|| ApiError::internal("a refunded payment has no refund record"))?,
    };
    let refund = return_bonuses(refund, &bonuses).await?;
    Ok(json_response(200, &refund))
}

/// The simulated processor's refund of what `payment` charged: a delay, then done.
fn give_back_money(processor: Processor, payment: &Payment) {
    let amount = payment.charged();
    if amount == Money::ZERO {
        return;
    }
    eprintln!(
        "processor: refunding payment {} {} by {}",
        payment.id,
        amount,
        payment.payment_method.as_str()
    );
    if processor.delay_ms > 0 {
        std::thread::sleep(Duration::from_millis(processor.delay_ms));
    }
}

/// Step (4) of [`refund`]: marks the payment refunded with its record and event, or, when
/// another request did, answers that request's refund.
fn record_refund(
    db: &Connection,
    id: Uuid,
    relayed: bool,
    key: &events::SigningKey,
) -> Result<(Refund, Option<SignedEvent<RefundEvent>>), PaymentError> {
    let Some(paid) = store::mark_refunded(db, id)? else {
        return match store::find_refund(db, id)? {
            Some(refund) => Ok((refund, None)),
            // Neither succeeded nor refunded by now: it was not ours to refund.
            None => Err(PaymentError::NotRefundable(id)),
        };
    };
    let refund = store::insert_refund(db, &paid)?;
    let event = match store::succeeded_event(db, id)? {
        Some(reverses_event_id) if paid.charged() > Money::ZERO => {
            let event = RefundEvent {
                kind: RefundEvent::KIND,
                event_id: Uuid::new_v4(),
                reverses_event_id,
                payment_id: id,
                order_id: refund.order_id,
                user_id: paid.user_id,
                amount: paid.charged(),
            };
            let signed = SignedEvent::sign(event, key);
            store::write_refund_event(db, &signed, relayed)?;
            Some(signed)
        }
        // Paid in bonuses alone: it accrued nothing, so there is nothing to reverse.
        _ => None,
    };
    Ok((refund, event))
}

/// Step (5) of [`refund`]: gives the payment's bonuses back at bonus-service, unless the
/// refund says that was done.
async fn return_bonuses(refund: Refund, bonuses: &Bonuses) -> Result<Refund, PaymentError> {
    if refund.bonuses_returned {
        return Ok(refund);
    }
    let command = BonusCommand {
        action: BonusAction::Reverse,
        payment_id: refund.payment_id,
        order_id: refund.order_id,
        user_id: refund.user_id,
        amount: refund.bonus_amount,
        attempt: store::attempt(&Config::db()?, refund.payment_id)?,
    };
    match bonus_client::send(&bonuses.upstream, &bonuses.key, &command).await? {
        Bonus::Done => {}
        other => {
            return Err(ApiError::bad_gateway(
                bonus_client::BONUS_SERVICE.failed,
                "bonus-service did not give the refunded payment's bonuses back",
            )
            .with_detail(format!("payment {}: {other:?}", refund.payment_id))
            .into())
        }
    }
    Ok(
        store::bonuses_returned(&Config::db()?, refund.payment_id)?.unwrap_or(Refund {
            bonuses_returned: true,
            ..refund
        }),
    )
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

/// The caller's payments, newest first (`?order_id=&fine_id=&status=&limit=&cursor=`);
/// staff see everyone's.
#[utoipa::path(get, path = "/api/payments", tag = "payments",
    summary = "The caller's payments, newest first; staff see everyone's",
    params(
        api::openapi::PageParams,
        ("order_id" = Option<Uuid>, Query, description = "Only this order's payments"),
        ("fine_id" = Option<Uuid>, Query, description = "Only this fine's payments"),
        ("status" = Option<String>, Query,
            pattern = "^(?:pending|succeeded|declined|refunded)(?:,(?:pending|succeeded|declined|refunded))*$",
            description = "Only payments in these statuses, comma-separated: `pending`, \
                `succeeded`, `declined`, `refunded` (e.g. `pending,succeeded`: what holds an \
                order)"),
    ),
    responses(
        (status = 200, description = "One page", body = api::query::PageOf<domain::Payment>),
        (status = 422, description = "validation_failed: bad limit, cursor, order_id, fine_id or status", body = api::openapi::ErrorBody),
    ))]
fn list_payments(request: Request, _params: Params) -> Result<Response, PaymentError> {
    let caller = api::auth::caller(&request)?;
    let query = Query::parse(request.query())?;
    let page = Page::parse(&query)?;
    let mut errors = FieldErrors::new();
    let filter = store::ListFilter {
        order: errors.check(query.uuid("order_id")).flatten(),
        fine: errors.check(query.uuid("fine_id")).flatten(),
        statuses: errors
            .check(
                query
                    .get("status")
                    .map(PaymentStatus::parse_list)
                    .transpose(),
            )
            .flatten(),
    };
    if !errors.is_empty() {
        return Err(errors.into());
    }
    let user = (!caller.is_staff()).then_some(caller.user_id);
    let payments = store::list(
        &Config::db()?,
        user,
        &filter,
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
        assert_eq!(pay["operationId"], "create_payment");
        assert_eq!(pay["parameters"][0]["name"], "Idempotency-Key");
        assert_eq!(pay["parameters"][0]["in"], "header");
        assert!(doc["paths"]["/api/payments/health/live"]["get"].is_object());
        let request = &doc["components"]["schemas"]["PaymentRequest"];
        let fields = &request["allOf"][0];
        assert!(fields["properties"]["fine_id"].is_object());
        assert_eq!(fields["required"], serde_json::json!(["payment_method"]));
        // Exactly one of order_id and fine_id.
        assert_eq!(request["allOf"][1]["oneOf"].as_array().unwrap().len(), 2);
        let status = &doc["components"]["schemas"]["PaymentStatus"];
        assert_eq!(
            status["enum"],
            serde_json::json!(["pending", "succeeded", "declined", "refunded"])
        );
        let list = &doc["paths"]["/api/payments"]["get"]["parameters"];
        for name in ["order_id", "fine_id", "status"] {
            assert!(
                list.as_array().unwrap().iter().any(|p| p["name"] == name),
                "{name}"
            );
        }
    }

    #[test]
    fn routes_answer_401_405_and_404_before_the_host() {
        api::testing::assert_routes(routes());
    }
}
