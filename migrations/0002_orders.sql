-- order-service owns schema `orders`. Applied once, inside a transaction, by the
-- migration runner, which records the version; no BEGIN/COMMIT here.
-- car_id and user_id point into other services' schemas, so there are no foreign keys:
-- order-service checks the car through car-service's API, never its tables.

CREATE SCHEMA IF NOT EXISTS orders;

CREATE TABLE orders.orders (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    car_id       uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    desired_time timestamptz NOT NULL,
    description  text        NOT NULL DEFAULT '' CHECK (char_length(description) <= 2000),
    -- The states of OrderStatus; which moves are legal is the component's state machine.
    status       text        NOT NULL DEFAULT 'created'
                 CHECK (status IN ('created', 'confirmed', 'in_progress', 'completed', 'cancelled')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- Set by the statement that changes the status; there is no trigger.
    updated_at   timestamptz NOT NULL DEFAULT now()
);

-- "My orders".
CREATE INDEX orders_user_id_idx ON orders.orders (user_id);
