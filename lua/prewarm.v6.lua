-- prewarm.v6: prewarm.v5 (the same modes and codes: put one sale item's state into Redis,
-- stamped with its sale's uid, or rebuild it from MySQL after it was lost) for the record ledger
-- of v6 (see deduct.v6): one ledger hash, no buckets.
--
-- What changed from v5:
--   * The ledger is one hash, created by warm, force and restore_begin with the empty field, so
--     that it carries the sale's expiry before the first buy; a refresh sets its expiry again.
--   * meta has no `buckets`; `script_version` (v6) tells readers the layout. `entries` is
--     written as 0 by every mode that clears the ledger, so it is always there to read.
--   * `force` is refused once meta's `entries` is above 0 or the ledger holds a field other
--     than the empty one.
--
-- KEYS[1] stock   remaining units (string integer)
-- KEYS[2] meta    hash: starts_at_ms, ends_at_ms, expire_at_ms, per_user_limit, initial_stock,
--                 price_cents, script_version, sale_uid, entries, released_units, and
--                 `restoring` (a token) while a rebuild runs
-- KEYS[3] buyers  (not written from v5 on; cleared)
-- KEYS[4] ledger  hash buyer hash -> records (see deduct.v6), and the empty field
-- KEYS[5] outbox  zset order id by reserve time    (cleared by force and restore_begin)
-- KEYS[6] idem    (not written from v5 on; cleared)
-- KEYS[7] released (not written from v5 on; cleared)
-- ARGV[1] stock to set (warm, force: the units on sale; restore_end: MySQL's remaining units)
-- ARGV[2] per_user_limit   ARGV[3] starts_at_ms   ARGV[4] ends_at_ms
-- ARGV[5] expire_at_ms (ends_at + grace; must lie in the future)
-- ARGV[6] price_cents      ARGV[7] script_version   ARGV[8] mode (below)
-- ARGV[9] sale_uid         ARGV[10] initial_stock   ARGV[11] restore token ('' outside restores)
--
-- Modes:
--   "warm"          write stock, meta and the empty ledger unless the item is already warmed;
--                   refused while keys exist without meta (state of unknown origin)
--   "force"         overwrite stock and meta; refused once any reservation exists
--   "refresh"       update meta and expiries of a warmed item; stock untouched
--   "restore_begin" on an item without state (or mid-rebuild under the same uid): clear every
--                   key, write meta with `restoring` = token, the empty ledger, and no stock
--   "restore_end"   with the token of restore_begin: write the stock, drop `restoring`
--
-- Returns {code, remaining}:
--    1 WARMED           stock and meta written
--    2 ALREADY_WARMED   warm or restore_begin on a warmed item of this sale: nothing changed
--    3 REFRESHED        refresh: meta and expiries updated
--    4 RESTORE_BEGUN    restore_begin: meta written with the token, every other key cleared
--    5 RESTORED         restore_end: stock written, the item sells again
--   -1 BAD_EXPIRY       expire_at_ms is not in the future (nothing written)
--   -2 HAS_RESERVATIONS force over an item with reservations (nothing written)
--   -3 NOT_WARMED       refresh of an item that was never warmed (nothing written)
--   -4 BAD_ARGUMENT     a number did not parse, the window is empty, no uid (nothing written)
--   -5 FOREIGN_STATE    the keys hold another sale's state, or state without meta (nothing
--                       written)
--   -6 NOT_RESTORING    restore_end without the current token (nothing written)
--   -7 RESTORING        warm, force or refresh while a rebuild runs (nothing written)

local stock = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local starts = tonumber(ARGV[3])
local ends = tonumber(ARGV[4])
local expire_at = tonumber(ARGV[5])
local mode = ARGV[8]
local uid = ARGV[9]
local initial = tonumber(ARGV[10])
local token = ARGV[11]
local modes = {warm = true, force = true, refresh = true, restore_begin = true, restore_end = true}
if not (stock and limit and starts and ends and expire_at and initial) or stock < 0
    or limit < 1 or ends <= starts or not modes[mode] or not uid or uid == ''
    or (string.sub(mode, 1, 7) == 'restore' and (not token or token == '')) then
  return {-4, 0}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if expire_at <= now then
  return {-1, 0}
end

local owner = redis.call('HGET', KEYS[2], 'sale_uid')
if owner and owner ~= uid then
  return {-5, 0}
end
local restoring = redis.call('HGET', KEYS[2], 'restoring')
local current = redis.call('GET', KEYS[1])

local function write_meta()
  redis.call('HSET', KEYS[2],
    'starts_at_ms', ARGV[3], 'ends_at_ms', ARGV[4], 'expire_at_ms', ARGV[5],
    'per_user_limit', ARGV[2], 'price_cents', ARGV[6], 'script_version', ARGV[7],
    'sale_uid', uid, 'initial_stock', ARGV[10])
end

local function expire_all()
  for i = 1, 7 do
    redis.call('PEXPIREAT', KEYS[i], expire_at)
  end
end

-- True when the ledger holds anything but the empty field.
local function any_reservation()
  local fields = redis.call('HLEN', KEYS[4])
  return fields > 1 or (fields == 1 and redis.call('HEXISTS', KEYS[4], '') == 0)
end

local function any_key_but_meta()
  return redis.call('EXISTS', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]) > 0
end

-- Clears every key but stock and meta, and leaves the empty ledger with its expiry and no
-- entries counted.
local function clear_all_but_stock_and_meta()
  redis.call('DEL', KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
  redis.call('HDEL', KEYS[2], 'released_units')
  redis.call('HSET', KEYS[2], 'entries', 0)
  redis.call('HSET', KEYS[4], '', '')
  redis.call('PEXPIREAT', KEYS[4], expire_at)
end

if mode == 'restore_end' then
  if restoring ~= token then
    return {-6, 0}
  end
  redis.call('SET', KEYS[1], stock)
  redis.call('HDEL', KEYS[2], 'restoring')
  expire_all()
  return {5, stock}
end

if mode == 'restore_begin' then
  if owner and not restoring then
    return {2, tonumber(current or '0')}
  end
  if not owner and any_key_but_meta() then
    return {-5, 0}
  end
  redis.call('DEL', KEYS[1])
  clear_all_but_stock_and_meta()
  write_meta()
  redis.call('HSET', KEYS[2], 'restoring', token)
  redis.call('PEXPIREAT', KEYS[2], expire_at)
  return {4, 0}
end

if restoring then
  return {-7, 0}
end

if mode == 'refresh' then
  if not current or not owner then
    return {-3, 0}
  end
  write_meta()
  expire_all()
  return {3, tonumber(current)}
end

if mode == 'warm' then
  if owner then
    return {2, tonumber(current or '0')}
  end
  if any_key_but_meta() then
    return {-5, 0}
  end
elseif tonumber(redis.call('HGET', KEYS[2], 'entries') or '0') > 0 or any_reservation() then
  -- force: writing stock resets buyers and the outbox, never while reservations exist
  return {-2, tonumber(current or '0')}
end

clear_all_but_stock_and_meta()
redis.call('SET', KEYS[1], stock, 'PXAT', expire_at)
write_meta()
expire_all()
return {1, stock}
