-- Staff manage the catalog through cart-service (docs/api.md): entries are added, renamed,
-- repriced and retired there instead of by migrations. A retired entry stays (carts and
-- booked orders name it) but is no longer sold: hidden from customers' catalog, refused in
-- carts and new orders. Booked orders keep the name and price their lines copied at booking.

ALTER TABLE cart.catalog
    ADD COLUMN active boolean NOT NULL DEFAULT true,
    -- What the API accepts: at most a day of bay time, at most Money's ceiling.
    ADD CHECK (duration_minutes <= 1440),
    ADD CHECK (price_kopecks <= 100000000000),
    ALTER COLUMN id SET DEFAULT gen_random_uuid();
