-- order-service: the shop's bookable capacity (docs/api.md, "Booking"). The shop has bays
-- and weekly opening hours in its own time zone, set by staff. An order holds one bay from
-- its `desired_time` until `ends_at` (its services' durations, rounded up to the half hour),
-- and the database, not a read before the write, keeps two orders out of one bay at one time.
-- Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.

-- One row: the settings.
CREATE TABLE orders.shop (
    singleton  boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    bays       integer     NOT NULL CHECK (bays BETWEEN 1 AND 100),
    -- An IANA name PostgreSQL knows (pg_timezone_names), checked when staff set it.
    time_zone  text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

INSERT INTO orders.shop (bays, time_zone) VALUES (3, 'Europe/Moscow');

-- A weekday without a row is a day the shop is closed. Times are the shop's local time, on
-- the half hour; `closes` may be 24:00.
CREATE TABLE orders.opening_hours (
    weekday integer PRIMARY KEY CHECK (weekday BETWEEN 1 AND 7), -- ISO: 1 Monday .. 7 Sunday
    opens   time    NOT NULL,
    closes  time    NOT NULL,
    CHECK (opens < closes),
    CHECK (extract(second FROM opens) = 0 AND extract(minute FROM opens) IN (0, 30)),
    CHECK (extract(second FROM closes) = 0 AND extract(minute FROM closes) IN (0, 30))
);

INSERT INTO orders.opening_hours (weekday, opens, closes)
SELECT day, '09:00', '21:00' FROM generate_series(1, 7) AS day;

-- Orders booked before the shop had bays keep bay NULL: they stay valid orders but hold no
-- bay, and they take the one half hour every order without work takes.
ALTER TABLE orders.orders
    ADD COLUMN ends_at     timestamptz,
    ADD COLUMN bay         integer CHECK (bay >= 1),
    -- The staff member who does the work (a user id; set by staff on the board).
    ADD COLUMN assigned_to uuid,
    -- The car as car-service described it at booking, for the board (NULL before).
    ADD COLUMN car_plate   text,
    ADD COLUMN car_make    text,
    ADD COLUMN car_model   text;

UPDATE orders.orders SET ends_at = desired_time + interval '30 minutes';

ALTER TABLE orders.orders
    ALTER COLUMN ends_at SET NOT NULL,
    ADD CHECK (ends_at > desired_time),
    -- No two live orders in one bay at overlapping times. A bay is compared as a one-point
    -- range, so plain GiST range operators do (no btree_gist extension to install). A
    -- cancelled order frees its bay; a completed one keeps the time it was given. The time
    -- comes first: a shop has a few bays and many times, and GiST sorts on its first column,
    -- so "who holds any bay then" (every booking asks) is a narrow index scan.
    ADD CONSTRAINT orders_one_order_per_bay_at_a_time EXCLUDE USING gist (
        tstzrange(desired_time, ends_at) WITH &&,
        int4range(bay, bay, '[]') WITH &&
    ) WHERE (bay IS NOT NULL AND status <> 'cancelled');

-- The planner's guess for a table it has never analysed is about a thousand rows, and
-- autovacuum never analyses a table of one row or seven: without this, every booking's plan
-- looks expensive enough to be JIT-compiled (some 150 ms a statement, seen on PostgreSQL 15).
ANALYZE orders.shop;
ANALYZE orders.opening_hours;
