-- deduct.v1: reserve units of one sale item for one buyer, all checks and writes in one step.
--
-- KEYS[1] stock   remaining units
-- KEYS[2] meta    hash written by prewarm: starts_at_ms, ends_at_ms, expire_at_ms, per_user_limit
-- KEYS[3] buyers  hash user -> units reserved
-- KEYS[4] ledger  hash order_id -> reservation payload (the outbox record sent to Kafka)
-- KEYS[5] outbox  zset order_id scored by reserve time (ms); entries leave it on Kafka's ack
-- KEYS[6] idem    hash user \0 idempotency key -> "order_id units"
-- ARGV[1] user id   ARGV[2] quantity (>= 1)   ARGV[3] order id   ARGV[4] reservation payload
-- ARGV[5] idempotency key, or '' for none
--
-- Invariant kept: initial_stock == stock + sum(quantity in ledger).
--
-- Returns {code, ...}:
--    1 RESERVED        {1, order_id, remaining}
--    2 REPLAYED        {2, earlier order_id, units it reserved}  same user and idempotency key
--                      as a reservation before; answered even after the window closed
--   -1 NOT_WARMED      {-1}                        the item has no stock in Redis
--   -2 NOT_STARTED     {-2, starts_at_ms}
--   -3 ENDED           {-3, ends_at_ms}
--   -4 LIMIT_EXCEEDED  {-4, units already reserved, per_user_limit}
--   -5 SOLD_OUT        {-5, remaining}             remaining < quantity (0 when sold out)
--   -6 BAD_ARGUMENT    {-6}

local qty = tonumber(ARGV[2])
if not qty or qty < 1 or ARGV[1] == '' or ARGV[3] == '' then
  return {-6}
end

local meta = redis.call('HMGET', KEYS[2], 'starts_at_ms', 'ends_at_ms', 'per_user_limit', 'expire_at_ms')
if not meta[1] or not meta[4] then
  return {-1}
end

-- A retry returns the first answer, even after the window closed (its response may have been
-- lost just before the end).
local user = ARGV[1]
local idem_field = false
if ARGV[5] ~= '' then
  idem_field = user .. '\0' .. ARGV[5]
  local earlier = redis.call('HGET', KEYS[6], idem_field)
  if earlier then
    local id, units = string.match(earlier, '^(%S+) (%d+)$')
    return {2, id, tonumber(units)}
  end
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now < tonumber(meta[1]) then
  return {-2, tonumber(meta[1])}
end
if now >= tonumber(meta[2]) then
  return {-3, tonumber(meta[2])}
end

local bought = tonumber(redis.call('HGET', KEYS[3], user) or '0')
local limit = tonumber(meta[3])
if bought + qty > limit then
  return {-4, bought, limit}
end

local stock = redis.call('GET', KEYS[1])
if not stock then
  return {-1}
end
local remaining = tonumber(stock)
if remaining < qty then
  return {-5, remaining}
end

remaining = redis.call('DECRBY', KEYS[1], qty)
redis.call('HINCRBY', KEYS[3], user, qty)
redis.call('HSET', KEYS[4], ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[5], now, ARGV[3])
if idem_field then
  redis.call('HSET', KEYS[6], idem_field, ARGV[3] .. ' ' .. qty)
end
-- Every key expires with the sale. A key gets its expiry when this call created it (it then
-- holds exactly one entry); later writes keep it, so the common case writes no expiry at all.
local expire_at = meta[4]
if redis.call('HLEN', KEYS[3]) == 1 then redis.call('PEXPIREAT', KEYS[3], expire_at) end
if redis.call('HLEN', KEYS[4]) == 1 then redis.call('PEXPIREAT', KEYS[4], expire_at) end
if redis.call('ZCARD', KEYS[5]) == 1 then redis.call('PEXPIREAT', KEYS[5], expire_at) end
if idem_field and redis.call('HLEN', KEYS[6]) == 1 then
  redis.call('PEXPIREAT', KEYS[6], expire_at)
end
return {1, ARGV[3], remaining}
