-- This release runs script versions v4 and v5 only (docs/ARCHITECTURE.md, "Script versions").
-- Sales that ended before it, pinned to v1, v2 or v3, are re-pinned to v4 so that every row
-- names a version the service knows:
--   * their Redis keys expire with the sale (plus the grace period) and are gone or going;
--     reconciliation reads an item's ledger layout from its meta, not from this column;
--   * their orders never had payment windows (`expires_at` is NULL), and cancelling one still
--     answers `cancel_unsupported`, decided by the order row, not by the version.
-- Sales still running or yet to start on a retired version are left as they are: warming one
-- is refused with `script_retired` and the way out (finish it on the release before; a sale
-- that has not started can be set to the current version and warmed again).
UPDATE sales
SET script_version = 'v4'
WHERE script_version IN ('v1', 'v2', 'v3')
  AND ends_at <= UTC_TIMESTAMP(3);
