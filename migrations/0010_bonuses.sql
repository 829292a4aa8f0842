-- bonus-service owns schema `bonuses`: each user's balance, the ledger that explains it,
-- promocodes and who redeemed them. Users are known by the id in their token, with no
-- foreign key into users. Applied once, inside a transaction, by the migration runner;
-- no BEGIN/COMMIT here.

CREATE SCHEMA IF NOT EXISTS bonuses;

-- One row per user with bonuses, opened by their first credit. The CHECK is the last word
-- on "never below zero", whatever a statement does.
CREATE TABLE bonuses.accounts (
    user_id         uuid        PRIMARY KEY,
    balance_kopecks bigint      NOT NULL DEFAULT 0 CHECK (balance_kopecks >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Stored as bonus-service normalises them (trimmed, upper-case), so lookups compare equal.
CREATE TABLE bonuses.promocodes (
    code           text        PRIMARY KEY CHECK (char_length(code) BETWEEN 1 AND 64
                                                  AND code = upper(btrim(code))),
    amount_kopecks bigint      NOT NULL CHECK (amount_kopecks > 0),
    expires_at     timestamptz NOT NULL
);

-- Each code once per user: a second application, even a concurrent one, loses on the key.
CREATE TABLE bonuses.redemptions (
    code        text        NOT NULL REFERENCES bonuses.promocodes (code),
    user_id     uuid        NOT NULL,
    redeemed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, user_id)
);

-- Every change of a balance, written in the same transaction as the change. Amounts are
-- signed (credits positive, spends negative), so a user's entries sum to their balance.
CREATE TABLE bonuses.ledger (
    id             uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid        NOT NULL,
    kind           text        NOT NULL CHECK (kind IN ('accrual', 'spend', 'promocode')),
    amount_kopecks bigint      NOT NULL,
    -- The payment event an accrual came from: unique, so a redelivered event accrues once.
    event_id       uuid        UNIQUE,
    order_id       uuid,
    promocode      text        REFERENCES bonuses.promocodes (code),
    created_at     timestamptz NOT NULL DEFAULT now(),
    -- An accrual may be zero (a rate of 0, a payment of a few kopecks): the event is still
    -- recorded, so its redelivery is recognised.
    CONSTRAINT ledger_amount_sign_matches_kind CHECK (CASE kind
        WHEN 'accrual' THEN amount_kopecks >= 0
        WHEN 'spend' THEN amount_kopecks < 0
        ELSE amount_kopecks > 0
    END),
    CONSTRAINT ledger_event_only_on_accruals CHECK ((event_id IS NOT NULL) = (kind = 'accrual')),
    CONSTRAINT ledger_promocode_only_on_promocodes
        CHECK ((promocode IS NOT NULL) = (kind = 'promocode'))
);

-- The history: one user's entries, newest first, paged by (created_at, id).
CREATE INDEX ledger_user_history_idx ON bonuses.ledger (user_id, created_at DESC, id DESC);

INSERT INTO bonuses.promocodes (code, amount_kopecks, expires_at) VALUES
    ('WELCOME500',     50000, '2099-12-31 23:59:59+00'),
    ('DETAILING2026', 100000, '2099-12-31 23:59:59+00'),
    ('SUMMER2024',     30000, '2024-09-01 00:00:00+03');
