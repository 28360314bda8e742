-- An item's stock shards on Redis Cluster: 1 (the default) keeps its stock under one hash tag;
-- N > 1 spreads it over N shard keys and a central bucket, each under its own tag.
ALTER TABLE sale_items ADD COLUMN shards SMALLINT UNSIGNED NOT NULL DEFAULT 1;
