-- Signed payment events: payment-service writes each outbox row with the exact JSON body of
-- its event and an HMAC-SHA256 of that body under the `event_signing_key` Spin variable, and
-- bonus-service accrues only events whose signature matches. The relay publishes `body` and
-- `signature` as they are, so it never needs the key. Applied once, inside a transaction, by
-- the migration runner; no BEGIN/COMMIT here.
--
-- Rows written before this migration have neither (the key is not known here). The relay
-- leaves such a row unsent and logs it, so it is neither lost nor accrued unchecked; it shows
-- in the outbox depth. An operator who holds the key can sign them in place with pgcrypto
-- (psql with `-v key=...`; the relay then publishes them as any other row):
--   CREATE EXTENSION IF NOT EXISTS pgcrypto;
--   UPDATE payments.outbox AS o
--      SET body = s.body,
--          signature = 'hmac-sha256=' || encode(hmac(s.body, :'key', 'sha256'), 'hex')
--     FROM (SELECT event_id, json_build_object('order_id', order_id, 'user_id', user_id,
--                  'amount', round(amount_kopecks / 100.0, 2), 'event_id', event_id)::text AS body
--             FROM payments.outbox WHERE body IS NULL) AS s
--    WHERE o.event_id = s.event_id;

ALTER TABLE payments.outbox
    ADD COLUMN body      text,
    ADD COLUMN signature text CHECK (signature ~ '^hmac-sha256=[0-9a-f]{64}$');

-- Body and signature come together; both are NULL only on rows from before this migration.
ALTER TABLE payments.outbox
    ADD CONSTRAINT outbox_body_signed CHECK ((body IS NULL) = (signature IS NULL));
