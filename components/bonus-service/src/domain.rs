//! Bonuses as the business sees them: the accrual rate and what a payment earns, the
//! requests that move a balance, promocodes, and the ledger entries that explain a balance.
//! No spin-sdk here: `cargo test` runs these rules natively.

use api::json::Object;
use api::money::{Money, PositiveAmount, Share};
use api::{FieldError, FieldErrors};
use chrono::{DateTime, Utc};
use serde::ser::Error as _;
use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

/// The share of a paid amount credited as bonuses (`bonus_accrual_rate`, called
/// `BONUS_ACCRUAL_RATE` in the reference design): a decimal from 0 to 1 kept as an exact
/// fraction, so 1 % of 999.99 is 10.00 and never 9.999999.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccrualRate(Share);

impl AccrualRate {
    /// Finer than any rate a loyalty programme sets; keeps the denominator a small power of 10.
    pub const MAX_DECIMALS: usize = Share::MAX_DECIMALS;

    /// `"0.01"` → 1/100. Only plain decimals from 0 to 1 (`0`, `1`, `0.5`, `1.00`,
    /// `0.015`): signs, exponents, commas and a missing leading digit are refused.
    pub fn parse(text: &str) -> Option<Self> {
        Share::parse(text).map(Self)
    }

    /// The bonuses a payment of `paid` earns, rounded half up to the kopeck.
    pub fn accrual(self, paid: Money) -> Money {
        self.0.of(paid)
    }
}

/// A `true`/`false` Spin variable, such as the `bonus_fail_events` test switch.
pub fn parse_switch(text: &str) -> Option<bool> {
    match text.trim() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

/// `POST /api/bonuses/events`'s body, and every Redis message on the events channel: a
/// payment event signed by payment-service (and, on `POST /api/bonuses/payment-debits`, a
/// [`PaymentDebitRequest`] signed the same way). `event` is the event's JSON as a string, byte
/// for byte as signed; `signature` is `hmac-sha256=` and the hex HMAC-SHA256 of those bytes
/// under the `event_signing_key` variable. A body of another shape is refused (403) before
/// the signature is checked.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "event": "{\"order_id\":\"550e8400-e29b-41d4-a716-446655440000\",\"user_id\":\"6ba7b810-9dad-11d1-80b4-00c04fd430c8\",\"amount\":3000.0,\"event_id\":\"3fa85f64-5717-4562-b3fc-2c963f66afa6\"}",
    "signature": "hmac-sha256=9f2c4d8e0b1a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"
}))]
pub struct SignedEventRequest {
    /// A [`PaymentEventRequest`] as JSON text, exactly as signed.
    pub event: String,
    /// `hmac-sha256=<64 hex digits>` over the bytes of `event`.
    #[schema(pattern = "^hmac-sha256=[0-9a-fA-F]{64}$")]
    pub signature: String,
}

/// The event inside a [`SignedEventRequest`]: documented and read as this type (see
/// `api::body`). Fields the relay may add later are ignored, so the producer can grow first.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "event_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "order_id": "550e8400-e29b-41d4-a716-446655440000",
    "user_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "amount": 3000.0
}))]
pub struct PaymentEventRequest {
    /// The outbox event's id: accrued once, a redelivery is answered with `duplicate: true`.
    pub event_id: Uuid,
    pub order_id: Uuid,
    /// Whose balance is credited.
    pub user_id: Uuid,
    // The amount paid (a doc comment here would wrap the inline schema in an `allOf`).
    #[schema(inline)]
    pub amount: PositiveAmount,
}

/// `POST /api/bonuses/events`: a `payment_succeeded` event as the relay delivers it from
/// payment-service's outbox, `{event_id, order_id, user_id, amount}` (amount in roubles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentEvent {
    pub event_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
}

impl PaymentEvent {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: PaymentEventRequest = api::body::parse(body)?;
        Ok(Self {
            event_id: request.event_id,
            order_id: request.order_id,
            user_id: request.user_id,
            amount: request.amount.0,
        })
    }
}

/// The only `type` a [`PaymentRefundedRequest`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
pub enum RefundedType {
    #[serde(rename = "payment_refunded")]
    PaymentRefunded,
}

/// A `payment_refunded` event inside a [`SignedEventRequest`]: an order's payment was
/// refunded, so the accrual of its `payment_succeeded` event (`reverses_event_id`) is
/// reversed, once per `event_id`. An event without `type` is a [`PaymentEventRequest`].
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "type": "payment_refunded",
    "event_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "reverses_event_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
    "payment_id": "9b2f1c3e-4d5a-4b6c-8d7e-0f1a2b3c4d5e",
    "order_id": "550e8400-e29b-41d4-a716-446655440000",
    "user_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "amount": 3000.0
}))]
pub struct PaymentRefundedRequest {
    #[serde(rename = "type")]
    pub kind: RefundedType,
    /// The refund event's id: applied once, a redelivery is answered with `duplicate: true`.
    pub event_id: Uuid,
    /// The `payment_succeeded` event whose accrual is reversed.
    pub reverses_event_id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// Whose accrual is reversed.
    pub user_id: Uuid,
    // The money given back (a doc comment here would wrap the inline schema in an `allOf`).
    #[schema(inline)]
    pub amount: PositiveAmount,
}

/// A `payment_refunded` event, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefundEvent {
    pub event_id: Uuid,
    pub reverses_event_id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
}

impl RefundEvent {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: PaymentRefundedRequest = api::body::parse(body)?;
        Ok(Self {
            event_id: request.event_id,
            reverses_event_id: request.reverses_event_id,
            payment_id: request.payment_id,
            order_id: request.order_id,
            user_id: request.user_id,
        })
    }
}

/// The kinds of signed event `POST /api/bonuses/events` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// No `type`, or `payment_succeeded`.
    Succeeded,
    Refunded,
}

impl EventKind {
    pub fn of(body: &Object) -> Result<Self, FieldError> {
        match body.get("type") {
            None => Ok(Self::Succeeded),
            Some(value) => match value.as_str() {
                Some("payment_succeeded") => Ok(Self::Succeeded),
                Some("payment_refunded") => Ok(Self::Refunded),
                _ => Err(FieldError::new(
                    "type",
                    "must be payment_succeeded (or absent) or payment_refunded",
                )),
            },
        }
    }
}

/// What reversing an accrual did: how much it took back (at most the balance) and how much
/// stays owed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reversal {
    pub taken: Money,
    pub owed: Money,
}

impl Reversal {
    /// Takes `accrued` back from `balance`, never below zero: the rest is owed.
    pub fn of(accrued: Money, balance: Money) -> Self {
        let taken = accrued.kopecks().min(balance.kopecks());
        Self {
            taken: Money::from_kopecks(taken).expect("between 0 and the accrual"),
            owed: Money::from_kopecks(accrued.kopecks() - taken).expect("at most the accrual"),
        }
    }
}

/// The answer to a `payment_refunded` event: the accrual it reversed, what the balance gave
/// back and what stays owed; `duplicate` when applied before, with those figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Refunded {
    pub event_id: Uuid,
    pub user_id: Uuid,
    /// The accrual being reversed (0 when the refund arrived before it: it then never accrues).
    pub reversed: Money,
    /// Taken off the balance now.
    pub taken: Money,
    /// Already spent, so recorded as owed instead of taken.
    pub owed: Money,
    pub balance: Money,
    pub duplicate: bool,
}

/// The answer to an event delivery: an accrual's or a refund's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Applied {
    Accrued(Accrued),
    Refunded(Refunded),
}

/// `POST /api/bonuses/spend`'s body: documented and read as this type; `amount` is never
/// more than the balance (else 409). Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"amount": 30, "order_id": "550e8400-e29b-41d4-a716-446655440000"}))]
pub struct SpendRequest {
    // Bonuses to spend (no doc comment: it would wrap the inline schema in an `allOf`).
    #[schema(inline)]
    pub amount: PositiveAmount,
    /// The order the bonuses pay towards, if any.
    pub order_id: Option<Uuid>,
}

/// `POST /api/bonuses/spend`: `{amount, order_id?}`, the bonuses to take off the balance and
/// the order they pay towards, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spend {
    pub amount: Money,
    pub order_id: Option<Uuid>,
}

impl Spend {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: SpendRequest = api::body::parse(body)?;
        Ok(Self {
            amount: request.amount.0,
            order_id: request.order_id,
        })
    }
}

/// What payment-service asks of a payment's bonuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DebitAction {
    /// Take the bonuses, before the money part is charged.
    Debit,
    /// Give them back (or make sure they are never taken): the charge was declined, or the
    /// payment was given up before it.
    Reverse,
}

/// The command inside a signed envelope on `POST /api/bonuses/payment-debits`: documented
/// and read as this type (see `api::body`). payment-service signs it with the same key as
/// its events; `action` is required, so neither kind of signed body passes for the other.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "action": "debit",
    "payment_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
    "order_id": "550e8400-e29b-41d4-a716-446655440000",
    "user_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
    "amount": 900,
    "attempt": 1767225600000000_u64
}))]
pub struct PaymentDebitRequest {
    pub action: DebitAction,
    /// The payment the bonuses pay towards: a debit is made once per payment.
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// Whose bonuses: the order's owner.
    pub user_id: Uuid,
    // The bonuses (a doc comment here would wrap the inline schema in an `allOf`).
    #[schema(inline)]
    pub amount: PositiveAmount,
    /// The payment's claim, in microseconds since the epoch: an attempt that took a payment
    /// over owns its debit from then on, and a reversal by an older attempt is refused.
    #[schema(minimum = 0)]
    pub attempt: i64,
}

/// `POST /api/bonuses/payment-debits`, checked and signed: take or give back a payment's
/// bonuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentDebit {
    pub action: DebitAction,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
    pub attempt: i64,
}

impl PaymentDebit {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let request: PaymentDebitRequest = api::body::parse(body)?;
        Ok(Self {
            action: request.action,
            payment_id: request.payment_id,
            order_id: request.order_id,
            user_id: request.user_id,
            amount: request.amount.0,
            attempt: request.attempt,
        })
    }
}

/// Where a payment's bonuses are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DebitState {
    /// Taken off the balance.
    Debited,
    /// Given back, or never taken: final.
    Reversed,
}

/// A payment's debit as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredDebit {
    pub user_id: Uuid,
    pub order_id: Uuid,
    pub amount: Money,
    pub reversed: bool,
    pub attempt: i64,
}

impl StoredDebit {
    /// Whether `command` names the same payment as this row: the same user, order and amount.
    pub fn matches(&self, command: &PaymentDebit) -> bool {
        (self.user_id, self.order_id, self.amount)
            == (command.user_id, command.order_id, command.amount)
    }
}

/// The answer to a payment's debit or reversal; `duplicate` when it had been done before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PaymentBonuses {
    pub payment_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
    pub state: DebitState,
    /// The user's balance after this.
    pub balance: Money,
    pub duplicate: bool,
}

/// A promocode as stored: trimmed and upper-cased, so ` welcome500 ` names `WELCOME500`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[schema(example = "WELCOME500")]
pub struct PromocodeCode(String);

/// `POST /api/bonuses/promocodes/apply`'s body: documented and read as this type. Unknown
/// properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"code": "WELCOME500"}))]
pub struct PromocodeRequest {
    /// Trimmed and upper-cased before lookup; applies once per user. Not blank, no NUL.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00]*[^\x00\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00]*$"
    )]
    pub code: String,
}

impl PromocodeCode {
    /// `POST /api/bonuses/promocodes/apply`: `{code}`.
    pub fn from_body(body: &Object) -> Result<Self, FieldErrors> {
        let request: PromocodeRequest = api::body::parse(body)?;
        Ok(Self(request.code.trim().to_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PromocodeCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![
        api::body::Documented::new::<SignedEventRequest, _>(|body| {
            api::body::parse::<SignedEventRequest>(body)
        }),
        api::body::Documented::new::<PaymentEventRequest, _>(PaymentEvent::parse),
        api::body::Documented::new::<PaymentRefundedRequest, _>(RefundEvent::parse),
        api::body::Documented::new::<SpendRequest, _>(Spend::parse),
        api::body::Documented::new::<PromocodeRequest, _>(PromocodeCode::from_body),
        api::body::Documented::new::<PaymentDebitRequest, _>(PaymentDebit::parse),
    ]
}

/// A promocode's terms: what it credits and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Promocode {
    pub amount: Money,
    pub expires_at: DateTime<Utc>,
}

/// A promocode applied at or after its `expires_at`: 422.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expired(pub DateTime<Utc>);

impl Promocode {
    /// What applying the code at `now` credits; a code is valid until `expires_at`, exclusive.
    pub fn credit_at(&self, now: DateTime<Utc>) -> Result<Money, Expired> {
        if now < self.expires_at {
            Ok(self.amount)
        } else {
            Err(Expired(self.expires_at))
        }
    }
}

/// Why a ledger entry exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    /// Earned by a payment (once per event).
    Accrual,
    /// Taken off the balance by the user.
    Spend,
    /// Credited by a promocode (once per code and user).
    Promocode,
    /// Taken off the balance to pay part of an order (once per payment).
    Payment,
    /// A payment's bonuses given back: its charge was declined, it was given up before
    /// the charge, or it was refunded (at most once per payment).
    Reversal,
    /// A refunded payment's accrual taken back (0 or negative): at most the balance, the
    /// rest recorded as `owed` (once per refund event).
    Refund,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accrual => "accrual",
            Self::Spend => "spend",
            Self::Promocode => "promocode",
            Self::Payment => "payment",
            Self::Reversal => "reversal",
            Self::Refund => "refund",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "accrual" => Some(Self::Accrual),
            "spend" => Some(Self::Spend),
            "promocode" => Some(Self::Promocode),
            "payment" => Some(Self::Payment),
            "reversal" => Some(Self::Reversal),
            "refund" => Some(Self::Refund),
            _ => None,
        }
    }
}

/// An amount as the ledger records it: credits positive, spends negative, so a user's
/// entries add up to their balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(
    value_type = f64,
    description = "Roubles, signed: credits positive, spends negative",
    example = -30.0
)]
pub struct LedgerAmount(i64);

impl LedgerAmount {
    pub fn new(kind: EntryKind, amount: Money) -> Self {
        match kind {
            EntryKind::Spend | EntryKind::Payment | EntryKind::Refund => Self(-amount.kopecks()),
            EntryKind::Accrual | EntryKind::Promocode | EntryKind::Reversal => {
                Self(amount.kopecks())
            }
        }
    }

    /// Signed kopecks read back, if their sign fits `kind` (the schema's CHECK says so too).
    pub fn from_kopecks(kind: EntryKind, kopecks: i64) -> Option<Self> {
        let fits = match kind {
            EntryKind::Spend | EntryKind::Payment => kopecks < 0,
            // Nothing is taken back from an empty balance: all of it is owed.
            EntryKind::Refund => kopecks <= 0,
            // A rate of 0, or a payment of a few kopecks, earns nothing, yet the event
            // is still recorded, so its redelivery is recognised.
            EntryKind::Accrual => kopecks >= 0,
            EntryKind::Promocode | EntryKind::Reversal => kopecks > 0,
        };
        let magnitude = Money::from_kopecks(kopecks.checked_abs()?)?;
        fits.then_some(Self::new(kind, magnitude))
    }

    pub fn kopecks(self) -> i64 {
        self.0
    }
}

impl Serialize for LedgerAmount {
    /// A JSON number in roubles written from its decimal text, exact like `Money`'s.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let magnitude = Money::from_kopecks(self.0.abs())
            .ok_or_else(|| S::Error::custom("a ledger amount out of range"))?;
        let sign = if self.0 < 0 { "-" } else { "" };
        let roubles: f64 = format!("{sign}{magnitude}")
            .parse()
            .map_err(S::Error::custom)?;
        serializer.serialize_f64(roubles)
    }
}

/// A ledger entry about to be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    pub user_id: Uuid,
    pub kind: EntryKind,
    pub amount: LedgerAmount,
    pub event_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub promocode: Option<PromocodeCode>,
    pub payment_id: Option<Uuid>,
}

impl NewEntry {
    pub fn accrual(event: &PaymentEvent, accrued: Money) -> Self {
        Self {
            user_id: event.user_id,
            kind: EntryKind::Accrual,
            amount: LedgerAmount::new(EntryKind::Accrual, accrued),
            event_id: Some(event.event_id),
            order_id: Some(event.order_id),
            promocode: None,
            payment_id: None,
        }
    }

    pub fn spend(user_id: Uuid, spend: &Spend) -> Self {
        Self {
            user_id,
            kind: EntryKind::Spend,
            amount: LedgerAmount::new(EntryKind::Spend, spend.amount),
            event_id: None,
            order_id: spend.order_id,
            promocode: None,
            payment_id: None,
        }
    }

    pub fn promocode(user_id: Uuid, code: &PromocodeCode, credited: Money) -> Self {
        Self {
            user_id,
            kind: EntryKind::Promocode,
            amount: LedgerAmount::new(EntryKind::Promocode, credited),
            event_id: None,
            order_id: None,
            promocode: Some(code.clone()),
            payment_id: None,
        }
    }

    /// Bonuses taken (`Payment`) or given back (`Reversal`) for a payment.
    pub fn for_payment(kind: EntryKind, command: &PaymentDebit) -> Self {
        Self {
            user_id: command.user_id,
            kind,
            amount: LedgerAmount::new(kind, command.amount),
            event_id: None,
            order_id: Some(command.order_id),
            promocode: None,
            payment_id: Some(command.payment_id),
        }
    }
}

/// A ledger entry as stored and as the history lists it; absent references are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub id: Uuid,
    pub kind: EntryKind,
    pub amount: LedgerAmount,
    /// Accruals: the payment event's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Uuid)]
    pub event_id: Option<Uuid>,
    /// Accruals, and spends towards an order.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Uuid)]
    pub order_id: Option<Uuid>,
    /// Promocode credits: the code.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String)]
    pub promocode: Option<String>,
    /// Payments and reversals: the payment (payment-service's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Uuid)]
    pub payment_id: Option<Uuid>,
    /// Refunds: what could not be taken back (already spent) and is owed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = f64)]
    pub owed: Option<Money>,
    /// Refunds: the payment event whose accrual this reverses.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Uuid)]
    pub reverses_event_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
}

/// The answer to an event delivery; `duplicate` when the event had been accrued before,
/// with what was accrued then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Accrued {
    pub event_id: Uuid,
    pub user_id: Uuid,
    pub accrued: Money,
    pub balance: Money,
    pub duplicate: bool,
}

/// `GET /api/bonuses/balance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Balance {
    pub user_id: Uuid,
    pub balance: Money,
    /// Bonuses refunded payments had accrued that were already spent: recorded, not taken
    /// (the balance never goes below zero). Later accruals do not pay it off by themselves.
    pub owed: Money,
}

/// The answer to a spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Spent {
    pub balance: Money,
    pub spent: Money,
}

/// The answer to an applied promocode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Credited {
    pub code: PromocodeCode,
    pub credited: Money,
    pub balance: Money,
}

/// A UUID query or body value.
pub fn parse_uuid(field: &str, raw: &str) -> Result<Uuid, FieldError> {
    Uuid::parse_str(raw.trim()).map_err(|_| FieldError::new(field, "must be a UUID"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn object(value: Value) -> Object {
        value.as_object().unwrap().clone()
    }

    fn money(kopecks: i64) -> Money {
        Money::from_kopecks(kopecks).unwrap()
    }

    fn rate(text: &str) -> AccrualRate {
        AccrualRate::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn rates_parse_exactly_into_fractions() {
        for (text, numerator, denominator) in [
            ("0.01", 1, 100),
            ("0", 0, 1),
            ("1", 1, 1),
            ("1.00", 100, 100),
            (" 0.5 ", 5, 10),
            ("0.015", 15, 1000),
            ("0.000000001", 1, 1_000_000_000),
        ] {
            assert_eq!(rate(text).0.parts(), (numerator, denominator), "{text}");
        }
    }

    #[test]
    fn rates_outside_0_to_1_or_not_plain_decimals_are_refused() {
        for bad in [
            "",
            " ",
            "-0.01",
            "+0.01",
            "1.01",
            "2",
            "01",
            ".01",
            "0.",
            "1e-2",
            "0,01",
            "0.01%",
            "0.0000000001",
            "NaN",
            "0x1",
        ] {
            assert_eq!(AccrualRate::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn accruals_round_half_up_to_the_kopeck() {
        let one_percent = rate("0.01");
        assert_eq!(one_percent.accrual(money(300_000)), money(3_000));
        assert_eq!(one_percent.accrual(money(99_999)), money(1_000));
        assert_eq!(one_percent.accrual(money(149)), money(1));
        assert_eq!(one_percent.accrual(money(150)), money(2));
        assert_eq!(one_percent.accrual(money(49)), Money::ZERO);
        assert_eq!(rate("0.015").accrual(money(100)), money(2));
        assert_eq!(rate("0").accrual(money(300_000)), Money::ZERO);
        let all = money(Money::MAX_KOPECKS);
        assert_eq!(rate("1").accrual(all), all);
    }

    #[test]
    fn switches_are_true_or_false() {
        assert_eq!(parse_switch("true"), Some(true));
        assert_eq!(parse_switch(" false "), Some(false));
        for bad in ["", "yes", "1", "TRUE"] {
            assert_eq!(parse_switch(bad), None, "{bad}");
        }
    }

    #[test]
    fn promocodes_are_trimmed_and_upper_cased() {
        let code = |code: Value| PromocodeCode::from_body(&object(json!({ "code": code })));
        assert_eq!(code(json!("  welcome500 ")).unwrap().as_str(), "WELCOME500");
        assert_eq!(
            code(json!("Detailing2026")).unwrap().as_str(),
            "DETAILING2026"
        );
        assert!(code(json!("A".repeat(64))).is_ok());
        for bad in [
            json!(""),
            json!("   "),
            json!("A".repeat(65)),
            json!("A\u{0}"),
        ] {
            assert_eq!(
                code(bad.clone()).unwrap_err().as_slice()[0].field,
                "code",
                "{bad}"
            );
        }
        let errors = code(json!(500)).unwrap_err();
        assert_eq!(
            errors.get("code").unwrap().message,
            "must be a string, not a number"
        );
        assert!(PromocodeCode::from_body(&object(json!({}))).is_err());
    }

    #[test]
    fn a_promocode_credits_until_it_expires() {
        let expires_at = DateTime::parse_from_rfc3339("2024-09-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let code = Promocode {
            amount: money(30_000),
            expires_at,
        };
        let second = chrono::Duration::seconds(1);
        assert_eq!(code.credit_at(expires_at - second), Ok(money(30_000)));
        assert_eq!(code.credit_at(expires_at), Err(Expired(expires_at)));
        assert_eq!(
            code.credit_at(expires_at + second),
            Err(Expired(expires_at))
        );
    }

    #[test]
    fn an_event_parses_with_extra_fields_and_reports_every_bad_one() {
        let event = PaymentEvent::parse(&object(json!({
            "event_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6",
            "order_id": "550e8400-e29b-41d4-a716-446655440000",
            "user_id": "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
            "amount": 3000.0,
            "created_at": "2030-01-01T00:00:00Z"
        })))
        .unwrap();
        assert_eq!(event.amount, money(300_000));
        let errors = PaymentEvent::parse(&object(json!({
            "event_id": "nope", "user_id": 7, "amount": 0.001
        })))
        .unwrap_err();
        let fields: Vec<&str> = errors.as_slice().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["amount", "event_id", "user_id", "order_id"]);
    }

    #[test]
    fn spends_need_a_positive_amount_of_kopecks() {
        let spend = Spend::parse(&object(json!({"amount": 30}))).unwrap();
        assert_eq!((spend.amount, spend.order_id), (money(3_000), None));
        let order = Uuid::from_u128(9);
        let spend = Spend::parse(&object(json!({"amount": "0.01", "order_id": order}))).unwrap();
        assert_eq!((spend.amount, spend.order_id), (money(1), Some(order)));
        let spend = Spend::parse(&object(json!({"amount": 1000000000}))).unwrap();
        assert_eq!(spend.amount, money(100_000_000_000));
        for amount in [
            json!(0),
            json!(-1),
            json!(1.005),
            json!(5e-324),
            json!(1000000000.01),
            json!("x"),
            json!("0.00"),
            json!("017.5"),
            Value::Null,
        ] {
            let errors = Spend::parse(&object(json!({"amount": amount}))).unwrap_err();
            assert!(errors.get("amount").is_some(), "{amount}");
        }
        let errors = Spend::parse(&object(json!({"amount": 1, "order_id": "x"}))).unwrap_err();
        assert!(errors
            .get("order_id")
            .unwrap()
            .message
            .starts_with("must be a UUID"));
    }

    #[test]
    fn the_document_and_the_parsers_agree() {
        for documented in request_bodies() {
            let found = api::body::disagreements(&documented);
            assert!(found.is_empty(), "{}", found.join("\n"));
        }
    }

    #[test]
    fn ledger_amounts_are_signed_by_kind_and_serialize_exactly() {
        let spend = LedgerAmount::new(EntryKind::Spend, money(3_050));
        assert_eq!(spend.kopecks(), -3_050);
        assert_eq!(serde_json::to_string(&spend).unwrap(), "-30.5");
        let accrual = LedgerAmount::new(EntryKind::Accrual, money(3_000));
        assert_eq!(serde_json::to_string(&accrual).unwrap(), "30.0");
        assert_eq!(
            serde_json::to_string(&LedgerAmount::new(EntryKind::Accrual, Money::ZERO)).unwrap(),
            "0.0"
        );
        assert_eq!(
            LedgerAmount::from_kopecks(EntryKind::Spend, -1),
            Some(LedgerAmount(-1))
        );
        assert_eq!(LedgerAmount::from_kopecks(EntryKind::Spend, 1), None);
        assert_eq!(LedgerAmount::from_kopecks(EntryKind::Promocode, 0), None);
        assert_eq!(LedgerAmount::from_kopecks(EntryKind::Accrual, -1), None);
        assert_eq!(LedgerAmount::from_kopecks(EntryKind::Spend, i64::MIN), None);
        assert_eq!(
            LedgerAmount::new(EntryKind::Payment, money(90_000)).kopecks(),
            -90_000
        );
        assert_eq!(LedgerAmount::from_kopecks(EntryKind::Payment, 1), None);
        assert_eq!(LedgerAmount::from_kopecks(EntryKind::Reversal, 0), None);
        assert_eq!(
            LedgerAmount::from_kopecks(EntryKind::Refund, 0),
            Some(LedgerAmount(0))
        );
        assert_eq!(LedgerAmount::from_kopecks(EntryKind::Refund, 1), None);
    }

    #[test]
    fn a_reversal_takes_at_most_the_balance_and_owes_the_rest() {
        assert_eq!(
            Reversal::of(money(3_000), money(10_000)),
            Reversal {
                taken: money(3_000),
                owed: Money::ZERO
            }
        );
        assert_eq!(
            Reversal::of(money(3_000), money(1_000)),
            Reversal {
                taken: money(1_000),
                owed: money(2_000)
            }
        );
        assert_eq!(
            Reversal::of(money(3_000), Money::ZERO),
            Reversal {
                taken: Money::ZERO,
                owed: money(3_000)
            }
        );
    }

    #[test]
    fn an_event_without_a_type_is_a_payment_and_unknown_types_are_refused() {
        let kind = |value: Value| EventKind::of(&object(value));
        assert_eq!(kind(json!({})), Ok(EventKind::Succeeded));
        assert_eq!(
            kind(json!({"type": "payment_succeeded"})),
            Ok(EventKind::Succeeded)
        );
        assert_eq!(
            kind(json!({"type": "payment_refunded"})),
            Ok(EventKind::Refunded)
        );
        assert!(kind(json!({"type": "refund"})).is_err());
        assert!(kind(json!({"type": 1})).is_err());
    }

    #[test]
    fn history_entries_leave_absent_references_out() {
        let entry = Entry {
            id: Uuid::from_u128(1),
            kind: EntryKind::Spend,
            amount: LedgerAmount::new(EntryKind::Spend, money(3_000)),
            event_id: None,
            order_id: None,
            promocode: None,
            payment_id: None,
            owed: None,
            reverses_event_id: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert_eq!(
            serde_json::to_value(&entry).unwrap(),
            json!({"id": "00000000-0000-0000-0000-000000000001", "kind": "spend",
                   "amount": -30.0, "created_at": "1970-01-01T00:00:00Z"})
        );
        for kind in [
            EntryKind::Accrual,
            EntryKind::Spend,
            EntryKind::Promocode,
            EntryKind::Payment,
            EntryKind::Reversal,
            EntryKind::Refund,
        ] {
            assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
        }
    }
}
