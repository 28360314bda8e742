-- Sales and their items: the source of truth an operator writes through the admin API.
-- All times are UTC (the service sets time_zone = '+00:00' on every connection).

CREATE TABLE sales (
    id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    name           VARCHAR(200)    NOT NULL,
    starts_at      DATETIME(3)     NOT NULL,
    ends_at        DATETIME(3)     NOT NULL,
    -- 'created' until its stock is in Redis, then 'warmed'. The time-based phase
    -- (upcoming / active / ended) is computed from the window, never stored, so it cannot go stale.
    status         VARCHAR(16)     NOT NULL DEFAULT 'created',
    -- The Lua script version the sale is pinned to; a rolling upgrade never mixes semantics
    -- inside a live sale.
    script_version VARCHAR(16)     NOT NULL,
    warmed_at      DATETIME(3)     NULL,
    -- Optimistic concurrency for PATCH: an update names the version it read.
    version        INT UNSIGNED    NOT NULL DEFAULT 1,
    created_at     DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    updated_at     DATETIME(3)     NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (id),
    -- The prewarm scheduler looks for sales still 'created' whose start is near.
    KEY idx_sales_status_starts (status, starts_at),
    -- The relay, reconciliation and order lookups look for sales that have not ended long ago.
    KEY idx_sales_ends (ends_at)
) ENGINE = InnoDB;

CREATE TABLE sale_items (
    id             BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    sale_id        BIGINT UNSIGNED NOT NULL,
    sku            VARCHAR(64)     NOT NULL,
    title          VARCHAR(200)    NOT NULL,
    price_cents    BIGINT UNSIGNED NOT NULL,
    initial_stock  INT UNSIGNED    NOT NULL,
    -- MySQL-side remaining units. Only the order consumer decrements it, under
    -- SELECT ... FOR UPDATE on this row, so MySQL stops an oversell even if Redis lost data.
    stock          INT UNSIGNED    NOT NULL,
    per_user_limit INT UNSIGNED    NOT NULL,
    -- Bumped by every change (admin edits and consumer batches).
    version        INT UNSIGNED    NOT NULL DEFAULT 1,
    PRIMARY KEY (id),
    -- A SKU appears once per sale; also the index that serves "items of a sale".
    UNIQUE KEY uk_sale_items_sale_sku (sale_id, sku),
    CONSTRAINT fk_sale_items_sale FOREIGN KEY (sale_id) REFERENCES sales (id)
) ENGINE = InnoDB;
