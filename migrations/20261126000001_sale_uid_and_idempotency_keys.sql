-- A sale's identity, stamped on its Redis state (meta `sale_uid`, script version v3 on). Ids
-- alone do not tell sales apart across databases: two environments sharing one Redis, or a
-- MySQL restored from backup, reuse them, and a sale must never take another sale's stock,
-- buyers or ledger for its own. 32 hex characters of a random UUID; existing sales get one here.
ALTER TABLE sales ADD COLUMN uid CHAR(32) CHARACTER SET ascii NOT NULL DEFAULT '' AFTER id;
UPDATE sales SET uid = REPLACE(UUID(), '-', '') WHERE uid = '';

-- The Idempotency-Key the buyer sent, so that an item's Redis state rebuilt from MySQL after
-- data loss still answers a retry with its first order. Keys are visible ASCII, compared
-- byte for byte.
ALTER TABLE orders
    ADD COLUMN idempotency_key VARCHAR(128) CHARACTER SET ascii COLLATE ascii_bin NULL AFTER user_id;
