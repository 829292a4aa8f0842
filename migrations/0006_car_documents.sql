-- car-service: a car's papers (registration, insurance, inspection), with an optional scan.
-- Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.

CREATE TABLE cars.documents (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    car_id            uuid        NOT NULL REFERENCES cars.cars (id) ON DELETE CASCADE,
    kind              text        NOT NULL CHECK (kind IN ('registration', 'insurance', 'inspection')),
    number            text        NOT NULL CHECK (char_length(number) BETWEEN 1 AND 64),
    issued_at         date        NOT NULL,
    expires_at        date        CHECK (expires_at > issued_at),
    -- The scan: all three set, or none.
    file_name         text        CHECK (char_length(file_name) BETWEEN 1 AND 200),
    file_content_type text        CHECK (file_content_type IN ('application/pdf', 'image/jpeg', 'image/png')),
    file_bytes        bytea       CHECK (octet_length(file_bytes) BETWEEN 1 AND 2097152),
    created_at        timestamptz NOT NULL DEFAULT now(),
    CHECK ((file_name IS NULL) = (file_bytes IS NULL) AND (file_content_type IS NULL) = (file_bytes IS NULL))
);

CREATE INDEX documents_car_id_idx ON cars.documents (car_id, created_at);
