-- Bonuses pay part of an order: payment-service records how much of a payment bonuses pay,
-- and bonus-service debits them per payment (once, or given back when the payment does not
-- go through). Each service still writes only its own schema; the ordering that keeps the two
-- together is in payment-service's `pay` and docs/events.md#bonuses-paying-for-an-order.
-- Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.

-- payment-service: `amount_kopecks` stays the whole bill; bonuses pay `bonus_kopecks` of it
-- and the processor is charged the rest. Every payment stored so far was paid in money.
ALTER TABLE payments.payments
    ADD COLUMN bonus_kopecks bigint NOT NULL DEFAULT 0,
    ADD CONSTRAINT payments_bonus_within_amount
        CHECK (bonus_kopecks >= 0 AND bonus_kopecks <= amount_kopecks);

-- bonus-service: one row per payment that asked for bonuses, keyed by the payment's id, so a
-- repeated debit changes nothing. `reversed` is final: a reversal that arrives before its
-- debit leaves the row reversed with nothing taken, and the debit is then refused. `attempt`
-- is the payment's claim (microseconds since the epoch of payment-service's `claimed_at`):
-- an attempt that took the payment over owns its debit, and a reversal from an older attempt
-- is refused.
CREATE TABLE bonuses.payment_debits (
    payment_id     uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL,
    order_id       uuid        NOT NULL,
    amount_kopecks bigint      NOT NULL CHECK (amount_kopecks > 0),
    reversed       boolean     NOT NULL,
    attempt        bigint      NOT NULL CHECK (attempt >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- The ledger explains these too: `payment` (bonuses paying towards an order, negative) and
-- `reversal` (a payment's bonuses given back, positive), each naming its payment.
ALTER TABLE bonuses.ledger
    ADD COLUMN payment_id uuid,
    DROP CONSTRAINT ledger_kind_check,
    ADD CONSTRAINT ledger_kind_check
        CHECK (kind IN ('accrual', 'spend', 'promocode', 'payment', 'reversal')),
    DROP CONSTRAINT ledger_amount_sign_matches_kind,
    ADD CONSTRAINT ledger_amount_sign_matches_kind CHECK (CASE kind
        WHEN 'accrual' THEN amount_kopecks >= 0
        WHEN 'spend' THEN amount_kopecks < 0
        WHEN 'payment' THEN amount_kopecks < 0
        ELSE amount_kopecks > 0
    END),
    ADD CONSTRAINT ledger_payment_only_on_payment_entries
        CHECK ((payment_id IS NOT NULL) = (kind IN ('payment', 'reversal')));
-- A payment's bonuses are taken once and given back at most once.
CREATE UNIQUE INDEX ledger_payment_kind_key ON bonuses.ledger (payment_id, kind)
    WHERE payment_id IS NOT NULL;
