-- Orders: one row per reservation that reached MySQL through Kafka.

CREATE TABLE orders (
    -- UUIDv7 as 16 bytes. The primary key is what makes redelivery harmless: a redelivered
    -- order id is skipped. v7 ids are time-ordered, so inserts append to the clustered index.
    order_id      BINARY(16)      NOT NULL,
    sale_id       BIGINT UNSIGNED NOT NULL,
    item_id       BIGINT UNSIGNED NOT NULL,
    user_id       VARCHAR(128)    NOT NULL,
    quantity      INT UNSIGNED    NOT NULL,
    price_cents   BIGINT UNSIGNED NOT NULL,
    -- 'persisted' (counted against stock) or 'rejected' (MySQL could not honour it: stock or
    -- per-user limit would break, only possible if Redis lost data). Rejected rows are kept,
    -- never dropped, so reconciliation can show them.
    status        VARCHAR(16)     NOT NULL,
    reject_reason VARCHAR(64)     NULL,
    reserved_at   DATETIME(3)     NOT NULL,
    persisted_at  DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (order_id),
    -- The consumer sums a user's persisted units under the item lock; reconciliation checks
    -- per-user totals per item.
    KEY idx_orders_item_user (item_id, user_id, status),
    -- Reconciliation and the admin view sum units per sale item.
    KEY idx_orders_sale_item (sale_id, item_id, status)
) ENGINE = InnoDB;
