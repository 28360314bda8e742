-- deduct.v2: reserve units of one sale item for a batch of requests in one atomic step. Each
-- request gets exactly the checks and the reply deduct.v1 would give it had the requests been
-- sent one after another in batch order; the state left behind is the same too. Two
-- deliberate differences: a request whose order id is already in the ledger (the same batch
-- delivered twice, say re-sent by a client library after a lost connection) is answered
-- RESERVED again and changes nothing; and a key left without an expiry gets the sale's.
--
-- Why batches: in a flash sale nearly every buy hits the same item, so the service gathers the
-- requests that arrive while the item's previous call is in flight and sends them together.
-- Redis then parses one command and runs one script for many buys, and the shared work (meta,
-- clock, stock, the ledger/outbox/idempotency writes, expiries) is done once per batch.
--
-- KEYS[1] stock   remaining units
-- KEYS[2] meta    hash written by prewarm: starts_at_ms, ends_at_ms, expire_at_ms, per_user_limit
-- KEYS[3] buyers  hash user -> units reserved
-- KEYS[4] ledger  hash order_id -> reservation payload (the outbox record sent to Kafka)
-- KEYS[5] outbox  zset order_id scored by reserve time (ms); entries leave it on Kafka's ack
-- KEYS[6] idem    hash user \0 idempotency key -> "order_id units"
-- ARGV[1] n, the number of requests (1 to 1000)
-- then five values per request i (at 2 + 5(i-1) .. 6 + 5(i-1)): user id, quantity (>= 1),
-- order id, reservation payload, idempotency key or '' for none
--
-- Invariant kept: initial_stock == stock + sum(quantity in ledger).
--
-- Returns an array of n replies; reply i is {code, ...} for request i, as in deduct.v1 except
-- that a reservation does not echo the order id the caller sent:
--    1 RESERVED        {1, remaining}                also for an order id already in the ledger
--    2 REPLAYED        {2, earlier order_id, units it reserved}  same user and idempotency key
--                      as a reservation before (also earlier in this batch); answered even
--                      after the window closed
--   -1 NOT_WARMED      {-1}                        the item has no stock in Redis
--   -2 NOT_STARTED     {-2, starts_at_ms}
--   -3 ENDED           {-3, ends_at_ms}
--   -4 LIMIT_EXCEEDED  {-4, units already reserved, per_user_limit}
--   -5 SOLD_OUT        {-5, remaining}             remaining < quantity (0 when sold out)
--   -6 BAD_ARGUMENT    {-6}
-- An argument count that does not match n is an error reply and nothing is written (a bug in
-- the caller, not a business outcome).

local n = tonumber(ARGV[1])
if not n or n < 1 or n > 1000 or n % 1 ~= 0 or #ARGV ~= 1 + 5 * n then
  return redis.error_reply('ERR deduct.v2 expects n followed by 5 arguments per request')
end

local meta = redis.call('HMGET', KEYS[2], 'starts_at_ms', 'ends_at_ms', 'per_user_limit', 'expire_at_ms')
local warmed = meta[1] and meta[2] and meta[3] and meta[4]
local starts = tonumber(meta[1])
local ends = tonumber(meta[2])
local limit = tonumber(meta[3])
local expire_at = meta[4]

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Read once; the batch runs atomically, so the local copies stay exact.
local remaining = nil
local bought = {}      -- user -> units held before and during this batch
local known = {}       -- order id -> true when the ledger already holds it
if warmed then
  remaining = tonumber(redis.call('GET', KEYS[1]))
  local users, orders = {}, {}
  for i = 1, n do
    users[i] = ARGV[1 + 5 * (i - 1) + 1]
    orders[i] = ARGV[1 + 5 * (i - 1) + 3]
  end
  local held_before = redis.call('HMGET', KEYS[3], unpack(users))
  local in_ledger = redis.call('HMGET', KEYS[4], unpack(orders))
  for i = 1, n do
    bought[users[i]] = tonumber(held_before[i] or '0') or 0
    if in_ledger[i] then
      known[orders[i]] = true
    end
  end
end

local replays = {}     -- idempotency field -> "order_id units" written by this batch
local held = {}        -- flat user/units list for one HSET of the changed buyers
local changed = {}     -- user -> true once their units changed in this batch
local ledger = {}      -- flat order_id/payload list for one HSET
local outbox = {}      -- flat score/order_id list for one ZADD
local idem = {}        -- flat field/value list for one HSET
local taken = 0
local replies = {}

for i = 1, n do
  local b = 1 + 5 * (i - 1)
  local user = ARGV[b + 1]
  local qty = tonumber(ARGV[b + 2])
  local order_id = ARGV[b + 3]
  local key = ARGV[b + 5]
  local reply = nil
  if not qty or qty < 1 or qty % 1 ~= 0 or user == '' or order_id == '' then
    reply = {-6}
  elseif not warmed then
    reply = {-1}
  elseif known[order_id] then
    reply = {1, remaining or 0}
  else
    local idem_field = false
    if key ~= '' then
      idem_field = user .. '\0' .. key
      local earlier = replays[idem_field] or redis.call('HGET', KEYS[6], idem_field)
      if earlier then
        local id, units = string.match(earlier, '^(%S+) (%d+)$')
        reply = {2, id, tonumber(units)}
      end
    end
    if reply then
      -- a retry: answered above
    elseif now < starts then
      reply = {-2, starts}
    elseif now >= ends then
      reply = {-3, ends}
    else
      local had = bought[user]
      if had + qty > limit then
        reply = {-4, had, limit}
      elseif not remaining then
        reply = {-1}
      elseif remaining < qty then
        reply = {-5, remaining}
      else
        remaining = remaining - qty
        taken = taken + qty
        known[order_id] = true
        bought[user] = had + qty
        changed[user] = true
        ledger[#ledger + 1] = order_id
        ledger[#ledger + 1] = ARGV[b + 4]
        outbox[#outbox + 1] = now
        outbox[#outbox + 1] = order_id
        if idem_field then
          local answer = order_id .. ' ' .. qty
          replays[idem_field] = answer
          idem[#idem + 1] = idem_field
          idem[#idem + 1] = answer
        end
        reply = {1, remaining}
      end
    end
  end
  replies[i] = reply
end

if taken > 0 then
  redis.call('DECRBY', KEYS[1], taken)
  for user in pairs(changed) do
    held[#held + 1] = user
    held[#held + 1] = bought[user]
  end
  redis.call('HSET', KEYS[3], unpack(held))
  redis.call('HSET', KEYS[4], unpack(ledger))
  redis.call('ZADD', KEYS[5], unpack(outbox))
  if #idem > 0 then
    redis.call('HSET', KEYS[6], unpack(idem))
  end
  -- Every key expires with the sale: a key this batch created has no expiry yet.
  for k = 3, 6 do
    if redis.call('PTTL', KEYS[k]) == -1 then
      redis.call('PEXPIREAT', KEYS[k], expire_at)
    end
  end
end
return replies
