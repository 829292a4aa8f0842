-- payment-service claims a payment before it charges: the row is written `pending` and
-- committed first, then becomes `succeeded` or `declined` with the processor's verdict.
-- Fines are paid here too: a payment pays exactly one order or exactly one fine.
-- Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.

-- Every payment stored so far was charged and recorded in one statement: `succeeded`.
ALTER TABLE payments.payments
    ADD COLUMN status text NOT NULL DEFAULT 'succeeded'
        CHECK (status IN ('pending', 'succeeded', 'declined')),
    -- When the attempt now charging took the payment; a `pending` claim older than
    -- payment-service's lease is taken over by the next attempt, keeping the payment's id.
    ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN fine_id uuid,
    ALTER COLUMN order_id DROP NOT NULL,
    ADD CONSTRAINT payments_pay_one_order_or_one_fine
        CHECK ((order_id IS NULL) <> (fine_id IS NULL));
ALTER TABLE payments.payments ALTER COLUMN status DROP DEFAULT;

-- An order (a fine) is paid once: of its payments, one at most is pending or succeeded, so
-- a second payment racing the first loses on the index before it charges, while declined
-- payments stay on record without keeping the order from being paid later.
DROP INDEX payments.payments_order_id_key;
CREATE UNIQUE INDEX payments_live_order_key ON payments.payments (order_id)
    WHERE status IN ('pending', 'succeeded');
CREATE UNIQUE INDEX payments_live_fine_key ON payments.payments (fine_id)
    WHERE status IN ('pending', 'succeeded');
-- "This order's (fine's) payments", declined ones too.
CREATE INDEX payments_order_id_idx ON payments.payments (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX payments_fine_id_idx ON payments.payments (fine_id) WHERE fine_id IS NOT NULL;

-- A key is now taken in its own committed transaction before the charge (status NULL while
-- its request runs); a request that died holding it leaves it unanswered, and after the
-- same lease a retry with the key takes it over.
ALTER TABLE payments.idempotency_keys
    ADD COLUMN claimed_at timestamptz NOT NULL DEFAULT now();
