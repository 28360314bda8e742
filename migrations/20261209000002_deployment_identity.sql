-- This database's identity: a random uid, made once. Several databases (environments) may
-- share one Redis under one key prefix. A sale's own keys carry its sale's uid (script v6 on);
-- the keys that belong to the database rather than to a sale carry this one: the periodic
-- jobs' leader locks (so each database's relay, expiry, events, reconciliation and usher run)
-- and the sale page cache (so each shows its own sales).
CREATE TABLE deployment (
  id TINYINT UNSIGNED NOT NULL PRIMARY KEY,
  uid CHAR(32) CHARACTER SET ascii NOT NULL
);
INSERT INTO deployment (id, uid) VALUES (1, REPLACE(UUID(), '-', ''));
