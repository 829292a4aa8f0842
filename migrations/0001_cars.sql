-- car-service owns schema `cars`. Applied once, inside a transaction, by the migration
-- runner (`detailing migrate`), which records the version; no BEGIN/COMMIT here.
-- The component validates every field first; these constraints are the last word, so a
-- bug or another writer cannot store what the API would refuse.

CREATE SCHEMA IF NOT EXISTS cars;

CREATE TABLE cars.cars (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id      uuid        NOT NULL,
    license_plate text        NOT NULL CHECK (char_length(license_plate) BETWEEN 1 AND 12),
    -- Upper-case, 17 characters, no I, O or Q: uniqueness is therefore case-blind.
    vin           text        NOT NULL UNIQUE CHECK (vin ~ '^[A-HJ-NPR-Z0-9]{17}$'),
    make          text        NOT NULL CHECK (char_length(make) BETWEEN 1 AND 64),
    model         text        NOT NULL CHECK (char_length(model) BETWEEN 1 AND 64),
    -- The upper bound (next year) moves with the clock, so the component checks it;
    -- a CHECK must not depend on now().
    year          integer     NOT NULL CHECK (year >= 1886),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- "My cars", and fines looked up by the plates of a user's cars.
CREATE INDEX cars_owner_id_idx ON cars.cars (owner_id);
