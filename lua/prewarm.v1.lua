-- prewarm.v1: put one sale item's stock and metadata into Redis; every key expires with the sale.
--
-- KEYS[1] stock   remaining units (string integer)
-- KEYS[2] meta    hash: starts_at_ms, ends_at_ms, expire_at_ms, per_user_limit, initial_stock,
--                 price_cents, script_version
-- KEYS[3] buyers  hash user -> units bought        (only re-expired or cleared here)
-- KEYS[4] ledger  hash order_id -> reservation     (only re-expired or checked here)
-- KEYS[5] outbox  zset order_id by reserve time    (only re-expired or cleared here)
-- KEYS[6] idem    hash user\0key -> order_id       (only re-expired or cleared here)
-- ARGV[1] stock            ARGV[2] per_user_limit   ARGV[3] starts_at_ms   ARGV[4] ends_at_ms
-- ARGV[5] expire_at_ms (ends_at + grace; must lie in the future)
-- ARGV[6] price_cents      ARGV[7] script_version
-- ARGV[8] mode: "warm"    write stock and meta unless the item is already warmed (refused,
--                         like force, while the ledger holds reservations)
--               "force"   overwrite stock and meta; refused once any reservation exists
--               "refresh" update meta and expiries of a warmed item; stock untouched
--
-- Returns {code, remaining}:
--    1 WARMED          stock and meta written
--    2 ALREADY_WARMED  mode warm on a warmed item: nothing changed
--    3 REFRESHED       mode refresh: meta and expiries updated
--   -1 BAD_EXPIRY      expire_at_ms is not in the future (nothing written)
--   -2 HAS_RESERVATIONS stock would be written over an item with reservations (nothing written)
--   -3 NOT_WARMED      mode refresh on an item that was never warmed (nothing written)
--   -4 BAD_ARGUMENT    a number did not parse or the window is empty (nothing written)

local stock = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local starts = tonumber(ARGV[3])
local ends = tonumber(ARGV[4])
local expire_at = tonumber(ARGV[5])
local mode = ARGV[8]
if not (stock and limit and starts and ends and expire_at) or stock < 0 or limit < 1
    or ends <= starts or (mode ~= 'warm' and mode ~= 'force' and mode ~= 'refresh') then
  return {-4, 0}
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if expire_at <= now then
  return {-1, 0}
end

local current = redis.call('GET', KEYS[1])

local function write_meta()
  redis.call('HSET', KEYS[2],
    'starts_at_ms', ARGV[3], 'ends_at_ms', ARGV[4], 'expire_at_ms', ARGV[5],
    'per_user_limit', ARGV[2], 'price_cents', ARGV[6], 'script_version', ARGV[7])
end

local function expire_all()
  for i = 1, 6 do
    redis.call('PEXPIREAT', KEYS[i], expire_at)
  end
end

if mode == 'refresh' then
  if not current then
    return {-3, 0}
  end
  write_meta()
  expire_all()
  return {3, tonumber(current)}
end

if mode == 'warm' and current then
  return {2, tonumber(current)}
end

-- Writing stock resets buyers and the outbox: never while reservations exist (a stock key
-- deleted by hand must not turn into fresh stock and forgotten buyers).
if redis.call('HLEN', KEYS[4]) > 0 then
  return {-2, tonumber(current or '0')}
end

redis.call('DEL', KEYS[3], KEYS[5], KEYS[6])
redis.call('SET', KEYS[1], stock, 'PXAT', expire_at)
write_meta()
redis.call('HSET', KEYS[2], 'initial_stock', ARGV[1])
expire_all()
return {1, stock}
