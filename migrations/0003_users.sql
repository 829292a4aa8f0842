-- user-service owns schema `users`. Applied once, inside a transaction, by the migration
-- runner, which records the version; no BEGIN/COMMIT here.
-- The component normalises and validates every field; these constraints are the last word.

CREATE SCHEMA IF NOT EXISTS users;

CREATE TABLE users.users (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored trimmed and lower-cased, so the unique constraint is case-blind and two
    -- concurrent registrations of one address cannot both succeed.
    email         text        NOT NULL UNIQUE
                  CHECK (email = lower(btrim(email)) AND char_length(email) BETWEEN 3 AND 254),
    -- bcrypt, `$2b$<cost>$...`: 60 characters. The password itself is never stored.
    password_hash text        NOT NULL CHECK (password_hash LIKE '$2_$%' AND char_length(password_hash) = 60),
    full_name     text        NOT NULL CHECK (char_length(full_name) BETWEEN 1 AND 200),
    -- E.164; staff accounts made from the command line may have none.
    phone_number  text        CHECK (phone_number ~ '^\+[1-9][0-9]{7,14}$'),
    role          text        NOT NULL DEFAULT 'customer' CHECK (role IN ('customer', 'staff')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
