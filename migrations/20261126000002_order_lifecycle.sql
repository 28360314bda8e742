-- The order lifecycle: a reservation is a hold with a payment window. Once persisted an order is
-- `pending_payment` (the new name of `persisted`), then exactly one of `paid`, `cancelled` (by
-- the buyer) or `expired` (the window passed); `rejected` stays as it was. Cancelled and expired
-- orders give their units back, to MySQL's stock in the same transaction and to Redis's just
-- after (`released_at` says it was done).

-- Seconds a buyer has to pay. NULL for items of sales pinned to a script version before v4:
-- their Redis state cannot take units back, so their orders never expire.
ALTER TABLE sale_items ADD COLUMN payment_window_secs INT UNSIGNED NULL AFTER per_user_limit;

UPDATE orders SET status = 'pending_payment' WHERE status = 'persisted';

ALTER TABLE orders
    -- When an unpaid order expires (reserved_at + the item's window); NULL: never.
    ADD COLUMN expires_at   DATETIME(3)     NULL AFTER persisted_at,
    -- When it was paid, by which payment (the provider's reference makes a repeated
    -- notification answer as the first did), for how much.
    ADD COLUMN paid_at      DATETIME(3)     NULL AFTER expires_at,
    ADD COLUMN payment_ref  VARCHAR(128)    NULL AFTER paid_at,
    ADD COLUMN paid_cents   BIGINT UNSIGNED NULL AFTER payment_ref,
    -- When it was cancelled or expired.
    ADD COLUMN closed_at    DATETIME(3)     NULL AFTER paid_cents,
    -- When Redis took its units back (cancelled and expired orders); NULL while that is owed.
    ADD COLUMN released_at  DATETIME(3)     NULL AFTER closed_at,
    -- The expiry job takes the due `pending_payment` orders, oldest first.
    ADD KEY idx_orders_status_expires (status, expires_at),
    -- A buyer's orders, newest first (order ids are time-ordered UUIDv7).
    ADD KEY idx_orders_user_order (user_id, order_id),
    -- The release sweeper finds closed orders whose units Redis has not taken back yet.
    ADD KEY idx_orders_status_released (status, released_at);

-- Lifecycle events for downstream systems (paid, cancelled, expired), written in the same
-- transaction as the change they announce and sent to Kafka by a relay: an outbox in MySQL.
CREATE TABLE order_events (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    order_id   BINARY(16)      NOT NULL,
    item_id    BIGINT UNSIGNED NOT NULL,
    kind       VARCHAR(16)     NOT NULL,
    payload    LONGTEXT        NOT NULL,
    created_at DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    sent_at    DATETIME(3)     NULL,
    PRIMARY KEY (id),
    -- The relay reads what is not sent yet, in order.
    KEY idx_order_events_unsent (sent_at, id)
) ENGINE = InnoDB;
