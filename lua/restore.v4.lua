-- restore.v4: writes one chunk of an item's rebuilt state (read from MySQL after Redis lost it):
-- ledger entries, buyers' units, idempotency entries or released orders (closed orders and their
-- units; their total goes to meta `released_units`, as release.v4 keeps it). Only under
-- the token prewarm.v4's `restore_begin` stamped on meta, so a rebuild that lost its lock (and
-- was superseded by another) can never write into state that sells again.
--
-- KEYS[1] stock   (not touched)
-- KEYS[2] meta    hash; `restoring` holds the rebuild's token, `expire_at_ms` the expiry
-- KEYS[3] buyers  hash user -> units reserved
-- KEYS[4] ledger  hash order_id -> reservation payload
-- KEYS[5] outbox  (not touched: rebuilt entries are persisted already)
-- KEYS[6] idem    hash user \0 idempotency key -> "order_id units"
-- KEYS[7] released hash order_id -> units given back
-- ARGV[1] token   ARGV[2] target: "ledger", "buyers", "idem" or "released"
-- ARGV[3..] field, value, field, value, ... (at least one pair)
--
-- Returns {code, fields}:
--    1 WRITTEN        {1, fields written}
--   -1 NOT_RESTORING  {-1, 0}  meta holds no rebuild with this token (nothing written)
--   -2 BAD_ARGUMENT   {-2, 0}  unknown target, or no complete field/value pair

local targets = {buyers = 3, ledger = 4, idem = 6, released = 7}
local key = targets[ARGV[2]]
if not key or #ARGV < 4 or (#ARGV - 2) % 2 ~= 0 or ARGV[1] == '' then
  return {-2, 0}
end
local meta = redis.call('HMGET', KEYS[2], 'restoring', 'expire_at_ms')
if meta[1] ~= ARGV[1] then
  return {-1, 0}
end
redis.call('HSET', KEYS[key], unpack(ARGV, 3))
redis.call('PEXPIREAT', KEYS[key], meta[2])
if key == 7 then
  local units = 0
  for i = 4, #ARGV, 2 do
    units = units + tonumber(ARGV[i])
  end
  redis.call('HINCRBY', KEYS[2], 'released_units', units)
end
return {1, (#ARGV - 2) / 2}
