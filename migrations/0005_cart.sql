-- cart-service owns schema `cart`: the catalog of what the shop sells, and each customer's
-- cart. Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.
-- Prices are kopecks. order-service copies the price into an order line at booking time,
-- so changing a price here never changes a booked order.

CREATE SCHEMA IF NOT EXISTS cart;

CREATE TABLE cart.catalog (
    id               uuid    PRIMARY KEY,
    name             text    NOT NULL UNIQUE CHECK (char_length(name) BETWEEN 1 AND 200),
    kind             text    NOT NULL CHECK (kind IN ('service', 'product')),
    price_kopecks    bigint  NOT NULL CHECK (price_kopecks > 0),
    -- How long the bay is busy; goods take no time.
    duration_minutes integer CHECK (duration_minutes > 0),
    CHECK ((kind = 'service') = (duration_minutes IS NOT NULL))
);

-- Fixed ids, so a catalog entry keeps its id across databases and restarts.
INSERT INTO cart.catalog (id, name, kind, price_kopecks, duration_minutes) VALUES
    ('6b1f2c1e-0001-4000-8000-000000000001', 'Exterior hand wash',              'service',   150000,  45),
    ('6b1f2c1e-0001-4000-8000-000000000002', 'Interior dry cleaning',           'service',   600000, 180),
    ('6b1f2c1e-0001-4000-8000-000000000003', 'Body polishing',                  'service',  1200000, 240),
    ('6b1f2c1e-0001-4000-8000-000000000004', 'Ceramic coating',                 'service',  3500000, 480),
    ('6b1f2c1e-0001-4000-8000-000000000005', 'Engine bay cleaning',             'service',   250000,  60),
    ('6b1f2c1e-0001-4000-8000-000000000006', 'Headlight restoration',           'service',   300000,  90),
    ('6b1f2c1e-0001-4000-8000-000000000007', 'Seasonal tyre change',            'service',   280000,  60),
    ('6b1f2c1e-0001-4000-8000-000000000008', 'Scheduled maintenance (ТО)',      'service',   900000, 120),
    ('6b1f2c1e-0002-4000-8000-000000000001', 'Car shampoo, 1 l',                'product',    69000, NULL),
    ('6b1f2c1e-0002-4000-8000-000000000002', 'Hard wax, 200 g',                 'product',   149000, NULL),
    ('6b1f2c1e-0002-4000-8000-000000000003', 'Microfibre towels, set of 3',     'product',    45000, NULL),
    ('6b1f2c1e-0002-4000-8000-000000000004', 'Air freshener',                   'product',    25000, NULL);

CREATE TABLE cart.items (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL,
    catalog_id  uuid        NOT NULL REFERENCES cart.catalog (id),
    quantity    integer     NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    added_at    timestamptz NOT NULL DEFAULT now(),
    -- One line per catalog entry: adding it again raises the quantity.
    UNIQUE (user_id, catalog_id)
);
