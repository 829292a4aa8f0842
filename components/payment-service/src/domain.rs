//! Payments as the business sees them: what may be paid (an order or a fine), how, the life
//! of a payment (claimed `pending`, then `succeeded` or `declined`), and what a retry with an
//! Idempotency-Key must get back. No spin-sdk here: `cargo test` runs these rules natively.

use api::json::Object;
use api::money::{Money, NonNegativeAmount, Share};
use api::{FieldError, FieldErrors};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// How the customer pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentMethod {
    Card,
    Cash,
}

impl PaymentMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Card => "card",
            Self::Cash => "cash",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "card" => Some(Self::Card),
            "cash" => Some(Self::Cash),
            _ => None,
        }
    }
}

/// `POST /api/payments`'s body: [`PaymentFields`] with exactly one of `order_id` and
/// `fine_id` (a `oneOf`). Documented and read as this type (see `api::body`).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct PaymentRequest(PaymentFields);

impl utoipa::PartialSchema for PaymentRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        let one = |given: &str, left_out: &str| {
            ObjectBuilder::new()
                .description(Some(format!("Pays an {}", given.trim_end_matches("_id"))))
                .property(
                    given,
                    ObjectBuilder::new().schema_type(Type::String).format(Some(
                        utoipa::openapi::SchemaFormat::KnownFormat(
                            utoipa::openapi::KnownFormat::Uuid,
                        ),
                    )),
                )
                .property(left_out, ObjectBuilder::new().schema_type(Type::Null))
                .required(given)
        };
        // A fine is paid in money only: its `bonus_amount`, if given, is zero.
        let no_bonus = OneOfBuilder::new()
            .description(Some("Fines are paid in money only: 0 or left out"))
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Number)
                    .minimum(Some(0))
                    .maximum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(r"^0(?:\.0{1,2})?$")),
            );
        api::body::all_of(
            <PaymentFields as utoipa::PartialSchema>::schema(),
            OneOfBuilder::new()
                .item(one("order_id", "fine_id"))
                .item(one("fine_id", "order_id").property("bonus_amount", no_bonus))
                .into(),
        )
    }
}

impl utoipa::ToSchema for PaymentRequest {
    fn name() -> std::borrow::Cow<'static, str> {
        "PaymentRequest".into()
    }

    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        <PaymentFields as utoipa::ToSchema>::schemas(schemas);
    }
}

/// The properties of a [`PaymentRequest`]. Unknown properties are ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "order_id": "550e8400-e29b-41d4-a716-446655440000",
    "payment_method": "card"
}))]
pub struct PaymentFields {
    /// One of the caller's orders (staff: any), not cancelled, booking something; its
    /// total is charged. Exactly one of `order_id` and `fine_id`.
    pub order_id: Option<Uuid>,
    /// A fine fines-service shows the caller (staff: any), unpaid; its amount is charged.
    /// Exactly one of `order_id` and `fine_id`.
    pub fine_id: Option<Uuid>,
    pub payment_method: PaymentMethod,
    // Orders only: bonuses of the order's owner that pay this much of the total, at most the
    // `max_bonus_share` of it and at most the balance; the method pays the rest. Absent or 0:
    // none. (`schema_with`: `inline` would add a null branch for the Option; no doc comment,
    // which would wrap the schema in an `allOf`.)
    #[schema(schema_with = <NonNegativeAmount as utoipa::PartialSchema>::schema)]
    pub bonus_amount: Option<NonNegativeAmount>,
}

/// What a payment pays: one order or one fine, never both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Order(Uuid),
    Fine(Uuid),
}

/// `POST /api/payments`: `{order_id | fine_id, payment_method, bonus_amount?}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewPayment {
    pub target: Target,
    pub method: PaymentMethod,
    /// Paid in bonuses; zero when none.
    pub bonus: Money,
}

impl NewPayment {
    pub fn parse(body: &Object) -> Result<Self, FieldErrors> {
        let PaymentRequest(request) = api::body::parse(body)?;
        let target = match (request.order_id, request.fine_id) {
            (Some(order), None) => Target::Order(order),
            (None, Some(fine)) => Target::Fine(fine),
            // The schema's oneOf admits exactly one of the two.
            _ => unreachable!("a checked payment names one order or one fine"),
        };
        // The schema's oneOf admits bonuses on an order only.
        let bonus = request.bonus_amount.map_or(Money::ZERO, |amount| amount.0);
        Ok(Self {
            target,
            method: request.payment_method,
            bonus,
        })
    }

    /// Whether `bonus` fits the bill: at most `share` of `total`, rounded down to the
    /// kopeck (422 naming the share and the cap otherwise). The balance is bonus-service's
    /// to check, when it takes them.
    pub fn check_bonus(&self, total: Money, share: Share) -> Result<(), FieldError> {
        let cap = share.at_most_of(total);
        if self.bonus <= cap {
            return Ok(());
        }
        Err(FieldError::new(
            "bonus_amount",
            format!(
                "must be at most {cap}: bonuses pay at most {share} of the total {total} \
                 (max_bonus_share)"
            ),
        ))
    }

    /// What makes two requests "the same" for an Idempotency-Key: a key reused with another
    /// order, fine, method or bonus amount is a client bug, not a retry. (An order's
    /// fingerprint without bonuses is the one keys stored before fines could be paid were
    /// made with.)
    pub fn fingerprint(&self) -> String {
        let what = match self.target {
            Target::Order(id) => id.to_string(),
            Target::Fine(id) => format!("fine:{id}"),
        };
        let bonus = if self.bonus > Money::ZERO {
            format!("|bonus:{}", self.bonus.kopecks())
        } else {
            String::new()
        };
        let digest = Sha256::digest(format!("{what}|{}{bonus}", self.method.as_str()));
        digest.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The request bodies this component reads, with their parsers (for the tests that hold the
/// API document and the parsers together).
pub fn request_bodies() -> Vec<api::body::Documented> {
    vec![api::body::Documented::new::<PaymentRequest, _>(
        NewPayment::parse,
    )]
}

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters (a UUID, typically).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let key = raw.trim();
        if (1..=255).contains(&key.len()) && key.bytes().all(|b| b.is_ascii_graphic()) {
            Ok(Self(key.to_owned()))
        } else {
            Err(FieldError::new(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters, e.g. a UUID",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What payment needs to know of an order, as order-service returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderToPay {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: String,
    pub total: Money,
}

/// A fine as fines-service shows it to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FineToPay {
    pub id: Uuid,
    pub amount: Money,
    pub paid: bool,
}

impl FineToPay {
    /// The amount to charge: the fine's, unless it is paid.
    pub fn amount(&self) -> Result<Money, Unpayable> {
        if self.paid {
            Err(Unpayable::FinePaid)
        } else {
            Ok(self.amount)
        }
    }
}

/// Why an order or a fine cannot be paid, before any money moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unpayable {
    Cancelled,
    NothingToPay,
    FinePaid,
}

impl OrderToPay {
    /// The amount to charge: the order's total, if the order may be paid at all.
    pub fn amount(&self) -> Result<Money, Unpayable> {
        if self.status == "cancelled" {
            Err(Unpayable::Cancelled)
        } else if self.total == Money::ZERO {
            Err(Unpayable::NothingToPay)
        } else {
            Ok(self.total)
        }
    }
}

/// Where a payment is in its life. A payment is claimed `pending` (and committed) before the
/// processor is asked, so a second payment of the same order or fine loses on the unique
/// index before it charges; the processor's verdict then makes it `succeeded` or `declined`.
/// A succeeded order payment may later be `refunded` (its order cancelled before work
/// started). Only `pending` and `succeeded` hold the order or fine: a declined or refunded
/// payment leaves it free, and stays listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Pending,
    Succeeded,
    Declined,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Declined => "declined",
            Self::Refunded => "refunded",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "declined" => Some(Self::Declined),
            "refunded" => Some(Self::Refunded),
            _ => None,
        }
    }

    /// `?status=pending,succeeded`: the statuses a list is limited to, or the bad value
    /// (the pattern the document gives `status`: names and commas, no spaces).
    pub fn parse_list(s: &str) -> Result<Vec<Self>, FieldError> {
        s.split(',')
            .map(|part| {
                Self::parse(part).ok_or_else(|| {
                    FieldError::new(
                        "status",
                        "must be pending, succeeded, declined or refunded, comma-separated",
                    )
                })
            })
            .collect()
    }
}

/// How long a `pending` claim is its attempt's alone. An attempt that dies between claiming
/// and recording the processor's verdict (the instance killed, the database gone) leaves its
/// claim `pending`; once the claim is older than this, the next payment of the same order or
/// fine takes it over, keeping its id, and charges again. The processor is idempotent per
/// payment id (a charge repeated with the id it was first made with is not made twice), so a
/// charge the dead attempt made is not repeated. Longer than an attempt can live: the
/// processor's delay is at most 30 s, and so is a request's deadline in the host.
pub const PENDING_LEASE_SECONDS: i64 = 60;

/// How often a request that found its Idempotency-Key taken by a running attempt looks for
/// that attempt's answer.
pub const KEY_POLL_MS: u64 = 25;

/// The simulated card processor: a delay, and a switch to decline every charge (for
/// testing the decline path). Real processors plug in here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processor {
    pub delay_ms: u64,
    pub decline: bool,
}

impl Processor {
    pub const MAX_DELAY_MS: u64 = 30_000;

    pub fn parse(delay_ms: &str, decline: &str) -> Option<Self> {
        let delay_ms = delay_ms
            .trim()
            .parse()
            .ok()
            .filter(|ms| *ms <= Self::MAX_DELAY_MS)?;
        let decline = match decline.trim() {
            "true" => true,
            "false" => false,
            _ => return None,
        };
        Some(Self { delay_ms, decline })
    }
}

/// How a payment's event leaves payment-service (`payment_events_transport`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// The transactional outbox, drained by the relay into RabbitMQ: at least once.
    RabbitMq,
    /// Published to a Redis channel after the commit, for `[[trigger.redis]]`: at most once.
    Redis { url: String, channel: String },
}

impl Transport {
    pub fn parse(name: &str, redis_url: &str, channel: &str) -> Option<Self> {
        match name.trim() {
            "rabbitmq" => Some(Self::RabbitMq),
            "redis" if !channel.trim().is_empty() => Some(Self::Redis {
                url: redis_url.trim().to_owned(),
                channel: channel.trim().to_owned(),
            }),
            _ => None,
        }
    }
}

/// A payment_succeeded event: the reference design's `{order_id, user_id, amount}` plus
/// `event_id`.
/// Its JSON is the body that gets signed; both transports carry it inside the same envelope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentEvent {
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
    pub event_id: Uuid,
}

/// A payment_refunded event: an order's succeeded payment was refunded, so the accrual its
/// `payment_succeeded` event (`reverses_event_id`) earned is to be reversed. `type` tells
/// bonus-service the two kinds apart (an event without one is a payment_succeeded event).
/// `amount` is the money part given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefundEvent {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub event_id: Uuid,
    pub reverses_event_id: Uuid,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
}

impl RefundEvent {
    pub const KIND: &'static str = "payment_refunded";
}

/// What every event that leaves names, for the log of one that could not be published.
pub trait Event: Serialize {
    fn event_id(&self) -> Uuid;
    fn order_id(&self) -> Uuid;
}

impl Event for PaymentEvent {
    fn event_id(&self) -> Uuid {
        self.event_id
    }
    fn order_id(&self) -> Uuid {
        self.order_id
    }
}

impl Event for RefundEvent {
    fn event_id(&self) -> Uuid {
        self.event_id
    }
    fn order_id(&self) -> Uuid {
        self.order_id
    }
}

/// An event as it leaves: its body, byte for byte as signed, and the signature. The outbox
/// stores both, so the relay publishes exactly what was signed and never needs the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedEvent<E = PaymentEvent> {
    pub event: E,
    pub body: String,
    pub signature: String,
}

impl<E: Event> SignedEvent<E> {
    pub fn sign(event: E, key: &events::SigningKey) -> Self {
        let body = serde_json::to_string(&event).expect("events serialize");
        let signature = key.sign(&body);
        Self {
            event,
            body,
            signature,
        }
    }

    /// The message for the wire (`{"event": "<body>", "signature": "..."}`).
    pub fn envelope(&self) -> Vec<u8> {
        events::envelope(&self.body, &self.signature)
    }
}

/// A payment, as stored and as the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Payment {
    pub id: Uuid,
    /// The order paid, or `null` for a fine's payment.
    pub order_id: Option<Uuid>,
    /// The fine paid, or `null` for an order's payment.
    pub fine_id: Option<Uuid>,
    /// The order's owner, also when staff took the payment; for a fine, whoever paid it.
    pub user_id: Uuid,
    /// The whole bill: the order's total or the fine's amount.
    pub amount: Money,
    /// How much of `amount` bonuses pay (0 when none); `payment_method` pays the rest, and
    /// bonuses accrue on that rest only.
    pub bonus_amount: Money,
    pub payment_method: PaymentMethod,
    /// `pending` while the processor works (or an attempt died mid-way), then `succeeded`
    /// or `declined`. `POST /api/payments` answers 201 only with `succeeded`.
    #[schema(example = "succeeded")]
    pub status: PaymentStatus,
    pub created_at: DateTime<Utc>,
}

/// A payment's refund, as stored and as `POST /api/payments/{payment_id}/refund` answers it
/// (the same refund however often it is asked for).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Refund {
    pub payment_id: Uuid,
    pub order_id: Uuid,
    /// The order's owner.
    pub user_id: Uuid,
    /// The money given back through the processor: the part the payment charged.
    pub amount: Money,
    /// The bonuses the payment took, given back at bonus-service.
    pub bonus_amount: Money,
    /// Whether bonus-service confirmed the bonuses back (always true when there were none).
    /// False only after an error answer; asking for the refund again finishes it.
    pub bonuses_returned: bool,
    pub created_at: DateTime<Utc>,
}

impl Payment {
    /// What the processor is charged: the amount less the bonuses.
    pub fn charged(&self) -> Money {
        Money::from_kopecks(self.amount.kopecks() - self.bonus_amount.kopecks())
            .expect("bonuses never pay more than the amount")
    }
}

/// What payment-service asks bonus-service to do with a payment's bonuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BonusAction {
    Debit,
    Reverse,
}

/// A signed command for bonus-service's `POST /api/bonuses/payment-debits`, about one
/// claimed payment: its id keys the debit, `attempt` (the claim's time in microseconds) lets
/// an attempt that took the payment over own the debit from then on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BonusCommand {
    pub action: BonusAction,
    pub payment_id: Uuid,
    pub order_id: Uuid,
    pub user_id: Uuid,
    pub amount: Money,
    pub attempt: i64,
}

impl BonusCommand {
    /// The envelope to send: the command's JSON and its signature under the events' key.
    pub fn sealed(&self, key: &events::SigningKey) -> Vec<u8> {
        let body = serde_json::to_string(self).expect("commands serialize");
        let signature = key.sign(&body);
        events::envelope(&body, &signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn object(value: Value) -> Object {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn the_example_body_parses_and_other_methods_are_422() {
        let body = object(
            json!({"order_id":"550e8400-e29b-41d4-a716-446655440000","payment_method":"card"}),
        );
        assert_eq!(
            NewPayment::parse(&body).unwrap().method,
            PaymentMethod::Card
        );
        for method in [json!("bitcoin"), json!("CARD"), json!(1), Value::Null] {
            let body = object(
                json!({"order_id":"550e8400-e29b-41d4-a716-446655440000","payment_method":method}),
            );
            let errors = NewPayment::parse(&body).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "payment_method", "{method}");
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
    fn fingerprints_tell_requests_apart() {
        let id = Uuid::from_u128(1);
        let card = NewPayment {
            target: Target::Order(id),
            method: PaymentMethod::Card,
            bonus: Money::ZERO,
        };
        let cash = NewPayment {
            method: PaymentMethod::Cash,
            ..card
        };
        let fine = NewPayment {
            target: Target::Fine(id),
            ..card
        };
        assert_eq!(card.fingerprint(), card.fingerprint());
        assert_ne!(card.fingerprint(), cash.fingerprint());
        assert_ne!(card.fingerprint(), fine.fingerprint());
        assert_eq!(card.fingerprint().len(), 64);
        // Keys stored before fines could be paid keep matching their retries.
        let digest = Sha256::digest(format!("{id}|card"));
        let before: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(card.fingerprint(), before);
        let with_bonus = NewPayment {
            bonus: Money::from_kopecks(1).unwrap(),
            ..card
        };
        assert_ne!(card.fingerprint(), with_bonus.fingerprint());
    }

    #[test]
    fn bonuses_pay_orders_up_to_the_share_of_the_total() {
        let id = "550e8400-e29b-41d4-a716-446655440000";
        let parse = |body: Value| NewPayment::parse(&object(body));
        let paid =
            parse(json!({"order_id": id, "payment_method": "card", "bonus_amount": "900.50"}))
                .unwrap();
        assert_eq!(paid.bonus.kopecks(), 90_050);
        assert_eq!(
            parse(json!({"order_id": id, "payment_method": "card", "bonus_amount": 0}))
                .unwrap()
                .bonus,
            Money::ZERO
        );
        for bad in [
            json!(-1),
            json!(0.001),
            json!("12.345"),
            json!("abc"),
            Value::Null,
        ] {
            let body = json!({"order_id": id, "payment_method": "card", "bonus_amount": bad});
            let errors = parse(body.clone()).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "bonus_amount", "{body}");
        }
        for bonus in [json!(1), json!("0.01")] {
            let body = json!({"fine_id": id, "payment_method": "cash", "bonus_amount": bonus});
            let errors = parse(body.clone()).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, "bonus_amount", "{body}");
        }
        for bonus in [json!(0), json!("0.00"), json!(0.0)] {
            let body = json!({"fine_id": id, "payment_method": "cash", "bonus_amount": bonus});
            assert_eq!(parse(body.clone()).unwrap().bonus, Money::ZERO, "{body}");
        }

        let share = Share::parse("0.3").unwrap();
        let total = Money::from_kopecks(300_000).unwrap();
        let with = |kopecks| NewPayment {
            bonus: Money::from_kopecks(kopecks).unwrap(),
            ..paid
        };
        assert!(with(90_000).check_bonus(total, share).is_ok());
        let over = with(90_001).check_bonus(total, share).unwrap_err();
        assert_eq!(over.field, "bonus_amount");
        assert_eq!(
            over.message,
            "must be at most 900.00: bonuses pay at most 30 % of the total 3000.00 \
             (max_bonus_share)"
        );
        assert!(with(1)
            .check_bonus(total, Share::parse("0").unwrap())
            .is_err());
    }

    #[test]
    fn the_processor_charges_what_bonuses_leave_and_commands_are_signed() {
        let payment = Payment {
            id: Uuid::from_u128(1),
            order_id: Some(Uuid::from_u128(2)),
            fine_id: None,
            user_id: Uuid::from_u128(3),
            amount: Money::from_kopecks(300_000).unwrap(),
            bonus_amount: Money::from_kopecks(90_000).unwrap(),
            payment_method: PaymentMethod::Card,
            status: PaymentStatus::Pending,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        assert_eq!(payment.charged().kopecks(), 210_000);
        assert_eq!(
            serde_json::to_value(&payment).unwrap()["bonus_amount"],
            900.0
        );
        let command = BonusCommand {
            action: BonusAction::Reverse,
            payment_id: payment.id,
            order_id: Uuid::from_u128(2),
            user_id: payment.user_id,
            amount: payment.bonus_amount,
            attempt: 1,
        };
        let key = events::SigningKey::new(&[7; 32]).unwrap();
        let body = key.open(&command.sealed(&key)).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap(),
            json!({"action": "reverse", "payment_id": Uuid::from_u128(1),
                   "order_id": Uuid::from_u128(2), "user_id": Uuid::from_u128(3),
                   "amount": 900.0, "attempt": 1})
        );
    }

    #[test]
    fn a_payment_pays_exactly_one_order_or_fine() {
        let id = "550e8400-e29b-41d4-a716-446655440000";
        let parse = |body: Value| NewPayment::parse(&object(body));
        assert_eq!(
            parse(json!({"fine_id": id, "payment_method": "cash"})).unwrap(),
            NewPayment {
                target: Target::Fine(id.parse().unwrap()),
                method: PaymentMethod::Cash,
                bonus: Money::ZERO
            }
        );
        assert_eq!(
            parse(json!({"order_id": id, "fine_id": null, "payment_method": "card"}))
                .unwrap()
                .target,
            Target::Order(id.parse().unwrap())
        );
        for (body, field) in [
            (json!({"payment_method": "card"}), "order_id"),
            (
                json!({"order_id": id, "fine_id": id, "payment_method": "card"}),
                "fine_id",
            ),
            (
                json!({"fine_id": "nope", "payment_method": "card"}),
                "fine_id",
            ),
            (json!({"fine_id": 7, "payment_method": "card"}), "fine_id"),
        ] {
            let errors = parse(body.clone()).unwrap_err();
            assert_eq!(errors.as_slice()[0].field, field, "{body}");
        }
        // Every invalid field is reported, not just the first.
        let errors = parse(json!({"fine_id": "nope", "payment_method": "x"})).unwrap_err();
        assert_eq!(errors.len(), 2);
    }

    #[test]
    fn fines_are_paid_once_and_statuses_filter_lists() {
        let fine = |paid| FineToPay {
            id: Uuid::nil(),
            amount: Money::from_kopecks(75_000).unwrap(),
            paid,
        };
        assert_eq!(fine(false).amount().map(Money::kopecks), Ok(75_000));
        assert_eq!(fine(true).amount(), Err(Unpayable::FinePaid));
        assert_eq!(
            PaymentStatus::parse_list("pending,succeeded"),
            Ok(vec![PaymentStatus::Pending, PaymentStatus::Succeeded])
        );
        for bad in ["", "paid", "pending,,declined", "pending, succeeded"] {
            assert!(PaymentStatus::parse_list(bad).is_err(), "{bad}");
        }
        assert_eq!(
            serde_json::to_value(PaymentStatus::Declined).unwrap(),
            json!("declined")
        );
    }

    #[test]
    fn idempotency_keys_are_visible_ascii() {
        assert!(IdempotencyKey::parse("3f1c6e2a-0b6d-4a59-9d5c-1e7f0a2b3c4d").is_ok());
        for bad in ["", " ", "has space", "ключ", &"k".repeat(256)] {
            assert!(IdempotencyKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_live_orders_with_a_total_can_be_paid() {
        let order = |status: &str, kopecks| OrderToPay {
            id: Uuid::nil(),
            user_id: Uuid::nil(),
            status: status.into(),
            total: Money::from_kopecks(kopecks).unwrap(),
        };
        assert_eq!(
            order("created", 150_000).amount(),
            Ok(Money::from_kopecks(150_000).unwrap())
        );
        assert_eq!(order("completed", 1).amount().map(Money::kopecks), Ok(1));
        assert_eq!(
            order("cancelled", 150_000).amount(),
            Err(Unpayable::Cancelled)
        );
        assert_eq!(order("created", 0).amount(), Err(Unpayable::NothingToPay));
    }

    #[test]
    fn transports_are_rabbitmq_or_redis_with_a_channel() {
        assert_eq!(
            Transport::parse("rabbitmq", "", ""),
            Some(Transport::RabbitMq)
        );
        assert_eq!(
            Transport::parse(" redis ", "redis://127.0.0.1:6379", "payment_events"),
            Some(Transport::Redis {
                url: "redis://127.0.0.1:6379".into(),
                channel: "payment_events".into()
            })
        );
        assert_eq!(Transport::parse("redis", "redis://x", " "), None);
        assert_eq!(Transport::parse("kafka", "", "c"), None);
    }

    #[test]
    fn an_event_is_signed_over_its_exact_body_and_sealed_for_the_wire() {
        let event = PaymentEvent {
            order_id: Uuid::from_u128(2),
            user_id: Uuid::from_u128(3),
            amount: Money::from_kopecks(149_999).unwrap(),
            event_id: Uuid::from_u128(1),
        };
        let key = events::SigningKey::new(&[7; 32]).unwrap();
        let signed = SignedEvent::sign(event.clone(), &key);
        assert_eq!(
            serde_json::from_str::<Value>(&signed.body).unwrap(),
            json!({"order_id": Uuid::from_u128(2), "user_id": Uuid::from_u128(3),
                   "amount": 1499.99, "event_id": Uuid::from_u128(1)})
        );
        assert!(
            signed.body.contains("\"amount\":1499.99"),
            "{}",
            signed.body
        );
        assert_eq!(signed.signature, key.sign(&signed.body));
        assert_eq!(key.open(&signed.envelope()).unwrap(), signed.body);
    }

    #[test]
    fn processor_settings_are_bounded() {
        assert_eq!(
            Processor::parse("0", "false"),
            Some(Processor {
                delay_ms: 0,
                decline: false
            })
        );
        assert_eq!(Processor::parse("5000", "true").unwrap().delay_ms, 5000);
        assert_eq!(Processor::parse("30001", "false"), None);
        assert_eq!(Processor::parse("-1", "false"), None);
        assert_eq!(Processor::parse("0", "yes"), None);
    }
}
