-- order-service: what an order books and what it costs, and the customer's review.
-- Applied once, inside a transaction, by the migration runner; no BEGIN/COMMIT here.
-- A line keeps the catalog entry's name and price as they were at booking time, so later
-- catalog changes never alter a booked order. catalog_id points into cart-service's schema:
-- no foreign key, order-service reads the catalog through cart-service's API.

ALTER TABLE orders.orders
    ADD COLUMN total_kopecks bigint NOT NULL DEFAULT 0 CHECK (total_kopecks >= 0);

CREATE TABLE orders.order_lines (
    order_id           uuid    NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
    line_no            integer NOT NULL CHECK (line_no >= 1),
    catalog_id         uuid    NOT NULL,
    name               text    NOT NULL,
    kind               text    NOT NULL CHECK (kind IN ('service', 'product')),
    unit_price_kopecks bigint  NOT NULL CHECK (unit_price_kopecks > 0),
    quantity           integer NOT NULL CHECK (quantity BETWEEN 1 AND 100),
    PRIMARY KEY (order_id, line_no),
    UNIQUE (order_id, catalog_id)
);

-- One review per order: the primary key makes "once" a constraint, not a check.
CREATE TABLE orders.reviews (
    order_id   uuid        PRIMARY KEY REFERENCES orders.orders (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL,
    rating     integer     NOT NULL CHECK (rating BETWEEN 1 AND 5),
    comment    text        NOT NULL DEFAULT '' CHECK (char_length(comment) <= 2000),
    created_at timestamptz NOT NULL DEFAULT now()
);
