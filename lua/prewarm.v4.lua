-- prewarm.v4: put one sale item's state into Redis, stamped with its sale's identity, or rebuild
-- it from MySQL after it was lost. Its orders can give units back (cancelled or expired): the
-- key `released` (order id -> units given back, written by release.v4) is cleared and expired
-- like the others.
--
-- Meta carries `sale_uid` and every mode first checks it, so the state of another sale that
-- happens to use the same key names (another database, a MySQL restored from backup with reused
-- ids) is refused and never written over or mixed in; a warm that finds keys without meta
-- refuses too. Two modes rebuild an item whose state was lost: `restore_begin` stamps meta with
-- a token (deduct.v4 answers RECOVERING while it is there) and clears leftovers of an
-- interrupted rebuild, restore.v4 writes the ledger, buyers, idempotency entries and released
-- orders under that token, and `restore_end` writes the stock and lifts the token.
--
-- KEYS[1] stock   remaining units (string integer)
-- KEYS[2] meta    hash: starts_at_ms, ends_at_ms, expire_at_ms, per_user_limit, initial_stock,
--                 price_cents, script_version, sale_uid, and `restoring` (a token) while a
--                 rebuild runs
-- KEYS[3] buyers  hash user -> units bought        (cleared by force and restore_begin)
-- KEYS[4] ledger  hash order_id -> reservation     (checked; cleared by restore_begin)
-- KEYS[5] outbox  zset order_id by reserve time    (cleared by force and restore_begin)
-- KEYS[6] idem    hash user\0key -> order_id       (cleared by force and restore_begin)
-- KEYS[7] released hash order_id -> units given back (cleared by force and restore_begin: a
--                 rebuild takes MySQL's stock, which already holds them)
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

local function any_key_but_meta()
  return redis.call('EXISTS', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]) > 0
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
  redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7])
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
elseif redis.call('HLEN', KEYS[4]) > 0 then
  -- force: writing stock resets buyers and the outbox, never while reservations exist
  return {-2, tonumber(current or '0')}
end

redis.call('DEL', KEYS[3], KEYS[5], KEYS[6], KEYS[7])
redis.call('SET', KEYS[1], stock, 'PXAT', expire_at)
write_meta()
expire_all()
return {1, stock}
