-- prewarm.v5: prewarm.v4 (the same modes and codes: put one sale item's state into Redis,
-- stamped with its sale's uid, or rebuild it from MySQL after it was lost) for the compact
-- ledger of v5 (see deduct.v5).
--
-- Served as v5 and as v6. A v6 sale runs this file unchanged under item keys whose hash tag
-- carries the sale's uid (`{s<sale>.<uid>:i<item>}`, src/stores/redis/keys.rs), so two
-- databases sharing one Redis never meet; the script sees only KEYS.
--
-- What changed from v4:
--   * meta gets `buckets`, the number of small hashes the ledger and the buyers share: one per
--     32 units of the initial stock (at least one, at most 16384), fixed for the item's
--     life (a refresh keeps the number meta holds), so each bucket stays listpack-encoded.
--   * meta gets `entries` (the ledger's entry count, kept by deduct.v5 and restore.v5); `force`
--     is refused once it is above 0 or a ledger bucket exists.
--   * Clearing, expiring and the "keys without meta" check cover every bucket. `idem` and
--     `released` are no longer written from v5 on; they are still cleared and checked.
--   * restore_begin also drops meta's `entries` and `released_units`, which the rebuild writes
--     again.
--
-- KEYS[1] stock   remaining units (string integer)
-- KEYS[2] meta    hash: starts_at_ms, ends_at_ms, expire_at_ms, per_user_limit, initial_stock,
--                 price_cents, script_version, sale_uid, buckets, entries, released_units, and
--                 `restoring` (a token) while a rebuild runs
-- KEYS[3] buyers  (not written from v5 on; cleared)
-- KEYS[4] ledger  prefix of the buckets `<key>:<n>`, n in 0 .. buckets - 1, which hold the
--                 ledger and the buyers' units (see deduct.v5)
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
--   "warm"          write stock and meta unless the item is already warmed; refused while keys
--                   exist without meta (state of unknown origin)
--   "force"         overwrite stock and meta; refused once any reservation exists
--   "refresh"       update meta and expiries of a warmed item; stock untouched
--   "restore_begin" on an item without state (or mid-rebuild under the same uid): clear every
--                   key, write meta with `restoring` = token and no stock
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
-- One bucket per 32 units (each holds a reservation and a buyer per unit sold, about 64 fields
-- of the 128 a listpack keeps), at most 16384 (a warm touches each once); an item of more than
-- 524,288 units holds more per bucket, and past about a million reservations its buckets become
-- hashtables: correct, with more memory.
local function buckets_for(units)
  return math.min(16384, math.max(1, math.ceil(units / 32)))
end
local buckets = tonumber(redis.call('HGET', KEYS[2], 'buckets')) or buckets_for(initial)

-- Every bucket key, in groups small enough for one call.
local function each_bucket_group(fn)
  local group = {}
  for b = 0, buckets - 1 do
    group[#group + 1] = KEYS[4] .. ':' .. b
    if #group >= 1000 then
      fn(group)
      group = {}
    end
  end
  if #group > 0 then
    fn(group)
  end
end

local function write_meta()
  redis.call('HSET', KEYS[2],
    'starts_at_ms', ARGV[3], 'ends_at_ms', ARGV[4], 'expire_at_ms', ARGV[5],
    'per_user_limit', ARGV[2], 'price_cents', ARGV[6], 'script_version', ARGV[7],
    'sale_uid', uid, 'initial_stock', ARGV[10], 'buckets', buckets)
end

local function expire_all()
  for i = 1, 7 do
    redis.call('PEXPIREAT', KEYS[i], expire_at)
  end
  each_bucket_group(function(group)
    for _, key in ipairs(group) do
      redis.call('PEXPIREAT', key, expire_at)
    end
  end)
end

local function any_bucket()
  local found = false
  each_bucket_group(function(group)
    found = found or redis.call('EXISTS', unpack(group)) > 0
  end)
  return found
end

local function any_key_but_meta()
  return redis.call('EXISTS', KEYS[1], KEYS[3], KEYS[5], KEYS[6], KEYS[7]) > 0 or any_bucket()
end

local function clear_all_but_stock_and_meta()
  redis.call('DEL', KEYS[3], KEYS[5], KEYS[6], KEYS[7])
  each_bucket_group(function(group)
    redis.call('DEL', unpack(group))
  end)
  redis.call('HDEL', KEYS[2], 'entries', 'released_units')
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
elseif tonumber(redis.call('HGET', KEYS[2], 'entries') or '0') > 0 or any_bucket() then
  -- force: writing stock resets buyers and the outbox, never while reservations exist
  return {-2, tonumber(current or '0')}
end

clear_all_but_stock_and_meta()
redis.call('SET', KEYS[1], stock, 'PXAT', expire_at)
write_meta()
expire_all()
return {1, stock}
