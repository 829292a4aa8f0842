-- fines-service owns schema `fines`: traffic fines on licence plates, and who paid them.
-- Applied once, inside a transaction, by the migration runner, which records the version;
-- no BEGIN/COMMIT here. Plates are not keys into car-service's tables: a fine is issued to
-- a plate whether or not anyone has registered that car with us.

CREATE SCHEMA IF NOT EXISTS fines;

CREATE TABLE fines.fines (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Stored as car-service stores plates (trimmed, upper-case), so they compare equal.
    license_plate text        NOT NULL CHECK (char_length(license_plate) BETWEEN 1 AND 12
                                              AND license_plate = upper(btrim(license_plate))),
    -- Kopecks; the upper bound is api::money::Money::MAX_KOPECKS.
    amount        bigint      NOT NULL CHECK (amount > 0 AND amount <= 100000000000),
    reason        text        NOT NULL CHECK (char_length(reason) BETWEEN 1 AND 500),
    issued_at     timestamptz NOT NULL DEFAULT now(),
    -- Set together, once, by the payment's guarded UPDATE.
    paid_at       timestamptz,
    paid_by       uuid,
    CHECK ((paid_at IS NULL) = (paid_by IS NULL))
);

-- "Unpaid fines on these plates, newest first": the only lookup by plate.
CREATE INDEX fines_unpaid_by_plate_idx ON fines.fines (license_plate, issued_at DESC)
    WHERE paid_at IS NULL;

-- Demonstration data, as the seed's in-memory service had: the README's example car
-- А123БВ799 (Cyrillic letters) and three other plates, Moscow times.
INSERT INTO fines.fines (license_plate, amount, reason, issued_at) VALUES
    ('А123БВ799',  75000, 'Превышение установленной скорости на 20–40 км/ч', '2025-09-12 08:41:00+03'),
    ('А123БВ799', 300000, 'Остановка или стоянка в запрещённом месте',        '2025-10-03 14:05:00+03'),
    ('А123БВ799', 500000, 'Неоплата городской парковки',                      '2025-11-18 19:22:00+03'),
    ('А123БВ799', 100000, 'Проезд на запрещающий сигнал светофора',           '2025-12-02 07:58:00+03'),
    ('О777ОО77',  150000, 'Превышение установленной скорости на 40–60 км/ч', '2025-08-21 23:10:00+03'),
    ('О777ОО77',  300000, 'Стоянка на тротуаре',                              '2025-11-05 10:30:00+03'),
    ('К456МН178', 300000, 'Неоплата городской парковки',                      '2025-10-14 16:45:00+03'),
    ('Е001КХ750',  75000, 'Превышение установленной скорости на 20–40 км/ч', '2025-12-20 12:00:00+03');
