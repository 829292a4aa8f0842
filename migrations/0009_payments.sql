-- payment-service owns schema `payments`: payments, the transactional outbox the relay
-- drains into RabbitMQ, and the answers kept for Idempotency-Key retries.
-- Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.

CREATE SCHEMA IF NOT EXISTS payments;

CREATE TABLE payments.payments (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    order_id       uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    amount_kopecks bigint      NOT NULL CHECK (amount_kopecks > 0),
    method         text        NOT NULL CHECK (method IN ('card', 'cash')),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- An order is paid once: the second payment of an order loses on this index, whatever the
-- timing of the two requests.
CREATE UNIQUE INDEX payments_order_id_key ON payments.payments (order_id);
CREATE INDEX payments_user_id_idx ON payments.payments (user_id);

-- Written in the payment's transaction, so an event exists exactly when the payment does.
-- The relay publishes unsent rows to RabbitMQ and sets sent_at after the broker confirms.
CREATE TABLE payments.outbox (
    event_id       uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    payment_id     uuid        NOT NULL UNIQUE REFERENCES payments.payments (id),
    order_id       uuid        NOT NULL,
    user_id        uuid        NOT NULL,
    amount_kopecks bigint      NOT NULL CHECK (amount_kopecks > 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    sent_at        timestamptz
);

-- The relay's work list stays small however long the table grows.
CREATE INDEX outbox_unsent_idx ON payments.outbox (created_at) WHERE sent_at IS NULL;

-- The first answer to a POST with an Idempotency-Key, replayed to its retries. The row is
-- taken before charging, so a retry racing the first attempt waits for it instead of
-- charging again.
CREATE TABLE payments.idempotency_keys (
    user_id       uuid        NOT NULL,
    key           text        NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash  text        NOT NULL,
    status        integer,
    body          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
