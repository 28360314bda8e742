-- This release runs script versions v5 and v6 only (docs/ARCHITECTURE.md, "Script versions").
-- Sales that ended before it, pinned to v4, are re-pinned to v5 so that every row names a
-- version the service knows. v5 keeps v4's key names (no sale uid in the hash tag), so:
--   * their Redis keys, which expire with the sale (plus the grace period), are still found;
--     reconciliation reads an item's ledger layout from its meta, not from this column;
--   * releasing one of their orders (an expiry after the end) goes through release.v5, which
--     finds no v5 ledger in the item's meta (no `buckets`) and answers NOT_WARMED: the order
--     is settled, and its units go back in MySQL only, since the sale has ended.
-- Sales still running or yet to start on v4 are left as they are: warming one is refused with
-- `script_retired` and the way out (finish it on the release before; a sale that has not
-- started can be set to the current version and warmed again).
UPDATE sales
SET script_version = 'v5'
WHERE script_version = 'v4'
  AND ends_at <= UTC_TIMESTAMP(3);
