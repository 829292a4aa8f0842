-- Refunds: cancelling a paid order before work starts gives its payment back. payment-service
-- records the refund, marks the payment `refunded` and writes a signed `payment_refunded`
-- event on the same outbox; bonus-service reverses the accrual the payment earned, taking at
-- most what the balance holds and recording the rest as owed. Each service still writes only
-- its own schema (docs/events.md#refunds).
-- Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.

-- payment-service: a refunded payment no longer holds its order (the live indexes cover
-- pending and succeeded only), so it stays listed like a declined one.
ALTER TABLE payments.payments
    DROP CONSTRAINT payments_status_check,
    ADD CONSTRAINT payments_status_check
        CHECK (status IN ('pending', 'succeeded', 'declined', 'refunded'));

-- One refund per payment: the primary key makes a second refund of it, even a concurrent
-- one, find the first. `amount_kopecks` is what the processor gave back (the money part),
-- `bonus_kopecks` the bonuses the payment took, given back at bonus-service;
-- `bonuses_returned` is set once bonus-service confirmed that.
CREATE TABLE payments.refunds (
    payment_id       uuid        PRIMARY KEY REFERENCES payments.payments (id),
    order_id         uuid        NOT NULL,
    user_id          uuid        NOT NULL,
    amount_kopecks   bigint      NOT NULL CHECK (amount_kopecks >= 0),
    bonus_kopecks    bigint      NOT NULL CHECK (bonus_kopecks >= 0),
    bonuses_returned boolean     NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);

-- The outbox now carries two kinds of event per payment: the payment's, and its refund's.
-- Every row so far is a payment's, and so is a row written without a kind.
ALTER TABLE payments.outbox
    ADD COLUMN kind text NOT NULL DEFAULT 'payment_succeeded'
        CHECK (kind IN ('payment_succeeded', 'payment_refunded')),
    DROP CONSTRAINT outbox_payment_id_key;
CREATE UNIQUE INDEX outbox_payment_kind_key ON payments.outbox (payment_id, kind);

-- bonus-service: what a refund could not take back because it had been spent. Never below
-- zero, like the balance; shown with it.
ALTER TABLE bonuses.accounts
    ADD COLUMN owed_kopecks bigint NOT NULL DEFAULT 0 CHECK (owed_kopecks >= 0);

-- A `refund` entry reverses the accrual of a refunded payment, once per refund event
-- (`event_id`, unique like an accrual's): `amount_kopecks` is what was taken back (0 or
-- negative), `owed_kopecks` what could not be. It names its payment, and
-- `reverses_event_id` the accrual's event.
ALTER TABLE bonuses.ledger
    ADD COLUMN owed_kopecks bigint NOT NULL DEFAULT 0 CHECK (owed_kopecks >= 0),
    ADD COLUMN reverses_event_id uuid,
    DROP CONSTRAINT ledger_kind_check,
    ADD CONSTRAINT ledger_kind_check
        CHECK (kind IN ('accrual', 'spend', 'promocode', 'payment', 'reversal', 'refund')),
    DROP CONSTRAINT ledger_amount_sign_matches_kind,
    ADD CONSTRAINT ledger_amount_sign_matches_kind CHECK (CASE kind
        WHEN 'accrual' THEN amount_kopecks >= 0
        WHEN 'spend' THEN amount_kopecks < 0
        WHEN 'payment' THEN amount_kopecks < 0
        WHEN 'refund' THEN amount_kopecks <= 0
        ELSE amount_kopecks > 0
    END),
    DROP CONSTRAINT ledger_payment_only_on_payment_entries,
    ADD CONSTRAINT ledger_payment_only_on_payment_entries
        CHECK ((payment_id IS NOT NULL) = (kind IN ('payment', 'reversal', 'refund'))),
    DROP CONSTRAINT ledger_event_only_on_accruals,
    ADD CONSTRAINT ledger_event_only_on_accruals_and_refunds
        CHECK ((event_id IS NOT NULL) = (kind IN ('accrual', 'refund'))),
    ADD CONSTRAINT ledger_owed_only_on_refunds CHECK (owed_kopecks = 0 OR kind = 'refund'),
    ADD CONSTRAINT ledger_reverses_only_on_refunds
        CHECK ((reverses_event_id IS NOT NULL) = (kind = 'refund'));
-- An accrual is reversed at most once, whichever refund event claims it.
CREATE UNIQUE INDEX ledger_reverses_event_key ON bonuses.ledger (reverses_event_id)
    WHERE reverses_event_id IS NOT NULL;
